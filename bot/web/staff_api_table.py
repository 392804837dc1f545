"""The admin API's route table: each endpoint with its permission, ward scope, body, query and
answer, and the one wrapper that enforces them before a handler runs.

The same table mounts the routes and writes the OpenAPI document (``staff_api_openapi``), so what
is documented is what is served. Every endpoint says who may call it:

* ``permission``: a ``staff.roles.Permission`` the caller's roles must grant (None: any
  signed-in caller, or anyone when ``signed_in`` is False);
* ``scope``: ``"city"`` for a city-wide caller only (accounts, tokens, audit), ``"ward"`` when
  the handler limits what it shows to the caller's wards, ``"self"`` for the caller's own
  session, ``"public"`` for open data anyone may read.

The wrapper, in order: who is calling (a ``Bearer`` API token, or the session cookie, with its
idle and absolute timeouts and the account still active), the CSRF token for a change made with
a session, the permission and scope, then the query and the JSON body (an object, at most
64 KB, no unknown fields, every field of its type). Every refusal is JSON
``{"error": {"code": ..., "message": ...}}``; attacks (a forged or expired cookie, a missing
CSRF token, a call the roles do not allow) are audited.

Example::

    Endpoint("GET", "/accounts", "listAccounts", "List staff accounts", list_accounts,
             permission=Permission.MANAGE_ACCOUNTS, scope="city", query=PAGING)
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp_session import get_session
from sqlalchemy import Select

from bot.metrics import Metrics
from bot.services import Services
from bot.web import staff_sessions
from bot.web.errors import unavailable_errors
from notifier.broadcasts import BroadcastConflict, BroadcastNotFound, InvalidBroadcast
from notifier.incident_suggestions import SuggestionNotFound
from notifier.incidents import IncidentNotFound
from staff import audit
from staff.errors import AccountExists, AccountNotFound, Conflict, InvalidStaffInput, NotFound
from staff.identity import Refusal, RefusalCode, StaffIdentity
from staff.paging import DEFAULT_LIMIT, MAX_LIMIT, Page
from staff.roles import Permission

__all__ = [
    "CLOCK_KEY",
    "MAX_BODY",
    "PAGING",
    "ApiError",
    "Call",
    "Caller",
    "Endpoint",
    "Field",
    "mount",
]

MAX_BODY = 64 * 1024
_RETRY = {"Retry-After": "1"}
log = logging.getLogger("citybot.web")
# The session clock (seconds since the epoch); tests set it on the app to age sessions.
CLOCK_KEY: web.AppKey[Callable[[], float]] = web.AppKey("staff_api_clock")

FieldType = Literal["string", "integer", "number", "boolean", "strings", "datetime", "date"]
Scope = Literal["city", "ward", "self", "public"]
_CHANGES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class ApiError(Exception):
    """A refusal, answered as ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(self, status: int, code: str, message: str, **headers: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers

    def response(self) -> web.Response:
        return error_response(self.status, self.code, self.message, **self.headers)


def error_response(status: int, code: str, message: str, **headers: str) -> web.Response:
    body = {"error": {"code": code, "message": message}}
    return web.json_response(body, status=status, headers=headers)


# The largest whole number a database column holds (a 64-bit integer): a field without a lower
# maximum has this one, so a number past it is a 400, not an overflow deep in the driver (a 500
# found by tests/reliability/test_admin_api_schema.py: an account_id of 22 digits).
_LARGEST_INTEGER = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a JSON body or one query parameter: checked on the way in, documented."""

    name: str
    type: FieldType
    description: str
    required: bool = False
    nullable: bool = False
    max_length: int = 200
    minimum: float | None = None
    maximum: float | None = None
    enum: tuple[str, ...] | None = None

    def schema(self) -> dict[str, Any]:
        if self.type == "strings":
            item: dict[str, Any] = {"type": "string", "maxLength": self.max_length}
            if self.enum:
                item["enum"] = list(self.enum)
            schema: dict[str, Any] = {"type": "array", "items": item, "maxItems": 100}
        elif self.type == "datetime":
            schema = {"type": "string", "format": "date-time"}
        elif self.type == "date":
            schema = {"type": "string", "format": "date"}
        else:
            schema = {"type": self.type}
            if self.type == "string":
                schema["maxLength"] = self.max_length
            if self.enum:
                schema["enum"] = list(self.enum)
            if self.minimum is not None:
                schema["minimum"] = self.minimum
            if self.maximum is not None:
                schema["maximum"] = self.maximum
            elif self.type == "integer":
                schema["maximum"] = _LARGEST_INTEGER
        if self.nullable:
            schema["type"] = [schema["type"], "null"]
        schema["description"] = self.description
        return schema

    def check(self, value: Any) -> Any:
        if value is None:
            if self.nullable:
                return None
            raise self._wrong("must not be null")
        if self.type == "string":
            return self._string(value)
        if self.type == "integer":
            # bool is an int in Python, not in JSON.
            if not isinstance(value, int) or isinstance(value, bool):
                raise self._wrong("must be a whole number")
            largest = _LARGEST_INTEGER if self.maximum is None else self.maximum
            if (self.minimum is not None and value < self.minimum) or value > largest:
                raise self._wrong(f"must be from {self.minimum} to {largest}")
            return value
        if self.type == "number":
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise self._wrong("must be a number")
            if (self.minimum is not None and value < self.minimum) or (
                self.maximum is not None and value > self.maximum
            ):
                raise self._wrong(f"must be from {self.minimum} to {self.maximum}")
            return float(value)
        if self.type == "boolean":
            if not isinstance(value, bool):
                raise self._wrong("must be true or false")
            return value
        if self.type == "datetime":
            return self._datetime(value)
        if self.type == "date":
            return self._date(value)
        if not isinstance(value, list) or len(value) > 100:
            raise self._wrong("must be a list of at most 100 strings")
        return [self._string(item) for item in value]

    def _string(self, value: Any) -> str:
        if not isinstance(value, str):
            raise self._wrong("must be a string")
        if len(value) > self.max_length:
            raise self._wrong(f"must be at most {self.max_length} characters")
        if self.enum and value not in self.enum:
            raise self._wrong(f"must be one of {', '.join(self.enum)}")
        return value

    def _datetime(self, value: Any) -> datetime:
        try:
            parsed = datetime.fromisoformat(self._string(value))
        except ValueError:
            raise self._wrong("must be a date and time like 2026-03-02T09:00:00Z") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    def _date(self, value: Any) -> date:
        text = self._string(value)
        try:
            if len(text) != 10:
                raise ValueError(text)
            return date.fromisoformat(text)
        except ValueError:
            raise self._wrong("must be a date like 2026-03-02") from None

    def from_query(self, raw: str) -> Any:
        if self.type == "integer":
            if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
                raise self._wrong("must be a whole number")
            return self.check(int(raw))
        return self.check(raw)

    def _wrong(self, why: str) -> ApiError:
        return ApiError(400, "invalid_field", f"{self.name} {why}")


PAGING = (
    Field(
        "limit", "integer", f"rows per page (default {DEFAULT_LIMIT})", minimum=1, maximum=MAX_LIMIT
    ),
    Field("cursor", "integer", "the next_cursor of the page before", minimum=1),
)


@dataclass(frozen=True, slots=True)
class Caller:
    identity: StaffIdentity
    via: Literal["session", "token"]


@dataclass(frozen=True, slots=True)
class Call:
    """What a handler gets: the checked input and who is calling."""

    request: web.Request
    services: Services
    caller: Caller | None
    body: Mapping[str, Any]
    query: Mapping[str, Any]
    address: str | None

    @property
    def identity(self) -> StaffIdentity:
        assert self.caller is not None, "a signed-in endpoint"
        return self.caller.identity

    @property
    def limit(self) -> int:
        return int(self.query.get("limit") or DEFAULT_LIMIT)

    @property
    def cursor(self) -> int | None:
        cursor = self.query.get("cursor")
        return None if cursor is None else int(cursor)

    def path_id(self, name: str = "id") -> int:
        raw = self.request.match_info[name]
        if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
            raise ApiError(404, "not_found", f"there is no {name} {raw[:40]!r}")
        return int(raw)


Handler = Callable[[Call], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    method: str
    # Below /api/v1, in aiohttp's form ("/accounts/{id}").
    path: str
    operation_id: str
    summary: str
    handler: Handler
    permission: Permission | None = None
    scope: Scope = "city"
    signed_in: bool = True
    body: tuple[Field, ...] | None = None
    query: tuple[Field, ...] = ()
    # The JSON Schema of a good answer, and its status.
    answer: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})
    status: int = 200
    tag: str = "staff"
    # The media types a good answer comes in (a CSV export, an event stream, or either of
    # JSON and CSV as ``format`` asks), so the document names what is really sent.
    media_types: tuple[str, ...] = ("application/json",)
    # Refusals beyond those every endpoint of its kind has, with what they mean (an endpoint
    # with a path parameter has 404 without saying so).
    refusals: Mapping[int, str] = field(default_factory=dict)


def _clock(request: web.Request) -> float:
    return request.config_dict.get(CLOCK_KEY, time.time)()


async def _audit_refusal(
    services: Services, request: web.Request, actor: str, action: str, why: str
) -> None:
    async with services.session_factory() as session, session.begin():
        await audit.record(
            session,
            actor=actor,
            action=action,
            # The path as sent (still percent-encoded): a NUL in it, which PostgreSQL refuses
            # in text, stays "%00" and the refusal is recorded, not turned into a 500.
            target=f"{request.method} {request.rel_url.raw_path}"[:128],
            address=request.remote,
            details={"why": why},
        )


_TOKEN_STATUS = {RefusalCode.THROTTLED: 429}


async def _by_token(services: Services, request: web.Request, header: str) -> Caller:
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "token_invalid", "Authorization must be 'Bearer <API token>'.")
    result = await services.staff_auth.verify_token(token.strip(), address=request.remote)
    if isinstance(result, Refusal):
        raise ApiError(_TOKEN_STATUS.get(result.code, 401), result.code.value, result.message)
    return Caller(result, "token")


async def _by_session(services: Services, request: web.Request) -> Caller | None:
    session = await get_session(request)
    now = _clock(request)
    state = staff_sessions.check(session, now=now)
    if state is staff_sessions.SessionState.NONE:
        if session.new and staff_sessions.COOKIE_NAME in request.cookies:
            # A cookie that does not decrypt: forged, from another key, or older than a day.
            await _audit_refusal(services, request, "anonymous", "session.refused", "unreadable")
            raise ApiError(401, "session_invalid", "This session is not valid; sign in again.")
        return None
    account_id = staff_sessions.account_of(session)
    if state is not staff_sessions.SessionState.OK:
        session.invalidate()
        await _audit_refusal(
            services, request, f"staff:{account_id}", "session.expired", state.value
        )
        raise ApiError(401, "session_expired", "Your session has ended; sign in again.")
    result = await services.staff_auth.session_identity(account_id, address=request.remote)
    if isinstance(result, Refusal):
        session.invalidate()
        raise ApiError(401, result.code.value, result.message)
    if request.method in _CHANGES and not staff_sessions.csrf_ok(
        session, request.headers.get(staff_sessions.CSRF_HEADER)
    ):
        await _audit_refusal(services, request, result.actor, "session.csrf_refused", "csrf")
        raise ApiError(
            403,
            "csrf_failed",
            f"A change made with a session needs its {staff_sessions.CSRF_HEADER} header "
            "(GET /api/v1/session gives it).",
        )
    staff_sessions.touch(session, now=now)
    return Caller(result, "session")


async def _caller(services: Services, request: web.Request) -> Caller | None:
    header = request.headers.get("Authorization")
    if header is not None:
        return await _by_token(services, request, header)
    return await _by_session(services, request)


async def _allowed(
    services: Services, request: web.Request, endpoint: Endpoint, caller: Caller | None
) -> None:
    if not endpoint.signed_in:
        return
    if caller is None:
        raise ApiError(401, "not_signed_in", "Sign in (POST /api/v1/session) or send an API token.")
    identity = caller.identity
    if identity.must_change_password and endpoint.scope != "self":
        raise ApiError(
            403,
            "password_change_required",
            "Set a new password first (PUT /api/v1/session/password).",
        )
    if endpoint.permission is not None and not identity.can(endpoint.permission):
        await _audit_refusal(
            services, request, identity.actor, "access.denied", endpoint.permission.value
        )
        raise ApiError(
            403, "forbidden", f"Your roles do not allow this ({endpoint.permission.value})."
        )
    if endpoint.scope == "city" and identity.wards is not None:
        await _audit_refusal(services, request, identity.actor, "access.denied", "ward_scoped")
        raise ApiError(403, "forbidden", "Only a city-wide account may do this.")


def _query(endpoint: Endpoint, request: web.Request) -> dict[str, Any]:
    known = {f.name: f for f in endpoint.query}
    checked: dict[str, Any] = {}
    for name in request.query:
        if name not in known:
            raise ApiError(400, "unknown_parameter", f"unknown query parameter {name[:40]!r}")
        if len(request.query.getall(name)) > 1:
            raise ApiError(400, "invalid_field", f"{name} is given more than once")
        checked[name] = known[name].from_query(request.query[name])
    for f in endpoint.query:
        if f.required and f.name not in checked:
            raise ApiError(400, "missing_field", f"{f.name} is required")
    return checked


async def _body(endpoint: Endpoint, request: web.Request) -> dict[str, Any]:
    if endpoint.body is None:
        return {}
    if request.content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, "too_large", f"The body is larger than {MAX_BODY // 1024} KB.")
    raw = await request.read()
    if len(raw) > MAX_BODY:
        raise ApiError(413, "too_large", f"The body is larger than {MAX_BODY // 1024} KB.")
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "malformed_json", "The body is not valid JSON.") from None
    if not isinstance(document, dict):
        raise ApiError(400, "not_an_object", "The body must be a JSON object.")
    known = {f.name: f for f in endpoint.body}
    unknown = sorted(set(document) - set(known))
    if unknown:
        raise ApiError(400, "unknown_field", f"unknown field {unknown[0][:40]!r}")
    for f in endpoint.body:
        if f.required and f.name not in document:
            raise ApiError(400, "missing_field", f"{f.name} is required")
    return {name: known[name].check(value) for name, value in document.items()}


# The domain's refusals as the API's, for every endpoint alike (a handler just raises them).
_REFUSALS: tuple[tuple[type[Exception], int, str], ...] = (
    (InvalidStaffInput, 400, "invalid_input"),
    (InvalidBroadcast, 400, "invalid_input"),
    (AccountExists, 409, "exists"),
    (Conflict, 409, "conflict"),
    (BroadcastConflict, 409, "conflict"),
    (AccountNotFound, 404, "not_found"),
    (NotFound, 404, "not_found"),
    (BroadcastNotFound, 404, "not_found"),
    (IncidentNotFound, 404, "not_found"),
    (SuggestionNotFound, 404, "not_found"),
)


def _wrap(
    endpoint: Endpoint, services: Services
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            # A public endpoint looks at no credentials: signing in must work whatever stale
            # cookie or header the browser still sends.
            caller = await _caller(services, request) if endpoint.signed_in else None
            await _allowed(services, request, endpoint, caller)
            call = Call(
                request=request,
                services=services,
                caller=caller,
                query=_query(endpoint, request),
                body=await _body(endpoint, request),
                address=request.remote,
            )
            answer = await endpoint.handler(call)
        except ApiError as error:
            return error.response()
        except tuple(e for e, _, _ in _REFUSALS) as error:
            status, code = next((s, c) for e, s, c in _REFUSALS if isinstance(error, e))
            return error_response(status, code, str(error))
        if isinstance(answer, web.StreamResponse):
            return answer
        return web.json_response(answer, status=endpoint.status, dumps=_dumps)

    return handle


def _default(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    raise TypeError(f"{type(value).__name__} is not JSON")


def _dumps(document: Any) -> str:
    return json.dumps(document, default=_default, ensure_ascii=False)


def api_errors(metrics: Metrics) -> Middleware:
    """Every failure below /api/v1 in the API's error shape: aiohttp's own refusals (404, 405,
    413), a store that is down (503, try again) and anything unexpected (500, logged and
    counted as the app's own middleware does; the client sees no detail)."""

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(
                exc.status, "bad_request"
            )
            allow = exc.headers.get("Allow")
            headers = {"Allow": allow} if allow else {}
            return error_response(exc.status, code, exc.reason, **headers)
        except unavailable_errors() as exc:
            metrics.errors.labels(where="store").inc()
            log.warning(
                "store unavailable", extra={"path": request.path, "error": type(exc).__name__}
            )
            return error_response(
                503, "unavailable", "The service is briefly unavailable; try again.", **_RETRY
            )
        except Exception:
            metrics.errors.labels(where="http").inc()
            log.exception("unhandled error", extra={"path": request.path})
            return error_response(
                500, "internal_error", "Something went wrong on our side; try again shortly."
            )

    return middleware


async def scoped_page(
    call: Call,
    query: Select[Any],
    visible: Callable[[Any], bool],
    key: Callable[[Any], int],
    shown: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """A page of ``query``'s rows (newest first, keyed by ``key``) that the caller may see.

    For lists whose ward scope lives in a JSON document (a broadcast's or an incident's target):
    the rows are read in batches and checked one by one, and a ward-scoped account pages through
    its own offices' rows, which are few."""
    seen: list[Any] = []
    async with call.services.session_factory() as session:
        rows = await session.stream_scalars(query.execution_options(yield_per=200))
        async for row in rows:
            if visible(row):
                seen.append(row)
                if len(seen) > call.limit:
                    break
        await rows.close()
    page = Page.of(seen, call.limit, key=key)
    return {"items": [shown(r) for r in page.items], "next_cursor": page.next_cursor}


def mount(api: web.Application, endpoints: tuple[Endpoint, ...], services: Services) -> None:
    """Add every endpoint of the table to ``api`` (the /api/v1 sub-application)."""
    api.middlewares.append(api_errors(services.metrics))
    for endpoint in endpoints:
        api.router.add_route(endpoint.method, endpoint.path, _wrap(endpoint, services))
