"""The admin API under /api/v1: staff sessions, accounts, API tokens, the audit log and service
requests. Each handler is a few lines of translation; the work is in ``staff/``.

The table ``ENDPOINTS`` says, for every route, who may call it and what goes in and out
(``staff_api_table``); ``/api/v1/openapi.json`` is written from it (``staff_api_openapi``).

Example::

    add_routes(app, services)     # POST /api/v1/session, GET /api/v1/accounts, ...
"""

from __future__ import annotations

import time
from typing import Any

import aiohttp_session
from aiohttp import web
from aiohttp_session import get_session, new_session

from bot.services import Services
from bot.web import (
    open_data,
    staff_api_broadcasts,
    staff_api_digests,
    staff_api_incidents,
    staff_api_openapi,
    staff_api_suggestions,
    staff_api_support,
    staff_api_support_console,
    staff_api_support_events,
    staff_api_support_takeover,
    staff_sessions,
    staff_sso,
)
from bot.web import staff_api_schemas as schemas
from bot.web.staff_api_table import (
    CLOCK_KEY,
    PAGING,
    ApiError,
    Call,
    Endpoint,
    Field,
    mount,
)
from staff import accounts, audit, residents, service_requests
from staff.accounts import AccountChange, NewAccount
from staff.audit_log import AuditFilter, list_entries
from staff.identity import Refusal, RefusalCode, StaffIdentity
from staff.roles import Permission, Role, permissions_for
from storage.models import AuditLog, StaffAccount, StaffToken

__all__ = ["API_PREFIX", "CLOCK_KEY", "ENDPOINTS", "add_routes"]

API_PREFIX = "/api/v1"
_ROLES = tuple(r.value for r in Role)
_P = Permission


# -- what goes out -------------------------------------------------------------------------


def _account(a: StaffAccount) -> dict[str, Any]:
    return {
        "id": a.id,
        "email": a.email,
        "name": a.name,
        "roles": a.roles,
        "wards": a.wards,
        "languages": a.languages,
        "active": a.active,
        "totp": a.totp_secret is not None,
        "created_at": a.created_at,
    }


def _token(t: StaffToken) -> dict[str, Any]:
    return {
        "id": t.id,
        "account_id": t.account_id,
        "prefix": t.prefix,
        "roles": t.roles,
        "created_at": t.created_at,
        "expires_at": t.expires_at,
        "revoked_at": t.revoked_at,
        "last_used_at": t.last_used_at,
    }


def _entry(e: AuditLog) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": e.at,
        "actor": e.actor,
        "action": e.action,
        "target": e.subject,
        "address": e.address,
        "details": e.details,
        "seq": e.seq,
    }


def _me(identity: StaffIdentity, via: str) -> dict[str, Any]:
    return {
        "account_id": identity.account_id,
        "email": identity.email,
        "roles": sorted(r.value for r in identity.roles),
        "permissions": sorted(p.value for p in permissions_for(identity.roles)),
        "wards": None if identity.wards is None else sorted(identity.wards),
        "must_change_password": identity.must_change_password,
        "via": via,
    }


def _page(items: list[dict[str, Any]], next_cursor: int | None) -> dict[str, Any]:
    return {"items": items, "next_cursor": next_cursor}


# -- sessions ------------------------------------------------------------------------------

_REFUSAL_STATUS = {RefusalCode.THROTTLED: 429}


def _refused(result: Refusal) -> ApiError:
    headers = {}
    if result.retry_after is not None:
        headers["Retry-After"] = result.retry_after.strftime("%a, %d %b %Y %H:%M:%S GMT")
    return ApiError(
        _REFUSAL_STATUS.get(result.code, 401), result.code.value, result.message, **headers
    )


async def sign_in(call: Call) -> dict[str, Any]:
    result = await call.services.staff_auth.sign_in(
        call.body["email"], call.body["password"], call.body.get("totp"), address=call.address
    )
    if isinstance(result, Refusal):
        raise _refused(result)
    # A new session (and CSRF token) for every sign-in: a cookie planted before is no use.
    session = await new_session(call.request)
    csrf = staff_sessions.start(
        session,
        account_id=result.account_id,
        now=call.request.config_dict.get(CLOCK_KEY, time.time)(),
    )
    return {**_me(result, "session"), "csrf_token": csrf}


