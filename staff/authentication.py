"""Signing staff in: a password (and a TOTP code where the roles need one), or an API token.

The later HTTP layer calls this and turns the answer into a session, a 401 or a 429. Both ways
in return a ``StaffIdentity`` or a ``Refusal``; sign-ins, failed sign-ins, refusals of a
throttled account, and every use (or misuse) of a token are audited with the caller's address.

Argon2 takes tens of milliseconds of CPU on purpose, so it runs in a thread and outside any
transaction (on SQLite a transaction holds the database's write lock). An email with no account
is checked against a dummy hash, so the answer takes as long as for a real one, and every wrong
answer says the same thing: nobody learns which emails have accounts.

Example::

    authentication = StaffAuthentication(sessionmaker)
    result = await authentication.sign_in("thandi@city.gov", password, "492039",
                                          address="10.0.0.5")
    result = await authentication.verify_token(bearer, address="10.0.0.9")
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from argon2 import PasswordHasher
from sqlalchemy import or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from staff import audit, passwords, tokens, totp
from staff.errors import InvalidStaffInput
from staff.identity import Refusal, RefusalCode, StaffIdentity
from staff.roles import TOTP_REQUIRED, Role, parse_roles
from staff.throttle import SignInThrottle, ThrottleKeys
from storage.models import StaffAccount, StaffToken
from storage.types import utc_now

__all__ = ["StaffAuthentication"]

_WRONG = Refusal(RefusalCode.WRONG_CREDENTIALS, "Wrong email or password.")


@dataclass(frozen=True, slots=True)
class _Candidate:
    """What sign-in needs of an account, read in a short transaction."""

    id: int
    email: str
    password_hash: str
    roles: frozenset[Role]
    wards: frozenset[str] | None
    active: bool
    must_change_password: bool
    totp_secret: str | None
    totp_last_step: int | None

    def identity(
        self, roles: frozenset[Role] | None = None, token_id: int | None = None
    ) -> StaffIdentity:
        return StaffIdentity(
            account_id=self.id,
            email=self.email,
            roles=self.roles if roles is None else roles,
            wards=self.wards,
            must_change_password=self.must_change_password and token_id is None,
            token_id=token_id,
        )


def _candidate(account: StaffAccount) -> _Candidate:
    return _Candidate(
        id=account.id,
        email=account.email,
        password_hash=account.password_hash,
        roles=parse_roles(account.roles),
        wards=None if account.wards is None else frozenset(account.wards),
        active=account.active,
        must_change_password=account.must_change_password,
        totp_secret=account.totp_secret,
        totp_last_step=account.totp_last_step,
    )


def _throttled(until: datetime, now: datetime) -> Refusal:
    minutes = max(1, math.ceil((until - now).total_seconds() / 60))
    return Refusal(
        RefusalCode.THROTTLED,
        f"Too many failed sign-ins. Try again after {until:%H:%M} UTC "
        f"(in {minutes} minute{'s' if minutes != 1 else ''}).",
        retry_after=until,
    )


class StaffAuthentication:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        hasher: PasswordHasher = passwords.DEFAULT_HASHER,
        throttle: SignInThrottle | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._sessions = sessions
        self._hasher = hasher
        self._throttle = throttle or SignInThrottle()
        self._clock = clock
        # Checked when the email has no account, so that answer takes as long as any other.
        self._dummy_hash = hasher.hash("no account has this password")

    async def sign_in(
        self, email: str, password: str, totp_code: str | None = None, *, address: str | None
    ) -> StaffIdentity | Refusal:
        now = self._clock()
        keys = ThrottleKeys.of(email, address)
        shown_email = email.strip().lower()[:254]
        async with self._sessions() as session, session.begin():
            until = await self._throttle.locked_until(session, keys, now)
            if until is not None:
                await audit.record(
                    session,
                    actor="anonymous",
                    action="sign_in.throttled",
                    target=f"email:{shown_email}",
                    address=address,
                )
                return _throttled(until, now)
            account = await session.scalar(
                select(StaffAccount).where(StaffAccount.email == shown_email)
            )
            candidate = None if account is None else _candidate(account)
        stored = candidate.password_hash if candidate else self._dummy_hash
        check = await asyncio.to_thread(passwords.check_password, stored, password, self._hasher)
        if candidate is None or not check.ok:
            return await self._failed(keys, now, address, shown_email, candidate, "password")
        if not candidate.active:
            await self._audit(candidate.id, "sign_in.refused", address, {"why": "disabled"})
            return Refusal(
                RefusalCode.ACCOUNT_DISABLED, "This account is disabled; ask an administrator."
            )
        step: int | None = None
        if candidate.roles & TOTP_REQUIRED:
            if candidate.totp_secret is None:
                await self._audit(candidate.id, "sign_in.refused", address, {"why": "no_totp"})
                return Refusal(
                    RefusalCode.TOTP_NOT_SET_UP,
                    "Your roles need a second factor, which is not set up; ask an administrator.",
                )
            if not totp_code:
                return Refusal(
                    RefusalCode.TOTP_REQUIRED, "Enter the 6-digit code from your authenticator app."
                )
            step = totp.accepted_step(
                candidate.totp_secret, totp_code, last_step=candidate.totp_last_step, now=now
            )
            if step is None:
                return await self._failed(keys, now, address, shown_email, candidate, "totp")
        async with self._sessions() as session, session.begin():
            values: dict[str, object] = {}
            if check.rehashed:
                values["password_hash"] = check.rehashed
            statement = update(StaffAccount).where(StaffAccount.id == candidate.id)
            if step is not None:
                values["totp_last_step"] = step
                # Two sign-ins with one code at once: only the first moves the step on.
                statement = statement.where(
                    or_(StaffAccount.totp_last_step.is_(None), StaffAccount.totp_last_step < step)
                )
            replayed = False
            if values:
                result = cast(CursorResult[Any], await session.execute(statement.values(**values)))
                replayed = step is not None and result.rowcount != 1
            if not replayed:
                await self._throttle.succeeded(session, keys)
                await audit.record(
                    session, actor=f"staff:{candidate.id}", action="sign_in", address=address
                )
        if replayed:
            return await self._failed(keys, now, address, shown_email, candidate, "totp")
        return candidate.identity()

    async def _failed(
        self,
        keys: ThrottleKeys,
        now: datetime,
        address: str | None,
        shown_email: str,
        candidate: _Candidate | None,
        what: str,
    ) -> Refusal:
        async with self._sessions() as session, session.begin():
            await self._throttle.failed(session, keys, now)
            await audit.record(
                session,
                actor="anonymous",
                action="sign_in.failed",
                target=f"staff:{candidate.id}" if candidate else f"email:{shown_email}",
                address=address,
                details={"wrong": what},
            )
            until = await self._throttle.locked_until(session, keys, now)
        if until is not None:
            return _throttled(until, now)
        if what == "totp":
            return Refusal(RefusalCode.WRONG_CREDENTIALS, "Wrong or already used code.")
        return _WRONG

    async def _audit(
        self, account_id: int, action: str, address: str | None, details: dict[str, str]
    ) -> None:
        async with self._sessions() as session, session.begin():
            await audit.record(
                session,
                actor=f"staff:{account_id}",
                action=action,
                address=address,
                details=details,
            )

    async def change_password(
        self, account_id: int, current: str, new: str, *, address: str | None
    ) -> Refusal | None:
        """Replace the password (the one-time one first of all); None when done.

        A wrong current password counts against the sign-in throttle like a wrong sign-in, so
        a stolen session cannot be used to guess it."""
        if len(new) < passwords.MIN_PASSWORD_LENGTH:
            raise InvalidStaffInput(
                f"the new password needs at least {passwords.MIN_PASSWORD_LENGTH} characters"
            )
        new_hash = await asyncio.to_thread(passwords.hash_password, new, self._hasher)
        async with self._sessions() as session:
            account = await session.get(StaffAccount, account_id)
            candidate = None if account is None else _candidate(account)
        if candidate is None or not candidate.active:
            return Refusal(
                RefusalCode.ACCOUNT_DISABLED, "This account is disabled; ask an administrator."
            )
        now = self._clock()
        keys = ThrottleKeys.of(candidate.email, address)
        async with self._sessions() as session, session.begin():
            until = await self._throttle.locked_until(session, keys, now)
        if until is not None:
            return _throttled(until, now)
        check = await asyncio.to_thread(
            passwords.check_password, candidate.password_hash, current, self._hasher
        )
        if not check.ok:
            return await self._failed(keys, now, address, candidate.email, candidate, "password")
        async with self._sessions() as session, session.begin():
            await session.execute(
                update(StaffAccount)
                .where(StaffAccount.id == candidate.id)
                .values(password_hash=new_hash, must_change_password=False)
            )
            await audit.record(
                session,
                actor=f"staff:{candidate.id}",
                action="password.change",
                target=f"staff:{candidate.id}",
                address=address,
            )
        return None

    async def session_identity(
        self, account_id: int, *, address: str | None
    ) -> StaffIdentity | Refusal:
        """Who a session's account is now: its roles and wards as they stand, and refused once
        the account is disabled (a session made before stays no good)."""
        async with self._sessions() as session:
            account = await session.get(StaffAccount, account_id)
            candidate = None if account is None else _candidate(account)
        if candidate is None or not candidate.active:
            if candidate is not None:
                await self._audit(candidate.id, "session.refused", address, {"why": "disabled"})
            return Refusal(
                RefusalCode.ACCOUNT_DISABLED, "This account is disabled; ask an administrator."
            )
        return candidate.identity()

    async def verify_token(self, token: str, *, address: str | None) -> StaffIdentity | Refusal:
        """The identity an API token stands for: its roles, bounded by the account's roles now."""
        now = self._clock()
        invalid = Refusal(RefusalCode.TOKEN_INVALID, "This API token is not valid.")
        async with self._sessions() as session, session.begin():
            found = None
            if tokens.looks_like_token(token):
                found = (
                    await session.execute(
                        select(StaffToken, StaffAccount)
                        .join(StaffAccount, StaffAccount.id == StaffToken.account_id)
                        .where(StaffToken.token_hash == tokens.token_hash(token))
                    )
                ).first()
            if found is None:
                await audit.record(
                    session,
                    actor="anonymous",
                    action="token.refused",
                    address=address,
                    details={"why": "unknown"},
                )
                return invalid
            record, account = found[0], found[1]
            refusal = None
            if record.revoked_at is not None:
                refusal = Refusal(RefusalCode.TOKEN_REVOKED, "This API token has been revoked.")
            elif record.expires_at <= now:
                refusal = Refusal(RefusalCode.TOKEN_EXPIRED, "This API token has expired.")
            elif not account.active:
                refusal = Refusal(
                    RefusalCode.ACCOUNT_DISABLED, "The account of this API token is disabled."
                )
            if refusal is not None:
                await audit.record(
                    session,
                    actor=f"staff:{account.id}",
                    action="token.refused",
                    target=f"token:{record.id}",
                    address=address,
                    details={"why": refusal.code.value},
                )
                return refusal
            record.last_used_at = now
            await audit.record(
                session,
                actor=f"staff:{account.id}",
                action="token.use",
                target=f"token:{record.id}",
                address=address,
            )
            candidate = _candidate(account)
            roles = parse_roles(record.roles) & candidate.roles
            return candidate.identity(roles=roles, token_id=record.id)
