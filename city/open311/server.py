"""The built-in GeoReport v2 server, for a city that has no Open311 endpoint (and for newcomers).

Mounted under ``/open311/v2/`` by ``add_open311_routes``. Services and service definitions come
from the forms; requests are stored in ``open311_requests``; errors use the spec's error array
with proper HTTP codes (400 bad input, 403 wrong api_key, 404 unknown). The bot's own
``Open311Backend`` files here over real HTTP, exactly as it would to a city's server.

Filing needs the api_key: an open endpoint would let anyone put requests in the city's queue.
Reading is public, as GeoReport v2 means it to be, but the public answer carries no free text
(the description and typed address may hold a resident's name or house) and no media link (the
signed link to their photo): those only with the api_key, or when the city turns
``public_details`` on.

Example::

    app = web.Application()
    add_open311_routes(app, sessionmaker, standard_forms(), api_key="k")
    # GET /open311/v2/services.json, POST /open311/v2/requests.xml, ...
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from aiohttp import web
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.types import clean_text
from city.open311.client import DESCRIPTION_LIMIT
from city.open311.errors import ErrorDetail
from city.open311.formats import (
    Format,
    parse_datetime,
    write_errors,
    write_requests,
    write_service_definition,
    write_services,
    write_submit_results,
    write_token_results,
)
from city.open311.mapping import definition_from_form, service_from_form
from city.open311.posted import UnreadableForm, read_form
from city.open311.types import Attribute, ServiceDefinition, ServiceRequest, SubmitResult
from forms_runtime.model import Form, StepType
from storage.models import Open311Request
from storage.types import row_id

__all__ = ["PREFIX", "add_open311_routes", "to_service_request"]

PREFIX = "/open311/v2"
# The spec: without ids, GET requests covers the last 90 days and at most 1,000 requests.
DEFAULT_WINDOW = timedelta(days=90)
MAX_RESULTS = 1000
# Ids per GET requests?service_request_id=...: generous, so a poller needs few calls.
MAX_IDS = 1000
# attribute[code]=value, and attribute[code][]=value for each value of a multivaluelist.
_ATTRIBUTE_FIELD = re.compile(r"^attribute\[([^\]]+)\](?:\[\])?$")
_CONTENT_TYPES = {"json": "application/json", "xml": "text/xml"}
# A token is secrets.token_hex(16); a city's batch service may use longer ones.
_TOKEN_CHARS = 128


class _Refused(Exception):
    def __init__(self, status: int, description: str):
        self.status = status
        self.description = description
        super().__init__(description)


def to_service_request(row: Open311Request) -> ServiceRequest:
    return ServiceRequest(
        service_request_id=row.service_request_id,
        status=row.status,
        status_notes=row.status_notes,
        service_name=row.service_name,
        service_code=row.service_code,
        description=row.description,
        agency_responsible=row.agency_responsible,
        service_notice=row.service_notice,
        requested_datetime=row.requested_datetime,
        updated_datetime=row.updated_datetime,
        expected_datetime=row.expected_datetime,
        address=row.address_string,
        address_id=row.address_id,
        lat=row.lat,
        long=row.long,
        media_url=row.media_url,
    )


def _fmt(request: web.Request) -> Format:
    return "xml" if request.match_info.get("fmt") == "xml" else "json"


def _answer(body: bytes, fmt: Format, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type=_CONTENT_TYPES[fmt], charset="utf-8")


def _error(fmt: Format, status: int, description: str) -> web.Response:
    return _answer(write_errors([ErrorDetail(str(status), description)], fmt), fmt, status)


def _check_attribute(attribute: Attribute, values: list[str]) -> None:
    keys = {v.key for v in attribute.values}
    if attribute.datatype == "multivaluelist":
        unknown = [v for v in values if v not in keys]
    elif len(values) > 1:
        raise _Refused(400, f"attribute[{attribute.code}] takes one value")
    elif attribute.datatype == "singlevaluelist":
        unknown = [v for v in values if v not in keys]
    else:
        unknown = []
        for value in values:
            if attribute.datatype == "number":
                try:
                    float(value)
                except ValueError:
                    raise _Refused(400, f"attribute[{attribute.code}] must be a number") from None
            if attribute.datatype == "datetime" and parse_datetime(value) is None:
                raise _Refused(400, f"attribute[{attribute.code}] must be a datetime")
    if unknown:
        raise _Refused(
            400,
            f"attribute[{attribute.code}] must be one of {', '.join(sorted(keys))}, not {', '.join(unknown)}",
        )


def _coordinate(value: str | None, name: str, limit: float) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        raise _Refused(400, f"{name} must be a number") from None
    if not -limit <= number <= limit:
        raise _Refused(400, f"{name} must be between {-limit:g} and {limit:g}")
    return number


class _GeoReportServer:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        forms: Mapping[str, Form],
        api_key: str,
        answer_with: Literal["id", "token"],
        public_details: bool,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.forms = {form.service_code: form for form in forms.values()}
        self.definitions: dict[str, ServiceDefinition] = {
            code: definition_from_form(form) for code, form in self.forms.items()
        }
        self.api_key = api_key
        self.answer_with = answer_with
        self.public_details = public_details

    def _key_ok(self, given: str) -> bool:
        return not self.api_key or hmac.compare_digest(given.encode(), self.api_key.encode())

    def _shown(self, request: web.Request, rows: Sequence[Open311Request]) -> list[ServiceRequest]:
        found = [to_service_request(row) for row in rows]
        if (
            self.public_details
            or not self.api_key  # a test's open stand-in for a city
            or ("api_key" in request.query and self._key_ok(request.query["api_key"]))
        ):
            return found
        return [
            replace(r, description=None, address=None, address_id=None, media_url=None)
            for r in found
        ]

    async def services(self, request: web.Request) -> web.Response:
        fmt = _fmt(request)
        services = [service_from_form(form) for form in self.forms.values()]
        return _answer(write_services(services, fmt), fmt)

    async def service_definition(self, request: web.Request) -> web.Response:
        fmt = _fmt(request)
        definition = self.definitions.get(request.match_info["code"])
        if definition is None:
            return _error(fmt, 404, f"service_code {request.match_info['code']} not found")
        return _answer(write_service_definition(definition, fmt), fmt)

    def _attributes(
        self, code: str, multi: Sequence[tuple[str, str]]
    ) -> dict[str, str | list[str]]:
        given: dict[str, list[str]] = {}
        for name, value in multi:
            match = _ATTRIBUTE_FIELD.match(name)
            if match:
                given.setdefault(match.group(1), []).append(value)
        attributes: dict[str, str | list[str]] = {}
        for attribute in self.definitions[code].attributes:
            values = [v for v in given.pop(attribute.code, []) if v != ""]
            if not values:
                if attribute.required and attribute.variable:
                    raise _Refused(
                        400, f"attribute[{attribute.code}] is required: {attribute.description}"
                    )
                continue
            _check_attribute(attribute, values)
            attributes[attribute.code] = (
                values if attribute.datatype == "multivaluelist" else values[0]
            )
        if given:
            raise _Refused(
                400, f"unknown attribute {', '.join(sorted(given))} for service_code {code}"
            )
        return attributes

    async def create(self, request: web.Request) -> web.Response:
        fmt = _fmt(request)
        try:
            post = await read_form(request)
        except UnreadableForm as exc:
            return _error(fmt, 400, str(exc))
        fields = {k: v for k, v in post.items() if isinstance(v, str)}
        multi = [(k, v) for k, v in post.items() if isinstance(v, str)]
        if not self._key_ok(fields.get("api_key", "")):
            return _error(
                fmt, 403, "Invalid api_key received -- can't proceed with create_request."
            )
        try:
            row = self._new_row(fields, multi)
        except _Refused as refused:
            return _error(fmt, refused.status, refused.description)
        async with self.sessionmaker() as session, session.begin():
            session.add(row)
        result = (
            SubmitResult(service_request_id=row.service_request_id)
            if self.answer_with == "id"
            else SubmitResult(token=row.token)
        )
        return _answer(write_submit_results([result], fmt), fmt)

    def _new_row(
        self, fields: Mapping[str, str], multi: Sequence[tuple[str, str]]
    ) -> Open311Request:
        code = fields.get("service_code", "").strip()
        if not code:
            raise _Refused(400, "service_code is required")
        form = self.forms.get(code)
        if form is None:
            raise _Refused(404, f"service_code {code} not found")
        lat = _coordinate(fields.get("lat"), "lat", 90)
        long = _coordinate(fields.get("long"), "long", 180)
        address = fields.get("address_string", "").strip() or None
        address_id = fields.get("address_id", "").strip() or None
        # The spec wants a location; a form that asks for none (general enquiries) is let off.
        needs_place = any(
            s.type is StepType.LOCATION and s.required and not s.when for s in form.steps
        )
        if needs_place and (lat is None or long is None) and not address and not address_id:
            raise _Refused(
                400, "a location is required: lat and long, address_string or address_id"
            )
        description = fields.get("description", "")
        if len(description) > DESCRIPTION_LIMIT:
            raise _Refused(400, f"description must be at most {DESCRIPTION_LIMIT} characters")
        now = datetime.now(UTC)
        return Open311Request(
            token=secrets.token_hex(16),
            service_code=code,
            service_name=form.title,
            description=description,
            attributes=self._attributes(code, multi),
            lat=lat,
            long=long,
            address_string=address,
            address_id=address_id,
            media_url=fields.get("media_url") or None,
            first_name=fields.get("first_name") or None,
            last_name=fields.get("last_name") or None,
            phone=fields.get("phone") or None,
            email=fields.get("email") or None,
            device_id=fields.get("device_id") or None,
            account_id=fields.get("account_id") or None,
            status="open",
            requested_datetime=now,
            updated_datetime=now,
        )

    async def token(self, request: web.Request) -> web.Response:
        fmt = _fmt(request)
        token = request.match_info["token"]
        row = None
        # Tokens are hex: anything else is not one (and a NUL would fail PostgreSQL's query).
        if token.isascii() and token.isalnum() and len(token) <= _TOKEN_CHARS:
            async with self.sessionmaker() as session:
                query = select(Open311Request).where(Open311Request.token == token)
                row = await session.scalar(query)
        if row is None:
            return _error(fmt, 404, f"token {token} not found")
        result = SubmitResult(service_request_id=row.service_request_id, token=row.token)
        return _answer(write_token_results([result], fmt), fmt)

    def _query(self, params: Mapping[str, str]) -> Select[Open311Request]:
        query = select(Open311Request)
        ids = [i.strip() for i in params.get("service_request_id", "").split(",") if i.strip()]
        if ids:
            # The spec: ids override every other filter.
            if len(ids) > MAX_IDS:
                raise _Refused(400, f"at most {MAX_IDS} service_request_id values per call")
            numbers = [n for n in map(row_id, ids) if n is not None]
            return query.where(Open311Request.id.in_(numbers)).order_by(Open311Request.id)
        start, end = self._dates(params)
        query = query.where(Open311Request.requested_datetime >= start)
        query = query.where(Open311Request.requested_datetime <= end)
        # Cleaned: PostgreSQL refuses a NUL even in a query's parameter.
        codes = [clean_text(c).strip() for c in params.get("service_code", "").split(",")]
        codes = [c for c in codes if c]
        if codes:
            query = query.where(Open311Request.service_code.in_(codes))
        statuses = [clean_text(s).strip().lower() for s in params.get("status", "").split(",")]
        statuses = [s for s in statuses if s]
        if statuses:
            query = query.where(Open311Request.status.in_(statuses))
        return query.order_by(Open311Request.requested_datetime.desc()).limit(MAX_RESULTS)

    @staticmethod
    def _dates(params: Mapping[str, str]) -> tuple[datetime, datetime]:
        parsed: dict[str, datetime | None] = {}
        for name in ("start_date", "end_date"):
            raw = params.get(name)
            parsed[name] = parse_datetime(raw) if raw else None
            if raw and parsed[name] is None:
                raise _Refused(400, f"{name} must be a W3C datetime, e.g. 2025-03-15T09:00:00Z")
        start_given = parsed["start_date"]
        end = parsed["end_date"] or max(datetime.now(UTC), start_given or datetime.now(UTC))
        start = start_given or end - DEFAULT_WINDOW
        if start > end:
            raise _Refused(400, "start_date must be before end_date")
        return start, end

    async def list_requests(self, request: web.Request) -> web.Response:
        fmt = _fmt(request)
        try:
            query = self._query(request.query)
        except _Refused as refused:
            return _error(fmt, refused.status, refused.description)
        async with self.sessionmaker() as session:
            rows = (await session.scalars(query)).all()
        return _answer(write_requests(self._shown(request, rows), fmt), fmt)

    async def get_request(self, request: web.Request) -> web.Response:
        fmt = _fmt(request)
        ident = request.match_info["id"]
        row = None
        number = row_id(ident)
        if number is not None:
            async with self.sessionmaker() as session:
                row = await session.get(Open311Request, number)
        if row is None:
            return _error(fmt, 404, f"Service request not found with id or token {ident}")
        return _answer(write_requests(self._shown(request, [row]), fmt), fmt)


def add_open311_routes(
    app: web.Application,
    sessionmaker: async_sessionmaker[AsyncSession],
    forms: Mapping[str, Form],
    *,
    api_key: str,
    answer_with: Literal["id", "token"] = "id",
    public_details: bool = False,
) -> None:
    """Mount the built-in GeoReport v2 server on ``app``.

    ``api_key`` is what a POST must carry; ``""`` lets anyone file, which only a test's stand-in
    for a city should do (citybot always passes a key). ``answer_with="token"``
    makes POST answer with a token, as a city's batch service does. Staff change a request's
    status through the admin API (``PATCH /api/v1/requests/{reference}``, bot.web.staff_api).
    """
    server = _GeoReportServer(sessionmaker, forms, api_key, answer_with, public_details)
    fmt = "{fmt:(json|xml)}"
    app.router.add_get(f"{PREFIX}/services.{fmt}", server.services)
    app.router.add_get(f"{PREFIX}/services/{{code:[^/]+}}.{fmt}", server.service_definition)
    app.router.add_post(f"{PREFIX}/requests.{fmt}", server.create)
    app.router.add_get(f"{PREFIX}/requests.{fmt}", server.list_requests)
    app.router.add_get(f"{PREFIX}/requests/{{id:[^/]+}}.{fmt}", server.get_request)
    app.router.add_get(f"{PREFIX}/tokens/{{token:[^/]+}}.{fmt}", server.token)
