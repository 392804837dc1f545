"""The web chat: ``GET /`` serves the page, ``/webchat/`` is its JSON API.

Routes only translate: the cookie and body go to ``channels.webchat``, the message goes through
the same turn loop as every channel, and the effects come back as JSON.

Example::

    POST /webchat/messages  {"client_message_id": "m-1", "text": "pothole"}
    -> 200 {"locale": "en", "messages": [{"type": "ask", "text": "Where is the pothole?", ...}]}
    -> 400 {"error": "give exactly one of text, option_id or location"}
    -> 413 {"error": "the body is over 65536 bytes"}
    -> 503 {"error": "..."}  (database or Redis briefly down: nothing was processed; retry)

    GET /webchat/messages?after=41   (the page polls every few seconds)
    -> 200 {"messages": [{"id": 42, "type": "notice", "purpose": "status_update", "text": ...}],
            "last_id": 42}

The page cannot be messaged first, so what the bot starts (the city's number once a report is
filed, status updates) waits in the message log, written by ``notifier.delivery``; the poll
returns those rows for this session after the id the page last saw. Replies to the page's own
posts (kind "reply") are left out: the page already showed them.
"""

from __future__ import annotations

import logging
import time
from functools import cache
from pathlib import Path

from aiohttp import web
from sqlalchemy import select
from yarl import URL

from bot.inbound import turn_outcome
from bot.services import Services
from bot.web.errors import json_error, unavailable_errors
from bot.web.middleware import CONTENT_SECURITY_POLICY
from channels.base import BadRequest
from channels.webchat import COOKIE_NAME, MAX_BODY_BYTES, WebChatChannel
from forms_runtime.i18n import LOCALES, N_, tr
from notifier.message_trace import MessageTrace
from storage.models import MessageLog
from storage.types import row_id

