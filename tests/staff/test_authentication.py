"""Signing in with a password (and TOTP where the roles need it), and with an API token:
an identity or a clear refusal, throttled per account and per address, audited."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pyotp
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from staff import audit
from staff.accounts import CreatedAccount, NewAccount, create_account, disable_account, issue_token
from staff.authentication import StaffAuthentication
from staff.identity import Refusal, RefusalCode, StaffIdentity
from staff.passwords import MAX_PASSWORD_LENGTH
from staff.roles import Permission, Role
from staff.throttle import SignInThrottle, ThrottleRule
from storage.models import AuditLog, StaffAccount, StaffToken
from storage.session import create_engine, create_sessionmaker
from tests.staff.conftest import FAST_HASHER, Clock

Sessions = async_sessionmaker[AsyncSession]


async def _create(sessions: Sessions, email: str, *roles: str, **kwargs: Any) -> CreatedAccount:
    async with sessions() as session, session.begin():
        return await create_account(
            session,
            NewAccount.checked(email, roles=roles, **kwargs),
            actor="cli",
            hasher=FAST_HASHER,
        )


def _auth(sessions: Sessions, clock: Clock, **kwargs: Any) -> StaffAuthentication:
    return StaffAuthentication(sessions, hasher=FAST_HASHER, clock=clock, **kwargs)


async def _actions(sessions: Sessions) -> list[tuple[str, str, str | None, str | None]]:
    async with sessions() as session:
        rows = await session.execute(
            select(AuditLog.actor, AuditLog.action, AuditLog.subject, AuditLog.address).order_by(
                AuditLog.id
            )
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def _code(created: CreatedAccount, clock: Clock, offset: int = 0) -> str:
    assert created.totp_uri is not None
    totp = pyotp.parse_uri(created.totp_uri)
    assert isinstance(totp, pyotp.TOTP)
    return totp.at(clock.now, counter_offset=offset)


async def test_an_agent_signs_in_with_a_password(sessions: Sessions, clock: Clock) -> None:
    created = await _create(sessions, "Agent@City.gov", "agent", wards=["115"], name="Sipho")
    assert created.totp_uri is None
    result = await _auth(sessions, clock).sign_in(
        " agent@CITY.gov ", created.password, address="10.0.0.5"
    )
    assert isinstance(result, StaffIdentity)
    assert (result.email, result.roles, result.wards) == (
        "agent@city.gov",
        frozenset({Role.AGENT}),
        frozenset({"115"}),
    )
    assert result.must_change_password
    assert result.can(Permission.TAKE_OVER) and not result.can(Permission.MANAGE_ACCOUNTS)
    assert result.covers_ward("115") and not result.covers_ward("116")
    assert (await _actions(sessions))[-1] == (
        f"staff:{result.account_id}",
        "sign_in",
        None,
        "10.0.0.5",
    )
    assert (await audit.verify(sessions)).broken is None


async def test_wrong_password_and_unknown_email_get_the_same_answer(
    sessions: Sessions, clock: Clock
) -> None:
    created = await _create(sessions, "agent@city.gov", "agent")
    auth = _auth(sessions, clock)
    wrong = await auth.sign_in("agent@city.gov", created.password + "x", address="10.0.0.5")
    nobody = await auth.sign_in("nobody@city.gov", created.password, address="10.0.0.5")
    assert isinstance(wrong, Refusal) and isinstance(nobody, Refusal)
    assert wrong == nobody
    assert (
        wrong.code is RefusalCode.WRONG_CREDENTIALS and wrong.message == "Wrong email or password."
    )
    actions = await _actions(sessions)
    assert actions[-2] == ("anonymous", "sign_in.failed", f"staff:{created.account.id}", "10.0.0.5")
    assert actions[-1] == ("anonymous", "sign_in.failed", "email:nobody@city.gov", "10.0.0.5")


@pytest.mark.parametrize("password", ["", "p" * (MAX_PASSWORD_LENGTH + 1), "p" * 5_000_000])
async def test_empty_and_huge_passwords_are_refused_without_hashing(
    sessions: Sessions, clock: Clock, password: str
) -> None:
    await _create(sessions, "agent@city.gov", "agent")
    result = await _auth(sessions, clock).sign_in("agent@city.gov", password, address=None)
    assert isinstance(result, Refusal) and result.code is RefusalCode.WRONG_CREDENTIALS


async def test_an_account_is_locked_after_five_failures_and_says_until_when(
    sessions: Sessions, clock: Clock
) -> None:
    created = await _create(sessions, "agent@city.gov", "agent")
    auth = _auth(sessions, clock)
    for attempt in range(4):
        result = await auth.sign_in("agent@city.gov", "guess", address=f"10.0.0.{attempt}")
        assert isinstance(result, Refusal) and result.code is RefusalCode.WRONG_CREDENTIALS
    locked = await auth.sign_in("agent@city.gov", "guess", address="10.0.0.9")
    assert isinstance(locked, Refusal) and locked.code is RefusalCode.THROTTLED
    assert locked.retry_after == clock.now + timedelta(minutes=15)
    assert locked.message == "Too many failed sign-ins. Try again after 09:15 UTC (in 15 minutes)."
    # Even the right password waits, and the attempt is audited.
    clock.advance(timedelta(minutes=14))
    still = await auth.sign_in("agent@city.gov", created.password, address="10.0.0.9")
    assert isinstance(still, Refusal) and still.message.endswith("(in 1 minute).")
    assert (await _actions(sessions))[-1][1] == "sign_in.throttled"
    clock.advance(timedelta(minutes=1, seconds=1))
    assert isinstance(
        await auth.sign_in("agent@city.gov", created.password, address="10.0.0.9"), StaffIdentity
    )


async def test_failures_spread_over_a_long_time_do_not_lock(
    sessions: Sessions, clock: Clock
) -> None:
    created = await _create(sessions, "agent@city.gov", "agent")
    auth = _auth(sessions, clock)
    for _ in range(8):
        assert (await auth.sign_in("agent@city.gov", "guess", address=None)).code  # type: ignore[union-attr]
        clock.advance(timedelta(minutes=4))
    # A success clears the account's count.
    assert isinstance(
        await auth.sign_in("agent@city.gov", created.password, address=None), StaffIdentity
    )


async def test_one_address_trying_many_accounts_is_locked(sessions: Sessions, clock: Clock) -> None:
    created = await _create(sessions, "agent@city.gov", "agent")
    rule = ThrottleRule(3, timedelta(minutes=15), timedelta(minutes=15))
    auth = _auth(sessions, clock, throttle=SignInThrottle(address=rule))
    for n in range(3):
        await auth.sign_in(f"user{n}@city.gov", "guess", address="203.0.113.7")
    blocked = await auth.sign_in("agent@city.gov", created.password, address="203.0.113.7")
    assert isinstance(blocked, Refusal) and blocked.code is RefusalCode.THROTTLED
    # The same account from another address is not held up by that address.
    assert isinstance(
        await auth.sign_in("agent@city.gov", created.password, address="10.0.0.5"), StaffIdentity
    )


async def test_throttling_is_shared_by_every_process(database_url: str, clock: Clock) -> None:
    """Two processes (two engines with their own pools) count failures against one limit."""
    engines = [create_engine(database_url), create_engine(database_url)]
    try:
        first, second = (_auth(create_sessionmaker(e), clock) for e in engines)
        created = await _create(create_sessionmaker(engines[0]), "agent@city.gov", "agent")
        for n in range(5):
            await (first if n % 2 else second).sign_in("agent@city.gov", "guess", address=None)
        result = await first.sign_in("agent@city.gov", created.password, address=None)
        assert isinstance(result, Refusal) and result.code is RefusalCode.THROTTLED
    finally:
        for engine in engines:
            await engine.dispose()


async def test_admins_need_a_totp_code_used_once(sessions: Sessions, clock: Clock) -> None:
    created = await _create(sessions, "admin@city.gov", "admin")
    assert created.totp_uri is not None and created.totp_uri.startswith("otpauth://totp/")
    auth = _auth(sessions, clock)
    missing = await auth.sign_in("admin@city.gov", created.password, address=None)
    assert isinstance(missing, Refusal) and missing.code is RefusalCode.TOTP_REQUIRED
    wrong = await auth.sign_in("admin@city.gov", created.password, "000000", address=None)
    if _code(created, clock) != "000000":
        assert isinstance(wrong, Refusal) and wrong.code is RefusalCode.WRONG_CREDENTIALS
    code = _code(created, clock)
    identity = await auth.sign_in("admin@city.gov", created.password, code, address=None)
    assert isinstance(identity, StaffIdentity) and identity.roles == {Role.ADMIN}
    replay = await auth.sign_in("admin@city.gov", created.password, code, address=None)
    assert isinstance(replay, Refusal) and replay.message == "Wrong or already used code."
    # A code from the step before is no good either once a later one was used.
    earlier = await auth.sign_in(
        "admin@city.gov", created.password, _code(created, clock, -1), address=None
    )
    assert isinstance(earlier, Refusal)
    # Thirty seconds on, the next code works (with spaces, as apps show it).
    clock.advance(timedelta(seconds=30))
    spaced = _code(created, clock)
    spaced = f"{spaced[:3]} {spaced[3:]}"
    assert isinstance(
        await auth.sign_in("admin@city.gov", created.password, spaced, address=None),
        StaffIdentity,
    )


async def test_wrong_totp_codes_count_towards_the_lock(sessions: Sessions, clock: Clock) -> None:
    created = await _create(sessions, "approver@city.gov", "approver", "analyst")
    auth = _auth(sessions, clock)
    right = _code(created, clock)
    wrong = "123456" if right != "123456" else "654321"
    for _ in range(5):
        await auth.sign_in("approver@city.gov", created.password, wrong, address=None)
    result = await auth.sign_in("approver@city.gov", created.password, right, address=None)
    assert isinstance(result, Refusal) and result.code is RefusalCode.THROTTLED


async def test_a_totp_role_without_a_secret_cannot_sign_in(
    sessions: Sessions, clock: Clock
) -> None:
    created = await _create(sessions, "b@city.gov", "broadcaster")
    async with sessions() as session, session.begin():
        await session.execute(update(StaffAccount).values(totp_secret=None))
    result = await _auth(sessions, clock).sign_in("b@city.gov", created.password, address=None)
    assert isinstance(result, Refusal) and result.code is RefusalCode.TOTP_NOT_SET_UP


async def test_a_disabled_account_cannot_sign_in(sessions: Sessions, clock: Clock) -> None:
    created = await _create(sessions, "agent@city.gov", "agent")
    async with sessions() as session, session.begin():
        await disable_account(session, "agent@city.gov", actor="cli")
    result = await _auth(sessions, clock).sign_in(
        "agent@city.gov", created.password, address="10.0.0.5"
    )
    assert isinstance(result, Refusal) and result.code is RefusalCode.ACCOUNT_DISABLED
    # A wrong password still says only "wrong": the account's state is told to its owner only.
    wrong = await _auth(sessions, clock).sign_in("agent@city.gov", "guess", address=None)
    assert isinstance(wrong, Refusal) and wrong.code is RefusalCode.WRONG_CREDENTIALS


async def test_a_hash_made_with_older_parameters_is_replaced_at_sign_in(
    sessions: Sessions, clock: Clock
) -> None:
    created = await _create(sessions, "agent@city.gov", "agent")
    async with sessions() as session:
        before = await session.scalar(select(StaffAccount.password_hash))
    stronger = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    auth = StaffAuthentication(sessions, hasher=stronger, clock=clock)
    assert isinstance(
        await auth.sign_in("agent@city.gov", created.password, address=None), StaffIdentity
    )
    async with sessions() as session:
        after = await session.scalar(select(StaffAccount.password_hash))
    assert before is not None and after is not None
    assert "m=1024,t=1" in before and "m=2048,t=2" in after
    assert not stronger.check_needs_rehash(after)
    assert isinstance(
        await auth.sign_in("agent@city.gov", created.password, address=None), StaffIdentity
    )


async def _token(sessions: Sessions, email: str, roles: list[str], days: int = 30) -> str:
    async with sessions() as session, session.begin():
        return (await issue_token(session, email, roles=roles, days=days, actor="cli")).token


async def test_an_api_token_stands_for_its_roles_within_the_account(
    sessions: Sessions, clock: Clock
) -> None:
    created = await _create(sessions, "sys@city.gov", "analyst", "supervisor", wards=["7"])
    token = await _token(sessions, "sys@city.gov", ["analyst"])
    assert token.startswith("cbt_") and len(token) > 40
    async with sessions() as session:
        stored = (await session.scalars(select(StaffToken))).one()
    assert token not in (stored.token_hash, stored.prefix) and token.startswith(stored.prefix)

    clock.now = stored.created_at + timedelta(days=1)
    identity = await _auth(sessions, clock).verify_token(token, address="10.1.1.1")
    assert isinstance(identity, StaffIdentity)
    assert identity.roles == {Role.ANALYST} and identity.wards == frozenset({"7"})
    assert identity.token_id == stored.id and not identity.must_change_password
    assert (await _actions(sessions))[-1] == (
        f"staff:{created.account.id}",
        "token.use",
        f"token:{stored.id}",
        "10.1.1.1",
    )
    async with sessions() as session:
        assert await session.scalar(select(StaffToken.last_used_at)) == clock.now
    # The account loses the role: so does the token.
    async with sessions() as session, session.begin():
        await session.execute(update(StaffAccount).values(roles=["supervisor"]))
    identity = await _auth(sessions, clock).verify_token(token, address=None)
    assert isinstance(identity, StaffIdentity) and identity.roles == frozenset()


async def test_expired_revoked_unknown_and_disabled_tokens_are_refused(
    sessions: Sessions, clock: Clock
) -> None:
    await _create(sessions, "sys@city.gov", "analyst")
    token = await _token(sessions, "sys@city.gov", ["analyst"], days=1)
    async with sessions() as session:
        created_at = await session.scalar(select(StaffToken.created_at))
    assert created_at is not None
    auth = _auth(sessions, clock)

    async def refusal(value: str) -> RefusalCode:
        result = await auth.verify_token(value, address="198.51.100.4")
        assert isinstance(result, Refusal)
        return result.code

    clock.now = created_at + timedelta(days=1)
    assert await refusal(token) is RefusalCode.TOKEN_EXPIRED
    clock.now = created_at + timedelta(hours=1)
    assert (
        await refusal(token[:-1] + ("A" if token[-1] != "A" else "B")) is RefusalCode.TOKEN_INVALID
    )
    for odd in ("", "Bearer x", "cbt_", "cbt_" + "a" * 500, "cbt_ä€", "cbt_a b"):
        assert await refusal(odd) is RefusalCode.TOKEN_INVALID
    async with sessions() as session, session.begin():
        await disable_account(session, "sys@city.gov", actor="cli")
    assert await refusal(token) is RefusalCode.ACCOUNT_DISABLED
    async with sessions() as session, session.begin():
        await session.execute(update(StaffAccount).values(active=True))
        await session.execute(update(StaffToken).values(revoked_at=clock.now))
    assert await refusal(token) is RefusalCode.TOKEN_REVOKED
    refused = [a for a in await _actions(sessions) if a[1] == "token.refused"]
    assert len(refused) == 10 and all(a[3] == "198.51.100.4" for a in refused)
    assert (await audit.verify(sessions)).broken is None
