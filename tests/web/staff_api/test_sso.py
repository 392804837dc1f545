"""Staff single sign-on against a local OpenID Connect provider, over real HTTP: the browser's
round trip (redirects and cookies on two sites), roles and wards from the provider's claims, a
session that works on the admin API, the account following the provider, and each bad round
trip refused (never a 5xx) and audited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import pytest
from sqlalchemy import select

from storage.models import AuditLog, StaffAccount
from tests.e2e.city import City, running_city
from tests.fakes.oidc_provider import CLIENT_ID, CLIENT_SECRET, FakeOidcProvider

THANDI = {
    "sub": "u-1",
    "email": "Thandi@City.gov",
    "email_verified": True,
    "name": "Thandi Nkosi",
    "realm_access": {"roles": ["cpt-call-centre", "offline_access"]},
    "wards": ["93", "94"],
}


@pytest.fixture
async def idp() -> AsyncIterator[FakeOidcProvider]:
    async with FakeOidcProvider() as provider:
        provider.user = dict(THANDI)
        yield provider


@pytest.fixture
async def city(idp: FakeOidcProvider, tmp_path: Path) -> AsyncIterator[City]:
    env = {
        "CITYBOT_OIDC_ISSUER": idp.issuer,
        "CITYBOT_OIDC_CLIENT_ID": CLIENT_ID,
        "CITYBOT_OIDC_CLIENT_SECRET": CLIENT_SECRET,
        "CITYBOT_OIDC_ROLE_MAP": "cpt-call-centre=agent+supervisor,cpt-admins=admin",
        "CITYBOT_OIDC_ROLES_CLAIM": "realm_access.roles",
        "CITYBOT_OIDC_WARDS_CLAIM": "wards",
    }
    async with running_city(tmp_path, env=env, workers=False) as c:
        yield c


class Browser:
    """Follows redirects by hand across the two sites, keeping each site's cookies."""

    def __init__(self, city: City) -> None:
        self.city = city
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        self.callback: str | None = None

    async def go(self, url: str) -> tuple[int, Any, str]:
        for _ in range(6):
            async with self.http.get(url, allow_redirects=False) as response:
                if response.status != 302:
                    return response.status, await response.json(content_type=None), url
                location = response.headers["Location"]
            url = self.city.url + location if location.startswith("/") else location
            if "/sso/callback" in url:
                self.callback = url
            if url.endswith("/staff/"):
                return 302, None, url
        raise AssertionError("too many redirects")

    async def sign_in(self) -> tuple[int, Any, str]:
        return await self.go(f"{self.city.url}/api/v1/session/sso")

    async def me(self) -> tuple[int, Any]:
        async with self.http.get(f"{self.city.url}/api/v1/session") as response:
            return response.status, await response.json()

    async def close(self) -> None:
        await self.http.close()


@pytest.fixture
async def browser(city: City) -> AsyncIterator[Browser]:
    person = Browser(city)
    yield person
    await person.close()


async def _audit(city: City, action: str) -> list[AuditLog]:
    async with city.services.session_factory() as session:
        rows = await session.scalars(select(AuditLog).where(AuditLog.action == action))
        return list(rows.all())


async def test_a_city_account_signs_in_with_roles_and_wards_from_its_claims(
    city: City, browser: Browser, idp: FakeOidcProvider
) -> None:
    status, _, landed = await browser.sign_in()
    assert (status, landed) == (302, f"{city.url}/staff/")
    status, me = await browser.me()
    assert status == 200, me
    assert (me["email"], me["roles"], me["wards"]) == (
        "thandi@city.gov",
        ["agent", "supervisor"],
        ["93", "94"],
    )
    (signed_in,) = await _audit(city, "sign_in")
    assert signed_in.details == {"provider": idp.issuer, "subject": "u-1", "via": "sso"}
    # The provider stays the source: roles and wards follow it on the next sign-in.
    idp.user["realm_access"] = {"roles": ["cpt-admins"]}
    idp.user.pop("wards")
    await browser.close()
    again = Browser(city)
    try:
        assert (await again.sign_in())[0] == 302
        status, me = await again.me()
        assert (me["roles"], me["wards"]) == (["admin"], None)
    finally:
        await again.close()
    changed = await _audit(city, "account.change")
    assert changed and changed[-1].details["via"] == "sso"  # type: ignore[index]


