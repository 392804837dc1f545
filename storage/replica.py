"""Reads that may be a little behind (analytics, open data, the dashboard) from a streaming replica.

``ReplicaReads`` is called like a sessionmaker (``async with reads() as session``) and hands out
a session on the replica while it answers and its replay lag is at most ``max_lag`` seconds, and
a session on the primary otherwise, so a replica down, lagging or being rebuilt never fails a
read. Without a replica every session is the primary's. Only reads go through it: whatever
writes (an audit row, the rollup's refresh) keeps the primary's sessionmaker.

How it decides, cheaply enough to ask on every read:
- the replica's state is asked at most every ``recheck_seconds`` (one query: is it in
  recovery, has it replayed all it received, and how old its last replayed commit is); between
  two asks the last answer stands;
- each replica session checks out its connection before it is handed over (the pool pings
  it), so a replica stopped since the last ask is found there and the read goes to the primary;
- a change (to the primary, or back to the replica) is logged once, with the reason; every
  read sent to the primary because of the replica is reported to ``on_fallback(reason)`` (the
  composition root counts them in /metrics), the lag to ``on_lag(seconds)``.

The lag is PostgreSQL's own: ``now() - pg_last_xact_replay_timestamp()``, but 0 while the
replica streams and has replayed everything it received (an idle primary commits nothing, and
the age of the last commit would grow though nothing is missing), and "too far" while it is
behind but has replayed no commit since it started (it cannot tell how far).

Example::

    reads = ReplicaReads(primary_sessions, replica_sessions, max_lag=30.0)
    async with reads() as session:
        rows = await session.execute(select(OpenDataRow))
    (await reads.health()).as_dict()   # {"ok": True, "serving": "replica", "lag_seconds": 0.0}
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

__all__ = ["ReadSessions", "ReplicaHealth", "ReplicaReads"]

# What a reader takes: a sessionmaker, or ``ReplicaReads`` (``async with sessions() as s``).
ReadSessions = Callable[[], AbstractAsyncContextManager[AsyncSession]]

log = logging.getLogger("citybot.replica")

# The replica's state: lag in seconds, or NULL when it is not a standby at all (promoted).
# Behind with no transaction replayed since it started, it cannot tell how far: too far.
_LAG = text(
    "SELECT CASE WHEN NOT pg_is_in_recovery() THEN NULL "
    "WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() "
    "AND EXISTS (SELECT 1 FROM pg_stat_wal_receiver WHERE status = 'streaming') THEN 0.0 "
    "ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())::float8, "
    "'Infinity'::float8) END"
)


@dataclass(frozen=True, slots=True)
class ReplicaHealth:
    """What /readyz and ``citybot check`` show: where reads go, and why."""

    configured: bool
    serving: str  # "replica" | "primary"
    lag_seconds: float | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return not self.configured or self.serving == "replica"

    def as_dict(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"ok": self.ok, "serving": self.serving}
        if self.lag_seconds is not None:
            shown["lag_seconds"] = round(self.lag_seconds, 3)
        if self.reason is not None:
            shown["reason"] = self.reason
        return shown


class ReplicaReads:
    def __init__(
        self,
        primary: async_sessionmaker[AsyncSession],
        replica: async_sessionmaker[AsyncSession] | None = None,
        *,
        max_lag: float = 30.0,
        recheck_seconds: float = 5.0,
        probe_timeout: float = 2.0,
        on_fallback: Callable[[str], None] | None = None,
        on_lag: Callable[[float], None] | None = None,
    ) -> None:
        self.primary = primary
        self.replica = replica
        self.max_lag = max_lag
        self.recheck_seconds = recheck_seconds
        self.probe_timeout = probe_timeout
        self._on_fallback = on_fallback
        self._on_lag = on_lag
        self._asked_at = float("-inf")
        self._lag: float | None = None
        # None: reads go to the replica; else why they go to the primary, in words.
        self._problem: str | None = None
        # "down" or "lagging": the label of the reads counted as sent to the primary.
        self._kind = "down"
        self._lock = asyncio.Lock()

    def __call__(self) -> AbstractAsyncContextManager[AsyncSession]:
        return self._session()

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[AsyncSession]:
        session = await self._replica_session()
        if session is None:
            session = self.primary()
        async with session:
            yield session

    async def close(self) -> None:
        """Close the replica's pool (the primary's belongs to its owner)."""
        if self.replica is not None:
            engine = self.replica.kw.get("bind")
            if engine is not None:
                await engine.dispose()

    async def health(self) -> ReplicaHealth:
        """Where reads go now, asking the replica afresh."""
        if self.replica is None:
            return ReplicaHealth(configured=False, serving="primary")
        async with self._lock:
            await self._ask()
        return self._health()

    def _health(self) -> ReplicaHealth:
        return ReplicaHealth(
            configured=True,
            serving="primary" if self._problem else "replica",
            lag_seconds=self._lag,
            reason=self._problem,
        )

    async def _replica_session(self) -> AsyncSession | None:
        """A session whose connection to the replica is checked out and alive, or None."""
        if self.replica is None:
            return None
        if time.monotonic() - self._asked_at >= self.recheck_seconds:
            async with self._lock:
                if time.monotonic() - self._asked_at >= self.recheck_seconds:
                    await self._ask()
        if self._problem is not None:
            self._fallback()
            return None
        session = self.replica()
        try:
            await asyncio.wait_for(session.connection(), self.probe_timeout)
        except (DBAPIError, OSError, TimeoutError) as exc:
            await session.close()
            self._set_problem("down", f"replica unreachable: {_reason(exc)}")
            self._asked_at = time.monotonic()
            self._fallback()
            return None
        return session

    async def _ask(self) -> None:
        assert self.replica is not None
        try:
            async with self.replica() as session:
                lag = await asyncio.wait_for(session.scalar(_LAG), self.probe_timeout)
        except (DBAPIError, OSError, TimeoutError) as exc:
            self._lag = None
            self._set_problem("down", f"replica unreachable: {_reason(exc)}")
        else:
            self._lag = float(lag) if lag is not None else 0.0
            if self._on_lag is not None:
                self._on_lag(self._lag)
            if self._lag > self.max_lag:
                self._set_problem(
                    "lagging", f"replica {self._lag:.1f} s behind (more than {self.max_lag:g} s)"
                )
            else:
                self._set_problem("ok", None)
        self._asked_at = time.monotonic()

    def _set_problem(self, kind: str, problem: str | None) -> None:
        self._kind = kind
        if problem is None and self._problem is not None:
            log.warning("analytics reads back on the replica", extra={"was": self._problem})
        elif problem is not None and self._problem is None:
            log.warning("analytics reads on the primary", extra={"reason": problem})
        self._problem = problem

    def _fallback(self) -> None:
        if self._on_fallback is not None:
            self._on_fallback(self._kind)


def _reason(exc: BaseException) -> str:
    # Never the statement's parameters (there are none here), only what went wrong.
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    original = getattr(exc, "orig", None) or exc
    return type(original).__name__
