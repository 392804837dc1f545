"""Single sign-on for staff with OpenID Connect (Azure AD / Entra ID, Keycloak, Google, ...).

The authorization code flow with PKCE: ``start`` gives the provider's authorization URL and the
values the browser's round trip must bring back (state, nonce, PKCE verifier; the caller keeps
them in a short-lived cookie); ``finish`` exchanges the code at the token endpoint and checks the
ID token: its signature against the provider's published keys (JWKS), issuer, audience, expiry
and nonce. Authlib builds the authorization request; joserfc (Authlib's JOSE library) checks the
token. The provider's metadata and keys are read from its discovery document and cached; a key
the cache does not know is looked up once more (the provider rotated its keys).

``sign_in`` then maps the token's claims to citybot: the roles claim (``roles``, or a dotted path
such as ``realm_access.roles`` for Keycloak) through the configured map of claim values to roles,
the optional wards claim to an area scope. The account is found by verified email (or created),
its roles and wards follow the provider on every sign-in, and everything is audited. A person the
map gives no role is refused and their account loses its roles; a disabled account stays
disabled whatever the provider says. No TOTP is asked after SSO: the city's provider does the
second factor.

Example::

    sso = OidcSignIn(OidcSettings(issuer="https://login.city.gov/realms/staff", client_id="citybot",
                                  client_secret="...", redirect_uri=".../api/v1/session/sso/callback",
                                  role_map={"cpt-call-centre": ("agent",)}))
    started = await sso.start()            # redirect the browser to started.url
    claims = await sso.finish(code=code, state=state, expected=started)
    result = await sign_in(session, sso.settings, claims, now=now, address="10.0.0.5")
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import aiohttp
from authlib.common.security import generate_token
from authlib.oauth2.client import OAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from staff import audit, passwords
from staff.accounts import normalise_email
from staff.identity import Refusal, RefusalCode, StaffIdentity
from staff.roles import Role
from storage.models import StaffAccount

__all__ = [
    "OidcSettings",
    "OidcSignIn",
    "SsoRefused",
    "SsoStart",
    "SsoUnavailable",
    "parse_role_map",
    "sign_in",
]

# How long the provider's metadata and keys are trusted before they are read again.
_METADATA_SECONDS = 3600.0
# Clock skew allowed between the provider and citybot.
_LEEWAY = 60


class SsoRefused(Exception):
    """The round trip does not hold (forged or lost state, a used code, a bad ID token); the
    ``code`` says which, for the audit log and the answer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class SsoUnavailable(Exception):
    """The provider cannot be reached or answers with an error of its own: try again later."""


@dataclass(frozen=True, slots=True)
class OidcSettings:
    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str
    # Claim value -> citybot roles ("cpt-admins" -> ("admin",)).
    role_map: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    roles_claim: str = "roles"
    wards_claim: str | None = None
    scope: str = "openid email profile"


def parse_role_map(raw: str) -> dict[str, tuple[str, ...]]:
    """``"cpt-admins=admin,cpt-call-centre=agent+supervisor"``: a claim value, ``=``, and
    the roles it gives (several joined by ``+``)."""
    mapping: dict[str, list[str]] = {}
    for part in raw.split(","):
        if not part.strip():
            continue
        value, sep, roles = part.partition("=")
        if not sep or not value.strip() or not roles.strip():
            raise ValueError(f"{part.strip()!r} is not claim-value=role")
        for role in roles.split("+"):
            Role(role.strip().lower())  # ValueError for an unknown role
            mapping.setdefault(value.strip(), []).append(role.strip().lower())
    return {k: tuple(v) for k, v in mapping.items()}


@dataclass(frozen=True, slots=True)
class SsoStart:
    url: str
    state: str
    nonce: str
    verifier: str