__all__ = ["STATIC_DIR", "UI_TEXTS", "add_routes", "ui_texts"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
HISTORY_LIMIT = 50
# Messages one poll returns at most; the page asks again from the last id it got.
PUSHED_LIMIT = 20
# A year: the resident keeps their place across visits; "delete my data" ends it sooner.
COOKIE_MAX_AGE = 365 * 24 * 3600

log = logging.getLogger("citybot.webchat")

# The page's own words (the bot's words come with each reply, already translated).
UI_TEXTS: dict[str, str] = {
    "title": N_("City services"),
    "subtitle": N_("Report a problem, one question at a time"),
    "language": N_("Language"),
    "placeholder": N_("Type your message"),
    "send": N_("Send"),
    "location": N_("Send my location"),
    "locating": N_("Finding your location..."),
    "location_unavailable": N_(
        "Your location is not available. Type the street and suburb instead."
    ),
    "my_location": N_("My location"),
    "question_of": N_("Question {position} of {total}"),
    "retrying": N_("Connecting again..."),
    "offline": N_("Your message was not sent. Check your connection and send it again."),
    "welcome": N_(
        "Hello. Tell me what the problem is, for example: pothole, burst pipe, no electricity."
    ),
    "menu": N_("See all services"),
    "change": N_("Change"),
    "skip": N_("Skip this question"),
    "reference": N_("Your reference: {reference}"),
    # For screen readers: the name of the message list, and who said each message ("City: ...").
    "conversation": N_("Conversation"),
    "city": N_("City"),
    "you": N_("You"),
}


@cache
def ui_texts() -> dict[str, dict[str, str]]:
    """The page's words in every locale, placeholders left for the page to fill."""
    return {
        locale: {key: tr(locale, msgid) for key, msgid in UI_TEXTS.items()} for locale in LOCALES
    }


def add_routes(app: web.Application, services: Services) -> None:
    channel = services.channels["webchat"]
    assert isinstance(channel, WebChatChannel)
    secure = services.settings.public_url.startswith("https://")

    def session(request: web.Request) -> tuple[str, str | None]:
        """The resident's session id, and a new cookie value to set when they had none."""
        given = request.cookies.get(COOKIE_NAME)
        existing = channel.session_of(given)
        if existing is not None:
            # Signed with a secret being rotated out: signed again with the current one.
            return existing, channel.refreshed(given)
        cookie = channel.new_session()
        session_id = channel.session_of(cookie)
        assert session_id is not None
        return session_id, cookie

    own_origins = {_origin_of(services.settings.public_url)}

    def same_origin(request: web.Request) -> bool:
        """A browser names the page that posts in ``Origin``: it must be ours (the public URL,
        or the address this request came to). A client that sends none is not a browser, so
        no resident's cookie can be riding on it; it may post."""
        origin = request.headers.get("Origin")
        if origin is None:
            return True
        return origin in own_origins or origin == f"{request.scheme}://{request.host}"

    def with_cookie(response: web.Response, cookie: str | None) -> web.Response:
        if cookie is not None:
            response.set_cookie(
                COOKIE_NAME,
                cookie,
                max_age=COOKIE_MAX_AGE,
                httponly=True,
                samesite="Lax",
                secure=secure,
                path="/",
            )
        return response

    async def index(request: web.Request) -> web.StreamResponse:
        # Set here: a FileResponse learns its content type only as it is sent.
        headers = {"Cache-Control": "no-cache", "Content-Security-Policy": CONTENT_SECURITY_POLICY}
        return web.FileResponse(STATIC_DIR / "index.html", headers=headers)

    async def post_message(request: web.Request) -> web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            return json_error(413, f"the body is over {MAX_BODY_BYTES} bytes")
        body = await request.content.read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            return json_error(413, f"the body is over {MAX_BODY_BYTES} bytes")
        if request.content_type != "application/json":
            # A cross-site HTML form can only send form or plain-text bodies: JSON keeps it out.
            return json_error(415, "send the message as application/json")
        if not same_origin(request):
            return json_error(403, "the message must come from this site's own chat page")
        session_id, cookie = session(request)
        try:
            inbound = channel.parse_post(body, session_id)
        except BadRequest as exc:
            return json_error(400, str(exc))
        trace = MessageTrace.arrived(channel.name)
        started = time.monotonic()
        try:
            result = await services.handle_inbound(inbound)
        except unavailable_errors() as exc:
            log.warning("turn deferred: store unavailable", extra={"error": type(exc).__name__})
            return json_error(503, "the service is briefly unavailable; send the message again")
        turn_seconds = time.monotonic() - started
        trace.routed(turn_outcome(result), turn_seconds=turn_seconds)
        messages = channel.to_json(result.effects)
        # The page is answered in this response: that is the reply.
        trace.replied(status="sent", messages=len(messages), send_seconds=0.0)
        services.metrics.messages_out.labels(channel=channel.name).inc(len(messages))
        payload = {
            "locale": result.locale,
            "messages": messages,
            "duplicate": result.duplicate,
            "rate_limited": result.rate_limited,
        }
        if result.reference:
            payload["reference"] = result.reference
        return with_cookie(web.json_response(payload), cookie)

    async def history(request: web.Request) -> web.Response:
        """What this session said and was told recently, oldest first, for a reloaded page."""
        session_id = channel.session_of(request.cookies.get(COOKIE_NAME))
        if session_id is None:
            return web.json_response({"messages": []})
        query = (
            select(MessageLog.direction, MessageLog.text, MessageLog.created_at)
            .where(MessageLog.channel == channel.name, MessageLog.address == session_id)
            .where(MessageLog.text.is_not(None))
            .order_by(MessageLog.id.desc())
            .limit(HISTORY_LIMIT)
        )
        # A store that is down is answered 503 by the error middleware, like every route.
        async with services.session_factory() as db:
            rows = (await db.execute(query)).all()
        messages = [
            {"direction": d, "text": t, "at": at.isoformat()} for d, t, at in reversed(rows)
        ]
        return web.json_response({"messages": messages})

    async def pushed(request: web.Request) -> web.Response:
        """Messages the bot started for this session after ``after`` (a message log id)."""
        session_id = channel.session_of(request.cookies.get(COOKIE_NAME))
        after = row_id(request.query.get("after", "0"))
        if after is None:
            return json_error(400, "after must be a message id (a whole number)")
        if session_id is None:
            return web.json_response({"messages": [], "last_id": after})
        query = (
            select(MessageLog.id, MessageLog.kind, MessageLog.text, MessageLog.created_at)
            .where(MessageLog.channel == channel.name, MessageLog.address == session_id)
            .where(MessageLog.direction == "out", MessageLog.kind != "reply")
            .where(MessageLog.text.is_not(None), MessageLog.id > after)
            .order_by(MessageLog.id)
            .limit(PUSHED_LIMIT)
        )
        # A store that is down is answered 503 by the error middleware, like every route.
        async with services.session_factory() as db:
            rows = (await db.execute(query)).all()
        messages = [
            {"id": i, "type": "notice", "purpose": kind, "text": text, "at": at.isoformat()}
            for i, kind, text, at in rows
        ]
        last_id = rows[-1][0] if rows else after
        return web.json_response(
            {"messages": messages, "last_id": last_id}, headers={"Cache-Control": "no-store"}
        )

    async def texts(request: web.Request) -> web.Response:
        return web.json_response(ui_texts(), headers={"Cache-Control": "max-age=300"})

    app.router.add_get("/", index)
    app.router.add_get("/webchat/texts", texts)
    app.router.add_static("/static/", STATIC_DIR)
    app.router.add_post("/webchat/messages", post_message)
    app.router.add_get("/webchat/messages", pushed)
    app.router.add_get("/webchat/history", history)


def _origin_of(url: str) -> str:
    """``https://city.example/chat`` -> ``https://city.example`` (the form browsers send)."""
    parsed = URL(url)
    return str(parsed.origin())
