"""Staff sessions over HTTP: sign in, who am I, sign out; the cookie's flags; forged, idle and
expired sessions; CSRF; a disabled account's old session; the one-time password."""

from __future__ import annotations

import base64
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select
from yarl import URL

from bot.web.staff_sessions import ABSOLUTE_SECONDS, COOKIE_NAME, IDLE_SECONDS
from storage.models import AuditLog
from tests.web.staff_members import StaffHouse


async def _actions(house: StaffHouse) -> list[str]:
    async with house.sessions() as session:
        return list(await session.scalars(select(AuditLog.action).order_by(AuditLog.id)))


async def test_sign_in_sets_a_strict_http_only_cookie_and_hands_out_the_csrf_token(
    house: StaffHouse,
) -> None:
    agent = await house.member("agent@city.gov", ["agent"], sign_in=False)
    answer = await agent.sign_in()
    assert answer.status == 200
    cookie = answer.headers.getone("Set-Cookie")
    assert cookie.startswith(f"{COOKIE_NAME}=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/api" in cookie
    assert "Secure" not in cookie  # http://localhost
    assert answer.body["roles"] == ["agent"] and answer.body["via"] == "session"
    me = await agent.call("GET", "/api/v1/session")
    assert me.status == 200 and me.body["csrf_token"] == answer.body["csrf_token"]
    assert me.body["email"] == "agent@city.gov"


@pytest.mark.parametrize("public_url", ["https://citybot.example.gov"])
async def test_the_cookie_is_secure_when_the_public_url_is_https(house: StaffHouse) -> None:
    agent = await house.member("agent@city.gov", ["agent"], sign_in=False)
    answer = await agent.sign_in()
    assert "Secure" in answer.headers.getone("Set-Cookie")


async def test_wrong_password_wrong_code_and_missing_code_are_401(house: StaffHouse) -> None:
    admin = await house.member("admin@city.gov", ["admin"], sign_in=False)
    wrong = await admin.sign_in(password="not the password")
    assert (wrong.status, wrong.code) == (401, "wrong_credentials")
    no_code = await admin.sign_in(totp=None)
    assert (no_code.status, no_code.code) == (401, "totp_required")
    bad_code = await admin.sign_in(totp="000000")
    assert bad_code.status == 401
    assert (await admin.call("GET", "/api/v1/session")).status == 401


async def test_throttled_sign_in_is_429_with_retry_after(house: StaffHouse) -> None:
    agent = await house.member("agent@city.gov", ["agent"], sign_in=False)
    for _ in range(4):
        assert (await agent.sign_in(password="wrong")).status == 401
    locked = await agent.sign_in(password="wrong")
    assert (locked.status, locked.code) == (429, "throttled")
    assert "Retry-After" in locked.headers


async def test_sign_out_ends_the_session(house: StaffHouse) -> None:
    agent = await house.member("agent@city.gov", ["agent"])
    assert (await agent.call("DELETE", "/api/v1/session")).status == 200
    assert (await agent.call("GET", "/api/v1/session")).code == "not_signed_in"
    assert "sign_out" in await _actions(house)


async def test_a_forged_cookie_is_refused_and_audited(house: StaffHouse) -> None:
    agent = await house.member("agent@city.gov", ["agent"], sign_in=False)
    agent.http.cookie_jar.update_cookies({COOKIE_NAME: "gAAAAABforged-value"}, URL(agent.base_url))
    answer = await agent.call("GET", "/api/v1/requests")
    assert (answer.status, answer.code) == (401, "session_invalid")
    assert "session.refused" in await _actions(house)


async def test_a_cookie_sealed_with_another_key_is_refused(house: StaffHouse) -> None:
    other = Fernet(base64.urlsafe_b64encode(b"k" * 32))
    sealed = other.encrypt(b'{"session": {"account": 1, "since": 1e12, "seen": 1e12}}')
    agent = await house.member("agent@city.gov", ["agent"], sign_in=False)
    agent.http.cookie_jar.update_cookies({COOKIE_NAME: sealed.decode()}, URL(agent.base_url))
    assert (await agent.call("GET", "/api/v1/requests")).code == "session_invalid"


async def test_an_idle_session_ends(house: StaffHouse) -> None:
    agent = await house.member("agent@city.gov", ["agent"])
    house.clock.advance(timedelta(seconds=IDLE_SECONDS - 60))
    assert (await agent.call("GET", "/api/v1/requests")).status == 200
    house.clock.advance(timedelta(seconds=IDLE_SECONDS + 1))
    answer = await agent.call("GET", "/api/v1/requests")
    assert (answer.status, answer.code) == (401, "session_expired")
    # And the cookie is cleared: the next call is simply not signed in.
    assert (await agent.call("GET", "/api/v1/requests")).code == "not_signed_in"
    assert "session.expired" in await _actions(house)


async def test_signing_in_again_works_over_an_ended_session(house: StaffHouse) -> None:
    agent = await house.member("agent@city.gov", ["agent"])
    house.clock.advance(timedelta(seconds=IDLE_SECONDS + 1))
    # The browser still holds the old cookie (and no CSRF token for it): sign-in is not blocked.
    agent.csrf = None
    answer = await agent.sign_in()
    assert answer.status == 200
    assert (await agent.call("GET", "/api/v1/requests")).status == 200


async def test_a_busy_session_still_ends_after_the_absolute_limit(house: StaffHouse) -> None:
    agent = await house.member("agent@city.gov", ["agent"])
    step = timedelta(seconds=IDLE_SECONDS - 60)
    elapsed = timedelta(0)
    while elapsed + step < timedelta(seconds=ABSOLUTE_SECONDS):
        house.clock.advance(step)
        elapsed += step
        assert (await agent.call("GET", "/api/v1/requests")).status == 200
    house.clock.advance(step)
    assert (await agent.call("GET", "/api/v1/requests")).code == "session_expired"


async def test_a_change_without_or_with_a_wrong_csrf_token_is_403_and_audited(
    house: StaffHouse,
) -> None:
    admin = await house.member("admin@city.gov", ["admin"])
    body = {"email": "new@city.gov", "roles": ["agent"]}
    missing = await admin.call("POST", "/api/v1/accounts", body, csrf=False)
    assert (missing.status, missing.code) == (403, "csrf_failed")
    wrong = await admin.call("POST", "/api/v1/accounts", body, headers={"X-CSRF-Token": "x" * 43})
    assert (wrong.status, wrong.code) == (403, "csrf_failed")
    assert (await admin.call("GET", "/api/v1/accounts")).body["items"][-1][
        "email"
    ] != "new@city.gov"
    assert (await _actions(house)).count("session.csrf_refused") == 2
    assert (await admin.call("POST", "/api/v1/accounts", body)).status == 201


async def test_an_api_token_needs_no_csrf_token(house: StaffHouse) -> None:
    await house.member("admin@city.gov", ["admin"], sign_in=False)
    bot = await house.token_for("admin@city.gov", ["admin"])
    answer = await bot.call("POST", "/api/v1/accounts", {"email": "n@city.gov", "roles": ["agent"]})
    assert answer.status == 201
    assert (await bot.call("GET", "/api/v1/session")).body["via"] == "token"


async def test_a_bad_or_revoked_token_is_401(house: StaffHouse) -> None:
    admin = await house.member("admin@city.gov", ["admin"])
    bot = await house.token_for("admin@city.gov", ["admin"])
    token_id = (await admin.call("GET", "/api/v1/tokens")).body["items"][0]["id"]
    assert (await admin.call("DELETE", f"/api/v1/tokens/{token_id}")).status == 200
    assert (await bot.call("GET", "/api/v1/accounts")).code == "token_revoked"
    bot.token = "cbt_" + "A" * 43
    assert (await bot.call("GET", "/api/v1/accounts")).code == "token_invalid"
    answer = await bot.call("GET", "/api/v1/accounts", headers={"Authorization": "Basic eDp5"})
    assert (answer.status, answer.code) == (401, "token_invalid")


async def test_a_disabled_accounts_old_session_is_refused(house: StaffHouse) -> None:
    admin = await house.member("admin@city.gov", ["admin"])
    agent = await house.member("agent@city.gov", ["agent"])
    assert (await agent.call("GET", "/api/v1/requests")).status == 200
    assert (await admin.call("DELETE", f"/api/v1/accounts/{agent.account_id}")).status == 200
    answer = await agent.call("GET", "/api/v1/requests")
    assert (answer.status, answer.code) == (401, "account_disabled")
    assert (await agent.call("GET", "/api/v1/requests")).code == "not_signed_in"


async def test_the_one_time_password_must_be_replaced_first(house: StaffHouse) -> None:
    agent = await house.member("agent@city.gov", ["agent"], password_set=False)
    answer = await agent.call("GET", "/api/v1/requests")
    assert (answer.status, answer.code) == (403, "password_change_required")
    short = await agent.call(
        "PUT",
        "/api/v1/session/password",
        {"current_password": agent.password, "new_password": "short"},
    )
    assert (short.status, short.code) == (400, "invalid_input")
    wrong = await agent.call(
        "PUT",
        "/api/v1/session/password",
        {"current_password": "not it", "new_password": "a long new pass phrase"},
    )
    assert wrong.status == 401
    done = await agent.call(
        "PUT",
        "/api/v1/session/password",
        {"current_password": agent.password, "new_password": "a long new pass phrase"},
    )
    assert done.status == 200
    assert (await agent.call("GET", "/api/v1/requests")).status == 200
    agent.password = "a long new pass phrase"
    assert (await agent.sign_in()).status == 200
    assert "password.change" in await _actions(house)
