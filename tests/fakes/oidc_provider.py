"""A small OpenID Connect provider on loopback, as Keycloak or Azure AD would be to citybot.

It publishes its discovery document and keys (an RSA key made per run), approves whoever the
test says is signed in at ``/authorize`` (redirecting back with a code, as a provider does after
its own sign-in page), and at ``/token`` checks the client's credentials, the code (once only),
the redirect URI and the PKCE verifier, then issues a signed ID token with the test's claims.
Tests can break each part: another signing key, another audience, an expired token, a wrong
nonce, or the provider down.

Example::

    async with FakeOidcProvider() as idp:
        idp.user = {"sub": "u1", "email": "thandi@city.gov", "roles": ["cpt-call-centre"]}
        ...  # GET citybot /api/v1/session/sso, follow the redirects
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey

from tests.fakes.recording_server import RecordingServer

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "FakeOidcProvider"]

CLIENT_ID = "citybot"
CLIENT_SECRET = "a-client-secret"


@dataclass
class _Grant:
    redirect_uri: str
    nonce: str
    challenge: str
    claims: dict[str, Any]
    used: bool = False


@dataclass
class Tampering:
    """What the provider gets wrong, for the bad-input tests."""

    foreign_key: bool = False
    audience: str | None = None
    expired: bool = False
    nonce: str | None = None
    down: bool = False


class FakeOidcProvider(RecordingServer):
    def __init__(self) -> None:
        super().__init__()
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"})
        self.user: dict[str, Any] = {}
        self.tamper = Tampering()
        self._grants: dict[str, _Grant] = {}
        self.codes_issued: list[str] = []

    @property
    def issuer(self) -> str:
        return self.url

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/.well-known/openid-configuration", self._discovery)
        app.router.add_get("/jwks", self._jwks)
        app.router.add_get("/authorize", self._authorize)
        app.router.add_post("/token", self._token)

    async def _discovery(self, request: web.Request) -> web.Response:
        await self.record(request)
        if self.tamper.down:
            return web.Response(status=503)
        return web.json_response(
            {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token",
                "jwks_uri": f"{self.url}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            }
        )

    async def _jwks(self, request: web.Request) -> web.Response:
        await self.record(request)
        return web.json_response(KeySet([self.key]).as_dict(private=False))

    async def _authorize(self, request: web.Request) -> web.Response:
        await self.record(request)
        q = request.query
        if q.get("client_id") != CLIENT_ID or q.get("response_type") != "code":
            return web.Response(status=400, text="unknown client")
        if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return web.Response(status=400, text="PKCE required")
        code = secrets.token_urlsafe(16)
        self._grants[code] = _Grant(
            redirect_uri=q["redirect_uri"],
            nonce=q.get("nonce", ""),
            challenge=q["code_challenge"],
            claims=dict(self.user),
        )
        self.codes_issued.append(code)
        back = f"{q['redirect_uri']}?" + urlencode(
            {"code": code, "state": q.get("state", ""), "session_state": "s1"}
        )
        raise web.HTTPFound(back)

    async def _token(self, request: web.Request) -> web.Response:
        recorded = await self.record(request)
        if self.tamper.down:
            return web.Response(status=503)
        form = recorded.form
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response({"error": "invalid_client"}, status=401)
        grant = self._grants.get(form.get("code", ""))
        if grant is None or grant.used or grant.redirect_uri != form.get("redirect_uri"):
            return web.json_response({"error": "invalid_grant"}, status=400)
        digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
        if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.challenge:
            return web.json_response({"error": "invalid_grant"}, status=400)
        grant.used = True
        return web.json_response(
            {
                "access_token": secrets.token_urlsafe(16),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": self.id_token(grant),
            }
        )

    def id_token(self, grant: _Grant) -> str:
        now = int(time.time())
        t = self.tamper
        claims = {
            "iss": self.issuer,
            "aud": t.audience or CLIENT_ID,
            "iat": now - (3600 if t.expired else 0),
            "exp": now + (-1800 if t.expired else 300),
            "nonce": t.nonce or grant.nonce,
            **grant.claims,
        }
        key = RSAKey.generate_key(2048, parameters={"kid": "k1"}) if t.foreign_key else self.key
        return jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)