async def test_no_role_in_citybot_is_refused_and_takes_the_roles_away(
    city: City, browser: Browser, idp: FakeOidcProvider
) -> None:
    assert (await browser.sign_in())[0] == 302
    await browser.close()
    idp.user["realm_access"] = {"roles": ["offline_access"]}
    later = Browser(city)
    try:
        status, body, _ = await later.sign_in()
        assert (status, body["error"]["code"]) == (401, "wrong_credentials")
        assert "no role" in body["error"]["message"]
    finally:
        await later.close()
    async with city.services.session_factory() as session:
        account = await session.scalar(select(StaffAccount))
    assert account is not None and account.roles == []


async def test_a_disabled_account_stays_disabled(
    city: City, browser: Browser, idp: FakeOidcProvider
) -> None:
    assert (await browser.sign_in())[0] == 302
    async with city.services.session_factory() as session, session.begin():
        account = await session.scalar(select(StaffAccount))
        assert account is not None
        account.active = False
    fresh = Browser(city)
    try:
        status, body, _ = await fresh.sign_in()
        assert (status, body["error"]["code"]) == (401, "account_disabled")
    finally:
        await fresh.close()


async def _callback_url(city: City, browser: Browser, idp: FakeOidcProvider) -> str:
    """Start a sign-in and stop before the callback: the URL the provider sends back to."""
    async with browser.http.get(
        f"{city.url}/api/v1/session/sso", allow_redirects=False
    ) as response:
        authorize = response.headers["Location"]
    async with browser.http.get(authorize, allow_redirects=False) as response:
        return response.headers["Location"]


@pytest.mark.parametrize(
    "tamper",
    ["foreign_key", "audience", "expired", "nonce"],
)
async def test_an_id_token_that_does_not_hold_is_refused(
    city: City, browser: Browser, idp: FakeOidcProvider, tamper: str
) -> None:
    setattr(
        idp.tamper,
        tamper,
        {"foreign_key": True, "audience": "another-app", "expired": True, "nonce": "n0"}[tamper],
    )
    status, body, _ = await browser.sign_in()
    assert (status, body["error"]["code"]) == (400, "sso_id_token"), body
    assert (await browser.me())[0] == 401
    refused = await _audit(city, "sign_in.sso_refused")
    assert refused and refused[-1].details["code"] == "sso_id_token"  # type: ignore[index]


async def test_a_forged_state_and_a_replayed_code_are_refused(
    city: City, browser: Browser, idp: FakeOidcProvider
) -> None:
    callback = await _callback_url(city, browser, idp)
    parts = urlsplit(callback)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    forged = f"{city.url}{parts.path}?" + urlencode({**query, "state": "forged"})
    status, body, _ = await browser.go(forged)
    assert (status, body["error"]["code"]) == (400, "sso_state")
    # A refusal leaves the sign-in cookie (only a success clears it): the genuine callback
    # still works.
    status, _, landed = await browser.go(callback)
    assert (status, landed) == (302, f"{city.url}/staff/")
    # The same code again (a replay): the sign-in cookie is gone, and the provider says no.
    status, body, _ = await browser.go(callback)
    assert status == 400 and body["error"]["code"] in ("sso_state", "sso_code")
    stranger = Browser(city)
    try:
        status, body, _ = await stranger.go(callback)  # no sign-in started in this browser
        assert (status, body["error"]["code"]) == (400, "sso_state")
    finally:
        await stranger.close()


async def test_a_provider_that_is_down_is_a_503_not_a_crash(
    city: City, browser: Browser, idp: FakeOidcProvider
) -> None:
    idp.tamper.down = True
    status, body, _ = await browser.sign_in()
    assert (status, body["error"]["code"]) == (503, "sso_unavailable")


async def test_sso_off_is_a_clear_404(tmp_path: Path) -> None:
    async with (
        running_city(tmp_path, workers=False) as city,
        city.http.get(f"{city.url}/api/v1/session/sso", allow_redirects=False) as response,
    ):
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "sso_off"


async def test_the_console_offers_the_city_account_when_sso_is_on(city: City) -> None:
    async with city.http.get(f"{city.url}/staff/sign-in") as response:
        page = await response.text()
    assert 'href="/api/v1/session/sso"' in page and "Sign in with your city account" in page


async def test_an_answer_naming_another_provider_is_refused(
    city: City, browser: Browser, idp: FakeOidcProvider
) -> None:
    callback = await _callback_url(city, browser, idp)
    status, body, _ = await browser.go(callback + "&iss=https%3A%2F%2Fevil.example")
    assert (status, body["error"]["code"]) == (400, "sso_issuer")
    status, _, landed = await browser.go(callback + "&iss=" + idp.issuer)
    assert (status, landed) == (302, f"{city.url}/staff/")