class OidcSignIn:
    def __init__(self, settings: OidcSettings, *, timeout: float = 10.0) -> None:
        self.settings = settings
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._read_at = 0.0

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with (
                aiohttp.ClientSession(timeout=self._timeout) as http,
                http.get(url) as response,
            ):
                if response.status != 200:
                    raise SsoUnavailable(f"{url} answered {response.status}")
                document = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise SsoUnavailable(f"{url}: {type(exc).__name__}") from None
        if not isinstance(document, dict):
            raise SsoUnavailable(f"{url} did not answer a JSON object")
        return document

    async def _metadata_now(self, *, fresh: bool = False) -> dict[str, Any]:
        if fresh or self._metadata is None or time.monotonic() - self._read_at > _METADATA_SECONDS:
            issuer = self.settings.issuer.rstrip("/")
            metadata = await self._get_json(f"{issuer}/.well-known/openid-configuration")
            if metadata.get("issuer", "").rstrip("/") != issuer:
                raise SsoUnavailable("the discovery document names another issuer")
            keys = await self._get_json(str(metadata.get("jwks_uri", "")))
            try:
                self._keys = KeySet.import_key_set(keys)  # type: ignore[arg-type]
            except (JoseError, ValueError, KeyError, TypeError) as exc:
                raise SsoUnavailable(f"the provider's keys do not read: {exc}") from None
            self._metadata, self._read_at = metadata, time.monotonic()
        assert self._metadata is not None
        return self._metadata

    async def start(self) -> SsoStart:
        metadata = await self._metadata_now()
        client = OAuth2Client(
            None,
            client_id=self.settings.client_id,
            scope=self.settings.scope,
            redirect_uri=self.settings.redirect_uri,
            code_challenge_method="S256",
        )
        verifier = generate_token(64)
        nonce = generate_token(32)
        url, state = client.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
        )
        return SsoStart(url=url, state=state, nonce=nonce, verifier=verifier)

    async def finish(self, *, code: str, state: str, expected: SsoStart) -> dict[str, Any]:
        if not secrets.compare_digest(state.encode(), expected.state.encode()):
            raise SsoRefused("sso_state", "The sign-in did not start here (its state differs).")
        metadata = await self._metadata_now()
        token = await self._exchange(metadata["token_endpoint"], code, expected.verifier)
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise SsoRefused("sso_id_token", "The provider sent no ID token.")
        return await self._claims(id_token, expected.nonce)

    async def _exchange(self, endpoint: str, code: str, verifier: str) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.settings.redirect_uri,
            "code_verifier": verifier,
        }
        # client_secret_basic (RFC 6749 2.3.1): each part form-encoded, then Base64.
        pair = f"{quote(self.settings.client_id, safe='')}:{quote(self.settings.client_secret, safe='')}"
        headers = {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}
        try:
            async with (
                aiohttp.ClientSession(timeout=self._timeout) as http,
                http.post(endpoint, data=form, headers=headers) as response,
            ):
                body = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise SsoUnavailable(f"the token endpoint: {type(exc).__name__}") from None
        if 400 <= status < 500:
            # invalid_grant: a code used before, expired, or not this client's.
            error = body.get("error") if isinstance(body, dict) else None
            raise SsoRefused("sso_code", f"The provider refused the code ({error or status}).")
        if status != 200 or not isinstance(body, dict):
            raise SsoUnavailable(f"the token endpoint answered {status}")
        return body

    async def _claims(self, id_token: str, nonce: str) -> dict[str, Any]:
        for attempt in range(2):
            assert self._keys is not None
            try:
                token = jwt.decode(id_token, self._keys, algorithms=["RS256", "ES256", "PS256"])
            except ValueError as exc:  # joserfc: no key with that kid (or a bad token)
                if attempt == 0 and "key" in str(exc).lower():
                    await self._metadata_now(fresh=True)  # the provider rotated its keys
                    continue
                raise SsoRefused("sso_id_token", f"The ID token does not verify: {exc}") from None
            except JoseError as exc:
                raise SsoRefused("sso_id_token", f"The ID token does not verify: {exc}") from None
            break
        registry = JWTClaimsRegistry(
            leeway=_LEEWAY,
            iss={"essential": True, "value": self.settings.issuer.rstrip("/")},
            aud={"essential": True, "value": self.settings.client_id},
            exp={"essential": True},
            sub={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(token.claims)
        except JoseError as exc:
            raise SsoRefused("sso_id_token", f"The ID token does not hold: {exc}") from None
        return dict(token.claims)


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def roles_from(settings: OidcSettings, claims: Mapping[str, Any]) -> frozenset[Role]:
    raw = _claim(claims, settings.roles_claim)
    values = [raw] if isinstance(raw, str) else list(raw or []) if isinstance(raw, list) else []
    return frozenset(
        Role(role) for value in values for role in settings.role_map.get(str(value), ())
    )


def wards_from(settings: OidcSettings, claims: Mapping[str, Any]) -> list[str] | None:
    if not settings.wards_claim:
        return None
    raw = _claim(claims, settings.wards_claim)
    if raw is None:
        return None
    values = [raw] if isinstance(raw, str | int) else list(raw) if isinstance(raw, list) else []
    return sorted({str(v).strip() for v in values if str(v).strip()}, key=str)


async def sign_in(
    session: AsyncSession,
    settings: OidcSettings,
    claims: Mapping[str, Any],
    *,
    now: datetime,
    address: str | None,
) -> StaffIdentity | Refusal:
    """The staff identity the provider's claims give (creating or updating the account), or a
    refusal; audited either way."""
    subject = str(claims.get("sub"))
    email = claims.get("email")
    where = {"provider": settings.issuer, "subject": subject}
    if not isinstance(email, str) or claims.get("email_verified") is False:
        await audit.record(
            session,
            actor="anonymous",
            action="sign_in.refused",
            address=address,
            details={**where, "why": "no_verified_email"},
        )
        return Refusal(RefusalCode.WRONG_CREDENTIALS, "Your city account has no verified email.")
    email = normalise_email(email)
    roles = roles_from(settings, claims)
    wards = wards_from(settings, claims)
    account = await session.scalar(select(StaffAccount).where(StaffAccount.email == email))
    if account is not None and not account.active:
        await audit.record(
            session,
            actor=f"staff:{account.id}",
            action="sign_in.refused",
            address=address,
            details={**where, "why": "disabled"},
        )
        return Refusal(
            RefusalCode.ACCOUNT_DISABLED, "This account is disabled; ask an administrator."
        )
    if not roles:
        if account is not None and account.roles:
            account.roles, account.updated_at = [], now
        await audit.record(
            session,
            actor=f"staff:{account.id}" if account else "anonymous",
            action="sign_in.refused",
            target=f"email:{email}",
            address=address,
            details={**where, "why": "no_role"},
        )
        return Refusal(
            RefusalCode.WRONG_CREDENTIALS,
            "Your city account gives you no role in citybot; ask an administrator.",
        )
    ordered = [r.value for r in Role if r in roles]
    if account is None:
        account = StaffAccount(
            email=email,
            name=str(claims.get("name") or "")[:200],
            roles=ordered,
            languages=[],
            wards=wards,
            active=True,
            # Never used: this person signs in through the provider.
            password_hash=passwords.hash_password(secrets.token_urlsafe(32)),
            must_change_password=False,
        )
        session.add(account)
        await session.flush()
        await audit.record(
            session,
            actor=f"staff:{account.id}",
            action="account.create",
            target=f"staff:{account.id}",
            address=address,
            details={**where, "roles": ordered, "wards": wards, "via": "sso"},
        )
    elif account.roles != ordered or account.wards != wards:
        before = {"roles": account.roles, "wards": account.wards}
        account.roles, account.wards, account.updated_at = ordered, wards, now
        await audit.record(
            session,
            actor=f"staff:{account.id}",
            action="account.change",
            target=f"staff:{account.id}",
            address=address,
            details={
                **where,
                "from": before,
                "to": {"roles": ordered, "wards": wards},
                "via": "sso",
            },
        )
    await audit.record(
        session,
        actor=f"staff:{account.id}",
        action="sign_in",
        address=address,
        details={**where, "via": "sso"},
    )
    return StaffIdentity(
        account_id=account.id,
        email=account.email,
        roles=frozenset(Role(r) for r in account.roles),
        wards=None if account.wards is None else frozenset(account.wards),
    )
