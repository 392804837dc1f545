"""Sign-in throttling per account and per network address, kept in the database so every
``serve`` process counts the same failures.

An account is locked for a while after a few failures in a row (a guessed password), an address
after many (one machine trying many accounts). A success clears the account's count, not the
address's: a guesser who knows one password must not reset the count for the others.

Example::

    throttle = SignInThrottle()
    until = await throttle.locked_until(session, keys, now)   # None, or when to try again
    await throttle.failed(session, keys, now)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import LoginThrottle

__all__ = ["SignInThrottle", "ThrottleKeys", "ThrottleRule"]


@dataclass(frozen=True, slots=True)
class ThrottleRule:
    failures: int
    window: timedelta
    lock: timedelta


@dataclass(frozen=True, slots=True)
class ThrottleKeys:
    account: str
    address: str | None

    @classmethod
    def of(cls, email: str, address: str | None) -> ThrottleKeys:
        return cls(
            account=f"account:{email.strip().lower()[:254]}",
            address=f"address:{address[:64]}" if address else None,
        )

    def all(self) -> list[str]:
        return [self.account] if self.address is None else [self.account, self.address]


@dataclass(frozen=True, slots=True)
class SignInThrottle:
    # Five wrong passwords for one account in 15 minutes lock it for 15 minutes.
    account: ThrottleRule = ThrottleRule(5, timedelta(minutes=15), timedelta(minutes=15))
    # An office behind one NAT signs in from one address: allow a floor's worth of typos.
    address: ThrottleRule = ThrottleRule(30, timedelta(minutes=15), timedelta(minutes=15))

    def _rule(self, key: str) -> ThrottleRule:
        return self.account if key.startswith("account:") else self.address

    async def locked_until(
        self, session: AsyncSession, keys: ThrottleKeys, now: datetime
    ) -> datetime | None:
        """When the later of the account's and the address's locks ends, if either is on."""
        rows = await session.scalars(
            select(LoginThrottle.locked_until).where(
                LoginThrottle.key.in_(keys.all()), LoginThrottle.locked_until > now
            )
        )
        ends = [end for end in rows if end is not None]
        return max(ends) if ends else None

    async def failed(self, session: AsyncSession, keys: ThrottleKeys, now: datetime) -> None:
        """Count one failure against the account and the address (locking them at the limit)."""
        for key in keys.all():
            await self._count(session, key, now)

    async def succeeded(self, session: AsyncSession, keys: ThrottleKeys) -> None:
        await session.execute(delete(LoginThrottle).where(LoginThrottle.key == keys.account))

    async def _count(self, session: AsyncSession, key: str, now: datetime) -> None:
        rule = self._rule(key)
        # Create the row if it is not there, then lock it: two processes counting at once
        # both count (SQLite's BEGIN IMMEDIATE and PostgreSQL's row lock serialise them).
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        await session.execute(
            insert(LoginThrottle)
            .values(key=key, failures=0, window_started_at=now)
            .on_conflict_do_nothing(index_elements=["key"])
        )
        row = (
            await session.scalars(
                select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()
            )
        ).one()
        if now - row.window_started_at > rule.window:
            row.failures, row.window_started_at = 0, now
        row.failures += 1
        if row.failures >= rule.failures:
            row.locked_until = now + rule.lock
            # The lock is the penalty; counting starts again once it ends.
            row.failures, row.window_started_at = 0, now + rule.lock
        await session.flush()
