"""A small staff page for the built-in Open311 server: list requests, change status and notes.

It lets a demo close the loop (report -> filed -> staff closes -> resident told) without a city
system. Access needs CITYBOT_STAFF_TOKEN, given either as ``Authorization: Bearer <token>`` or
once through the login form, which sets an HttpOnly, SameSite=Strict cookie holding a digest of
the token (never the token itself). Changes from a cookie session also need the form's CSRF field.

Example::

    add_staff_routes(app, sessionmaker, staff_token="s3cret")
    # GET /open311/staff, POST /open311/staff/login, POST /open311/staff/requests/{id}
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from html import escape

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from city.open311.formats import parse_datetime
from city.open311.posted import UnreadableForm, read_form
from storage.models import Open311Request
from storage.types import row_id

__all__ = ["STAFF_PATH", "STATUSES", "add_staff_routes"]

STAFF_PATH = "/open311/staff"
STATUSES = ("open", "closed")
_COOKIE = "citybot_staff"
_PAGE_SIZE = 200

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#0b0c0c}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #b1b4b6;padding:.4rem;
vertical-align:top;text-align:left}textarea{width:100%}.closed{color:#505a5f}
"""


def _digest(token: str, purpose: str) -> str:
    return hmac.new(token.encode(), purpose.encode(), hashlib.sha256).hexdigest()


def _page(title: str, body: str, status: int = 200) -> web.Response:
    html = (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )
    return web.Response(text=html, status=status, content_type="text/html")


class _StaffPage:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], token: str | None) -> None:
        self.sessionmaker = sessionmaker
        self.token = token

    def _bearer_ok(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        return (
            self.token is not None
            and scheme.lower() == "bearer"
            and hmac.compare_digest(given.strip().encode(), self.token.encode())
        )

    def _cookie_ok(self, request: web.Request) -> bool:
        cookie = request.cookies.get(_COOKIE, "")
        return self.token is not None and hmac.compare_digest(
            cookie.encode(), _digest(self.token, "session").encode()
        )

    def _off(self) -> web.Response:
        return _page("Staff page is off", "<p>Set CITYBOT_STAFF_TOKEN to turn it on.</p>", 404)

    async def show(self, request: web.Request) -> web.Response:
        if self.token is None:
            return self._off()
        if not (self._bearer_ok(request) or self._cookie_ok(request)):
            return _page("Sign in", _LOGIN_FORM, 401)
        status = request.query.get("status")
        query = select(Open311Request).order_by(Open311Request.id.desc()).limit(_PAGE_SIZE)
        if status in STATUSES:
            query = query.where(Open311Request.status == status)
        async with self.sessionmaker() as session:
            rows = (await session.scalars(query)).all()
        csrf = _digest(self.token, "csrf")
        table = (
            "".join(_row(r, csrf) for r in rows) or "<tr><td colspan='5'>No requests yet.</td></tr>"
        )
        filters = (
            " | ".join(f"<a href='{STAFF_PATH}?status={s}'>{s}</a>" for s in STATUSES)
            + f" | <a href='{STAFF_PATH}'>all</a>"
        )
        body = (
            f"<p>Show: {filters}</p><table><tr><th>Id</th><th>Service</th><th>Report</th>"
            f"<th>Received</th><th>Status, notes and expected date</th></tr>{table}</table>"
        )
        return _page("Service requests", body)

    async def login(self, request: web.Request) -> web.Response:
        if self.token is None:
            return self._off()
        try:
            post = await read_form(request)
        except UnreadableForm as exc:
            return _page("Sign in", f"<p>{escape(str(exc))}</p>" + _LOGIN_FORM, 400)
        given = post.get("token")
        if not isinstance(given, str) or not hmac.compare_digest(
            given.encode(), self.token.encode()
        ):
            return _page(
                "Sign in",
                "<p>That token is not right. Check it and try again.</p>" + _LOGIN_FORM,
                403,
            )
        response = web.HTTPSeeOther(STAFF_PATH)
        response.set_cookie(
            _COOKIE,
            _digest(self.token, "session"),
            httponly=True,
            samesite="Strict",
            path=STAFF_PATH,
        )
        return response

    async def update(self, request: web.Request) -> web.Response:
        if self.token is None:
            return self._off()
        try:
            post = await read_form(request)
        except UnreadableForm as exc:
            return _page("Not changed", f"<p>{escape(str(exc))}</p>", 400)
        if not self._bearer_ok(request):
            csrf = post.get("csrf")
            if (
                not self._cookie_ok(request)
                or not isinstance(csrf, str)
                or not hmac.compare_digest(csrf.encode(), _digest(self.token, "csrf").encode())
            ):
                return _page("Not allowed", "<p>Sign in again to change requests.</p>", 403)
        status = post.get("status")
        if status not in STATUSES:
            return _page("Not changed", f"<p>Choose a status: {', '.join(STATUSES)}.</p>", 400)
        expected_raw = post.get("expected_date")
        expected = None
        if isinstance(expected_raw, str) and expected_raw.strip():
            expected = parse_datetime(expected_raw.strip())
            if expected is None:
                return _page("Not changed", "<p>Enter the expected date as YYYY-MM-DD.</p>", 400)
        ident = request.match_info["id"]
        number = row_id(ident)
        async with self.sessionmaker() as session, session.begin():
            row = await session.get(Open311Request, number) if number is not None else None
            if row is None:
                return _page("Not found", f"<p>There is no request {escape(ident)}.</p>", 404)
            notes = post.get("status_notes")
            row.status = str(status)
            if isinstance(notes, str):
                row.status_notes = notes.strip() or None
            row.expected_datetime = expected
            row.updated_datetime = datetime.now(UTC)
        raise web.HTTPSeeOther(STAFF_PATH)


_LOGIN_FORM = (
    f"<form method='post' action='{STAFF_PATH}/login'><label>Staff token "
    "<input type='password' name='token' autocomplete='current-password'></label> "
    "<button>Sign in</button></form>"
)


def _row(row: Open311Request, csrf: str) -> str:
    options = "".join(
        f"<option{' selected' if s == row.status else ''}>{s}</option>" for s in STATUSES
    )
    expected = row.expected_datetime.date().isoformat() if row.expected_datetime else ""
    where = row.address_string or (
        f"{row.lat:.5f}, {row.long:.5f}" if row.lat is not None and row.long is not None else ""
    )
    return (
        f"<tr class='{escape(row.status)}'><td>{row.id}</td><td>{escape(row.service_name)}</td>"
        f"<td>{escape(row.description).replace(chr(10), '<br>')}<br><small>{escape(where)}</small></td>"
        f"<td>{row.requested_datetime:%Y-%m-%d %H:%M} UTC</td><td>"
        f"<form method='post' action='{STAFF_PATH}/requests/{row.id}'>"
        f"<input type='hidden' name='csrf' value='{csrf}'>"
        f"<select name='status'>{options}</select> "
        f"<input type='date' name='expected_date' value='{expected}'>"
        f"<textarea name='status_notes' rows='2'>{escape(row.status_notes or '')}</textarea>"
        "<button>Save</button></form></td></tr>"
    )


def add_staff_routes(
    app: web.Application, sessionmaker: async_sessionmaker[AsyncSession], staff_token: str | None
) -> None:
    page = _StaffPage(sessionmaker, staff_token)
    app.router.add_get(STAFF_PATH, page.show)
    app.router.add_post(f"{STAFF_PATH}/login", page.login)
    app.router.add_post(f"{STAFF_PATH}/requests/{{id}}", page.update)
