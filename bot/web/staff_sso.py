"""Single sign-on routes of the admin API: ``GET /api/v1/session/sso`` sends the browser to the
city's OpenID Connect provider; ``GET /api/v1/session/sso/callback`` brings it back, checks the
round trip (``staff.sso``), starts the same staff session a password sign-in starts, and sends
the browser to the console.

The round trip's secrets (state, nonce, PKCE verifier) ride in a cookie of their own, sealed
(Fernet, a key derived from CITYBOT_SESSION_SECRET, or one still in CITYBOT_SESSION_SECRET_OLD)
and good for ten minutes: SameSite=Lax,
because the provider's redirect back is a cross-site navigation that a Strict cookie (the
session's) would not come with. It is cleared on the way back, so a code or state cannot be
played twice.

Every refusal is JSON ``{"error": {...}}``: 404 ``sso_off`` when SSO is not configured, 400 for
a forged or lost state or a refused code or token (audited as ``sign_in.sso_refused``), 401 for
a person the provider knows but citybot gives no role or who is disabled, 503 while the provider
is down.
"""

from __future__ import annotations

import json
import time

from aiohttp import web
from aiohttp_session import new_session
from cryptography.fernet import InvalidToken, MultiFernet

from bot.web import staff_sessions
from bot.web.staff_api_table import CLOCK_KEY, ApiError, Call, Endpoint, Field
from staff import audit
from staff.identity import Refusal
from staff.sso import OidcSignIn, SsoRefused, SsoStart, SsoUnavailable, sign_in
from storage.types import utc_now

__all__ = ["COOKIE", "ENDPOINTS"]

COOKIE = "citybot_sso"
_PATH = "/api/v1/session/sso"
_MAX_AGE = 600


def _fernet(call: Call) -> MultiFernet:
    return staff_sessions.sealer(call.services.settings.session_secrets, b"citybot sso")


def _sso(call: Call) -> OidcSignIn:
    sso = call.services.staff_sso
    if sso is None:
        raise ApiError(404, "sso_off", "Single sign-on is not configured here.")
    return sso


async def start(call: Call) -> web.StreamResponse:
    sso = _sso(call)
    try:
        started = await sso.start()
    except SsoUnavailable as exc:
        raise ApiError(
            503, "sso_unavailable", f"The sign-in provider is unavailable: {exc}"
        ) from None
    sealed = _fernet(call).encrypt(
        json.dumps(
            {"state": started.state, "nonce": started.nonce, "verifier": started.verifier}
        ).encode()
    )
    response = web.Response(status=302, headers={"Location": started.url})
    response.set_cookie(
        COOKIE,
        sealed.decode(),
        max_age=_MAX_AGE,
        path=_PATH,
        httponly=True,
        samesite="Lax",
        secure=call.services.settings.public_url.startswith("https://"),
    )
    return response


def _expected(call: Call) -> SsoStart | None:
    raw = call.request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        opened = json.loads(_fernet(call).decrypt(raw.encode(), ttl=_MAX_AGE))
        return SsoStart(
            url="", state=opened["state"], nonce=opened["nonce"], verifier=opened["verifier"]
        )
    except (InvalidToken, ValueError, KeyError, TypeError):
        return None


async def _refused(call: Call, code: str, message: str) -> ApiError:
    async with call.services.session_factory() as session, session.begin():
        await audit.record(
            session,
            actor="anonymous",
            action="sign_in.sso_refused",
            address=call.address,
            details={"code": code, "why": message[:200]},
        )
    return ApiError(400, code, message)


async def callback(call: Call) -> web.StreamResponse:
    sso = _sso(call)
    q = call.query
    if q.get("error"):
        raise await _refused(
            call, "sso_denied", f"The provider said no: {q.get('error_description') or q['error']}"
        )
    issuer = q.get("iss")
    if issuer is not None and issuer.rstrip("/") != sso.settings.issuer.rstrip("/"):
        # RFC 9207: an answer that names another provider is a mix-up attack, not ours.
        raise await _refused(call, "sso_issuer", "The answer came from another sign-in provider.")
    expected = _expected(call)
    if expected is None:
        raise await _refused(
            call, "sso_state", "This sign-in did not start here, or took too long."
        )
    if not q.get("code") or not q.get("state"):
        raise await _refused(call, "sso_code", "The provider sent no code.")
    try:
        claims = await sso.finish(code=q["code"], state=q["state"], expected=expected)
    except SsoRefused as exc:
        raise await _refused(call, exc.code, str(exc)) from None
    except SsoUnavailable as exc:
        raise ApiError(
            503, "sso_unavailable", f"The sign-in provider is unavailable: {exc}"
        ) from None
    async with call.services.session_factory() as session, session.begin():
        result = await sign_in(session, sso.settings, claims, now=utc_now(), address=call.address)
    if isinstance(result, Refusal):
        raise ApiError(401, result.code.value, result.message)
    staff_session = await new_session(call.request)
    staff_sessions.start(
        staff_session,
        account_id=result.account_id,
        now=call.request.config_dict.get(CLOCK_KEY, time.time)(),
    )
    response = web.Response(status=302, headers={"Location": "/staff/"})
    response.del_cookie(COOKIE, path=_PATH)
    return response


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "GET",
        "/session/sso",
        "startSso",
        "Sign in with the city's OpenID Connect provider: a redirect to it (404 when off)",
        start,
        signed_in=False,
        scope="self",
        tag="session",
        status=302,
        answer={"type": "object", "description": "none: a redirect"},
        refusals={404: "single sign-on is not configured here"},
    ),
    Endpoint(
        "GET",
        "/session/sso/callback",
        "finishSso",
        "Where the provider sends the browser back: starts the session, redirects to /staff/",
        callback,
        signed_in=False,
        scope="self",
        tag="session",
        status=302,
        answer={"type": "object", "description": "none: a redirect"},
        refusals={404: "single sign-on is not configured here"},
        query=tuple(
            Field(name, "string", what, max_length=2048)
            for name, what in (
                ("code", "the authorization code"),
                ("state", "the state sent"),
                ("error", "the provider's error"),
                ("error_description", "its explanation"),
                ("error_uri", "its page"),
                # Sent by Keycloak and Azure AD; not used.
                ("session_state", "the provider's session"),
                ("iss", "the issuer (RFC 9207)"),
            )
        ),
    ),
)