async def who_am_i(call: Call) -> dict[str, Any]:
    caller = call.caller
    assert caller is not None
    answer = _me(caller.identity, caller.via)
    if caller.via == "session":
        answer["csrf_token"] = (await get_session(call.request)).get("csrf")
    return answer


async def sign_out(call: Call) -> dict[str, Any]:
    (await get_session(call.request)).invalidate()
    async with call.services.session_factory() as session, session.begin():
        await audit.record(
            session, actor=call.identity.actor, action="sign_out", address=call.address
        )
    return {"signed_out": True}


async def change_password(call: Call) -> dict[str, Any]:
    if call.caller is None or call.caller.via != "session":
        raise ApiError(403, "forbidden", "A password is changed by its owner, signed in.")
    refusal = await call.services.staff_auth.change_password(
        call.identity.account_id,
        call.body["current_password"],
        call.body["new_password"],
        address=call.address,
    )
    if refusal is not None:
        raise _refused(refusal)
    return {"changed": True}


# -- accounts ------------------------------------------------------------------------------


async def list_accounts(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session:
        page = await accounts.list_accounts_page(session, limit=call.limit, after=call.cursor)
        return _page([_account(a) for a in page.items], page.next_cursor)


async def create_account(call: Call) -> dict[str, Any]:
    new = NewAccount.checked(
        call.body["email"],
        roles=call.body["roles"],
        name=call.body.get("name") or "",
        wards=call.body.get("wards"),
        languages=call.body.get("languages") or (),
    )
    async with call.services.session_factory() as session, session.begin():
        created = await accounts.create_account(
            session, new, actor=call.identity.actor, address=call.address
        )
        return {
            "account": _account(created.account),
            "password": created.password,
            "totp_uri": created.totp_uri,
        }


async def get_account(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session:
        return _account(await accounts.account_by_id(session, call.path_id()))


async def change_account(call: Call) -> dict[str, Any]:
    body = call.body
    change = AccountChange.checked(
        roles=body.get("roles"),
        wards=(body["wards"] or ()) if "wards" in body else None,
        active=body.get("active"),
    )
    async with call.services.session_factory() as session, session.begin():
        account = await accounts.change_account(
            session, call.path_id(), change, actor=call.identity.actor, address=call.address
        )
        return _account(account)


async def disable_account(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session, session.begin():
        account = await accounts.change_account(
            session,
            call.path_id(),
            AccountChange(active=False),
            actor=call.identity.actor,
            address=call.address,
        )
        return _account(account)


# -- tokens --------------------------------------------------------------------------------


async def list_tokens(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session:
        page = await accounts.list_tokens_page(session, limit=call.limit, before=call.cursor)
        return _page([_token(t) for t in page.items], page.next_cursor)


async def issue_token(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session, session.begin():
        account = await accounts.account_by_id(session, call.body["account_id"])
        issued = await accounts.issue_token(
            session,
            account.email,
            roles=call.body["roles"],
            days=call.body.get("days") or 90,
            actor=call.identity.actor,
            address=call.address,
        )
        return {**_token(issued.record), "token": issued.token}


async def revoke_token(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session, session.begin():
        record = await accounts.revoke_token(
            session, call.path_id(), actor=call.identity.actor, address=call.address
        )
        return _token(record)


# -- the audit log -------------------------------------------------------------------------


async def list_audit(call: Call) -> dict[str, Any]:
    q = call.query
    where = AuditFilter(
        actor=q.get("actor"), action=q.get("action"), since=q.get("from"), until=q.get("to")
    )
    async with call.services.session_factory() as session:
        page = await list_entries(session, where, limit=call.limit, before=call.cursor)
        return _page([_entry(e) for e in page.items], page.next_cursor)


async def verify_audit(call: Call) -> dict[str, Any]:
    sessions = call.services.session_factory
    async with sessions() as session, session.begin():
        await audit.seal(session)
        await audit.record(
            session, actor=call.identity.actor, action="audit.verify", address=call.address
        )
    report = await audit.verify(sessions)
    broken = report.broken
    return {
        "rows": report.rows,
        "head": report.head,
        "intact": broken is None,
        "broken": None
        if broken is None
        else {"row_id": broken.row_id, "seq": broken.seq, "reason": broken.reason},
    }


# -- service requests ----------------------------------------------------------------------


def _request(r: service_requests.RequestSummary) -> dict[str, Any]:
    return {
        "reference": r.reference,
        "service_code": r.service_code,
        "channel": r.channel,
        "ward": r.ward,
        "wards": r.wards,
        "area_type": r.area_type,
        "address_string": r.address_string,
        "filing": r.filing,
        "service_request_id": r.service_request_id,
        "status": r.status,
        "status_notes": r.status_notes,
        "created_at": r.created_at,
        "phones_masked": r.phones_masked,
    }


def _elsewhere(call: Call) -> frozenset[str]:
    """The services filed with a back end of their own (a transport operator's), whose request
    numbers are not the built-in server's."""
    return frozenset(call.services.filer.service_backends)


async def list_requests(call: Call) -> dict[str, Any]:
    q = call.query
    where = service_requests.RequestFilter(
        ward=q.get("ward"),
        area_type=q.get("area_type"),
        status=q.get("status"),
        source=q.get("source") or "citybot",
    )
    async with call.services.session_factory() as session:
        page = await service_requests.list_requests(
            session,
            call.identity,
            where,
            limit=call.limit,
            before=call.cursor,
            elsewhere=_elsewhere(call),
        )
        return _page([_request(r) for r in page.items], page.next_cursor)


async def change_request(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session, session.begin():
        changed = await service_requests.change_status(
            session,
            call.identity,
            call.request.match_info["reference"],
            call.body["status"],
            call.body.get("status_notes"),
            address=call.address,
            elsewhere=_elsewhere(call),
        )
        return _request(changed)


async def reveal_phone(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session, session.begin():
        phones = await service_requests.reveal_phones(
            session,
            call.identity,
            call.request.match_info["reference"],
            address=call.address,
            elsewhere=_elsewhere(call),
        )
        return {"reference": call.request.match_info["reference"], "phones": phones}


# -- residents' rights (POPIA access and erasure requests) ----------------------------------


async def find_residents(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session, session.begin():
        found = await residents.find_residents(
            session, call.query["address"], actor=call.identity.actor, address=call.address
        )
        return {
            "items": [
                {
                    "id": r.id,
                    "channels": r.channels,
                    "created_at": r.created_at,
                    "erased_at": r.erased_at,
                }
                for r in found
            ]
        }


async def export_resident(call: Call) -> dict[str, Any]:
    async with call.services.session_factory() as session, session.begin():
        return await residents.export_resident(
            session, call.path_id(), actor=call.identity.actor, address=call.address
        )


async def erase_resident(call: Call) -> dict[str, Any]:
    services, resident_id = call.services, call.path_id()
    async with services.session_factory() as session, session.begin():
        counts = await residents.erase_resident(
            session,
            services.turn_loop.forms,
            resident_id,
            actor=call.identity.actor,
            address=call.address,
            reason=call.body["reason"],
        )
    # After the commit: the conversations' state (which carries the resident's profile) lives
    # with the turn loop, in Redis or its own table.
    await services.turn_loop.forget(resident_id, counts.addresses)
    return {
        "id": resident_id,
        "reports": counts.reports,
        "messages": counts.messages,
        "addresses": len(counts.addresses),
    }


# -- the document --------------------------------------------------------------------------


async def openapi(call: Call) -> web.Response:
    return web.json_response(staff_api_openapi.document(ENDPOINTS, API_PREFIX))


# -- the table -----------------------------------------------------------------------------

_S, _NS, _STRINGS, _NSTRINGS = schemas.S, schemas.NS, schemas.STRINGS, schemas.NSTRINGS
_TIME, _NTIME, _INT = schemas.TIME, schemas.NTIME, schemas.INT
_object, _paged = schemas.obj, schemas.paged


_ME = _object(
    account_id=_INT,
    email=_S,
    roles=_STRINGS,
    permissions=_STRINGS,
    wards=_NSTRINGS,
    must_change_password={"type": "boolean"},
    via={"type": "string", "enum": ["session", "token"]},
)
_ME_CSRF = {**_ME, "properties": {**_ME["properties"], "csrf_token": _S}}
_ACCOUNT = _object(
    id=_INT,
    email=_S,
    name=_S,
    roles=_STRINGS,
    wards=_NSTRINGS,
    languages=_STRINGS,
    active={"type": "boolean"},
    totp={"type": "boolean"},
    created_at=_TIME,
)
_TOKEN = _object(
    id=_INT,
    account_id=_INT,
    prefix=_S,
    roles=_STRINGS,
    created_at=_TIME,
    expires_at=_TIME,
    revoked_at=_NTIME,
    last_used_at=_NTIME,
)
_ENTRY = _object(
    id=_INT,
    at=_TIME,
    actor=_S,
    action=_S,
    target=_NS,
    address=_NS,
    details={"type": "object"},
    seq={"type": ["integer", "null"]},
)
_REQUEST = _object(
    reference=_S,
    service_code=_S,
    channel=_NS,
    ward=_NS,
    wards=_NSTRINGS,
    area_type=_NS,
    address_string=_NS,
    filing=_S,
    service_request_id=_NS,
    status=_NS,
    status_notes=_NS,
    created_at=_TIME,
    phones_masked=_STRINGS,
)
_WARDS_FIELD = Field(
    "wards",
    "strings",
    "the wards the account acts for; null or [] is the whole city",
    nullable=True,
    max_length=32,
)
_REF = "/requests/{reference:[A-Za-z0-9-]{1,16}}"
_ID = "{id:[^/]{1,40}}"

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        "/openapi.json",
        "openapi",
        "This document (OpenAPI 3.1)",
        openapi,
        signed_in=False,
        scope="self",
        tag="meta",
    ),
    Endpoint(
        "POST",
        "/session",
        "signIn",
        "Sign in with email, password and TOTP code; sets the session cookie",
        sign_in,
        signed_in=False,
        scope="self",
        tag="session",
        answer=_ME_CSRF,
        refusals={
            401: "wrong email, password or code",
            429: "too many tries for this email or address: wait as Retry-After says",
        },
        body=(
            Field("email", "string", "the account's email", required=True, max_length=254),
            Field("password", "string", "the password", required=True, max_length=1024),
            Field(
                "totp",
                "string",
                "the 6-digit code, for roles that need one",
                nullable=True,
                max_length=12,
            ),
        ),
    ),
    Endpoint(
        "GET",
        "/session",
        "whoAmI",
        "Who is calling, and the session's CSRF token",
        who_am_i,
        scope="self",
        tag="session",
        answer=_ME,
    ),
    Endpoint(
        "DELETE",
        "/session",
        "signOut",
        "Sign out",
        sign_out,
        scope="self",
        tag="session",
        answer=_object(signed_out={"type": "boolean"}),
    ),
    Endpoint(
        "PUT",
        "/session/password",
        "changePassword",
        "Replace one's own password (first of all the one-time one)",
        change_password,
        scope="self",
        tag="session",
        answer=_object(changed={"type": "boolean"}),
        body=(
            Field("current_password", "string", "the password now", required=True, max_length=1024),
            Field(
                "new_password", "string", "at least 12 characters", required=True, max_length=1024
            ),
        ),
    ),
    Endpoint(
        "GET",
        "/accounts",
        "listAccounts",
        "List staff accounts, oldest first",
        list_accounts,
        permission=_P.MANAGE_ACCOUNTS,
        tag="accounts",
        query=PAGING,
        answer=_paged(_ACCOUNT),
    ),
    Endpoint(
        "POST",
        "/accounts",
        "createAccount",
        "Create a staff account; its one-time password and TOTP URI are shown once",
        create_account,
        permission=_P.MANAGE_ACCOUNTS,
        tag="accounts",
        status=201,
        answer=_object(account=_ACCOUNT, password=_S, totp_uri=_NS),
        body=(
            Field("email", "string", "the person's email", required=True, max_length=254),
            Field("roles", "strings", "role names", required=True, enum=_ROLES, max_length=32),
            Field("name", "string", "the person's name"),
            _WARDS_FIELD,
            Field("languages", "strings", "language codes the person speaks", max_length=3),
        ),
    ),
    Endpoint(
        "GET",
        f"/accounts/{_ID}",
        "getAccount",
        "One staff account",
        get_account,
        permission=_P.MANAGE_ACCOUNTS,
        tag="accounts",
        answer=_ACCOUNT,
    ),
    Endpoint(
        "PATCH",
        f"/accounts/{_ID}",
        "changeAccount",
        "Change an account's roles, wards or active flag",
        change_account,
        permission=_P.MANAGE_ACCOUNTS,
        tag="accounts",
        answer=_ACCOUNT,
        body=(
            Field("roles", "strings", "role names (replaces them all)", enum=_ROLES, max_length=32),
            _WARDS_FIELD,
            Field("active", "boolean", "false disables the account"),
        ),
    ),
    Endpoint(
        "DELETE",
        f"/accounts/{_ID}",
        "disableAccount",
        "Disable an account (its sessions and tokens stop working at once)",
        disable_account,
        permission=_P.MANAGE_ACCOUNTS,
        tag="accounts",
        answer=_ACCOUNT,
    ),
    Endpoint(
        "GET",
        "/tokens",
        "listTokens",
        "List API tokens, newest first (prefixes only)",
        list_tokens,
        permission=_P.MANAGE_TOKENS,
        tag="tokens",
        query=PAGING,
        answer=_paged(_TOKEN),
    ),
    Endpoint(
        "POST",
        "/tokens",
        "issueToken",
        "Issue an API token with some of an account's roles; the token is shown once",
        issue_token,
        permission=_P.MANAGE_TOKENS,
        tag="tokens",
        status=201,
        refusals={404: "there is no such account"},
        answer={**_TOKEN, "properties": {**_TOKEN["properties"], "token": _S}},
        body=(
            Field("account_id", "integer", "whose token", required=True, minimum=1),
            Field(
                "roles",
                "strings",
                "some of the account's roles",
                required=True,
                enum=_ROLES,
                max_length=32,
            ),
            Field(
                "days",
                "integer",
                "days it is valid (default 90)",
                minimum=1,
                maximum=accounts.MAX_TOKEN_DAYS,
            ),
        ),
    ),
    Endpoint(
        "DELETE",
        f"/tokens/{_ID}",
        "revokeToken",
        "Revoke an API token",
        revoke_token,
        permission=_P.MANAGE_TOKENS,
        tag="tokens",
        answer=_TOKEN,
    ),
    Endpoint(
        "GET",
        "/audit",
        "listAudit",
        "The audit log, newest first",
        list_audit,
        permission=_P.VIEW_AUDIT,
        tag="audit",
        answer=_paged(_ENTRY),
        query=(
            *PAGING,
            Field("actor", "string", "like staff:7, cli or anonymous", max_length=128),
            Field(
                "action",
                "string",
                "an action (sign_in.failed) or a family (sign_in.)",
                max_length=64,
            ),
            Field("from", "datetime", "entries at or after this time"),
            Field("to", "datetime", "entries before this time"),
        ),
    ),
    Endpoint(
        "POST",
        "/audit/verify",
        "verifyAudit",
        "Seal the newest audit rows and check the whole hash chain",
        verify_audit,
        permission=_P.VIEW_AUDIT,
        tag="audit",
        answer=_object(
            rows=_INT,
            head=_S,
            intact={"type": "boolean"},
            broken={"type": ["object", "null"]},
        ),
    ),
    Endpoint(
        "GET",
        "/residents",
        "findResidents",
        "Find the residents who write from a phone number or chat id (audited)",
        find_residents,
        permission=_P.EXPORT_RESIDENT,
        scope="city",
        tag="residents",
        answer=_object(
            items={
                "type": "array",
                "items": _object(id=_INT, channels=_STRINGS, created_at=_TIME, erased_at=_NTIME),
            }
        ),
        query=(
            Field(
                "address",
                "string",
                "a phone number (+27...) or a chat id",
                required=True,
                max_length=255,
            ),
        ),
    ),
    Endpoint(
        "GET",
        f"/residents/{_ID}/export",
        "exportResident",
        "Everything citybot holds about a resident, as EXPORT MY DATA gives it (audited)",
        export_resident,
        permission=_P.EXPORT_RESIDENT,
        scope="city",
        tag="residents",
        answer={"type": "object", "description": "the resident's export (format citybot-export/1)"},
    ),
    Endpoint(
        "POST",
        f"/residents/{_ID}/erase",
        "eraseResident",
        "Erase a resident's personal data as DELETE MY DATA does (audited with the reason)",
        erase_resident,
        permission=_P.ERASE_RESIDENT,
        scope="city",
        tag="residents",
        answer=_object(id=_INT, reports=_INT, messages=_INT, addresses=_INT),
        body=(
            Field(
                "reason",
                "string",
                "the request this answers (kept in the audit log)",
                required=True,
                max_length=residents.MAX_REASON_LENGTH,
            ),
        ),
    ),
    Endpoint(
        "GET",
        "/requests",
        "listRequests",
        "Service requests in the caller's wards, newest first, personal data masked",
        list_requests,
        permission=_P.VIEW_REQUESTS,
        scope="ward",
        tag="requests",
        answer=_paged(_REQUEST),
        query=(
            *PAGING,
            Field("ward", "string", "one ward", max_length=32),
            Field("area_type", "string", "an area type (formal, informal, ...)", max_length=32),
            Field("status", "string", "the city's status", enum=service_requests.STATUSES),
            Field(
                "source",
                "string",
                "citybot (residents' reports, the default) or open311 (posted straight to the "
                "built-in GeoReport server by another client; references GR-n; city-wide only)",
                enum=service_requests.SOURCES,
            ),
        ),
    ),
    Endpoint(
        "PATCH",
        _REF,
        "changeRequest",
        "Change a request's status and notes (on the built-in Open311 server)",
        change_request,
        permission=_P.UPDATE_REQUESTS,
        scope="ward",
        tag="requests",
        answer=_REQUEST,
        body=(
            Field(
                "status", "string", "the new status", required=True, enum=service_requests.STATUSES
            ),
            Field(
                "status_notes",
                "string",
                "notes the resident is told",
                nullable=True,
                max_length=service_requests.MAX_NOTES_LENGTH,
            ),
        ),
    ),
    Endpoint(
        "POST",
        f"{_REF}/reveal-phone",
        "revealPhone",
        "Reveal the resident's phone numbers for one request (audited)",
        reveal_phone,
        permission=_P.VIEW_PERSONAL,
        scope="ward",
        tag="requests",
        answer=_object(reference=_S, phones=_STRINGS),
    ),
    *staff_api_broadcasts.ENDPOINTS,
    *staff_api_incidents.ENDPOINTS,
    *staff_api_suggestions.ENDPOINTS,
    *staff_api_digests.ENDPOINTS,
    *staff_api_support.ENDPOINTS,
    *staff_api_support_console.ENDPOINTS,
    *staff_api_support_takeover.ENDPOINTS,
    *staff_api_support_events.ENDPOINTS,
    *staff_sso.ENDPOINTS,
    *open_data.ENDPOINTS,
)


def add_routes(app: web.Application, services: Services) -> None:
    """Mount the admin API at /api/v1, with its own session middleware."""
    api = web.Application()
    aiohttp_session.setup(api, staff_sessions.session_storage(services.settings))
    mount(api, ENDPOINTS, services)
    app.add_subapp(API_PREFIX, api)
