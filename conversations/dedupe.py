"""Processed-once markers: a provider's message id is acted on once, whatever it retries.

Markers are kept at least ``DEDUPE_TTL`` (24 hours, longer than any provider retries). The SQL
marker is an insert-or-ignore on the unique ``(channel, provider_message_id)``; the turn loop
writes it inside the turn's own transaction (``mark_in``), so a message is marked processed
exactly when its effects are committed. The Redis marker is ``SET NX EX``, written right after
the commit.

Example::

    dedupe = SqlDedupe(sessionmaker)
    await dedupe.mark("sms", "SM123")   # True: first time
    await dedupe.mark("sms", "SM123")   # False: already processed
    await dedupe.seen("sms", "SM123")   # True
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from typing import cast

from redis.asyncio import Redis
from sqlalchemy import Table, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from conversations.turn_context import dialect_name
from storage.models import ProcessedMessage
from storage.redis_layout import UNKEYED, RedisLayout
from storage.types import utc_now

__all__ = [
    "DEDUPE_TTL",
    "BaseDedupe",
    "RedisDedupe",
    "SqlDedupe",
    "mark_processed_in",
    "mark_processed_many",
]

DEDUPE_TTL = timedelta(hours=24)

_processed = cast(Table, ProcessedMessage.__table__)
_INSERT_OR_IGNORE = {
    "postgresql": pg_insert(_processed).on_conflict_do_nothing(
        index_elements=["channel", "provider_message_id"]
    ),
    "sqlite": sqlite_insert(_processed).on_conflict_do_nothing(
        index_elements=["channel", "provider_message_id"]
    ),
}

_MARK_RETURNING = {
    name: statement.returning(_processed.c.channel, _processed.c.provider_message_id)
    for name, statement in _INSERT_OR_IGNORE.items()
}


async def mark_processed_many(
    db: AsyncSession | AsyncConnection, messages: list[tuple[str, str]], now: datetime
) -> set[tuple[str, str]]:
    """Mark many ``(channel, message_id)`` processed in the caller's transaction at once;
    returns those marked now (the others already were)."""
    if not messages:
        return set()
    statement = _MARK_RETURNING[dialect_name(db)]
    rows = [{"channel": c, "provider_message_id": m, "created_at": now} for c, m in messages]
    result = await db.execute(statement, rows)
    return {(str(channel), str(message_id)) for channel, message_id in result.all()}


async def mark_processed_in(session: AsyncSession, channel: str, message_id: str) -> bool:
    """The SQL processed marker, inside the caller's transaction; ``False`` if already there.

    The turn loop writes it in every transaction a turn commits, whichever dedupe store it
    uses, so a turn's SQL effects (a submission) happen once even if a Redis marker is lost.
    """
    statement = _INSERT_OR_IGNORE[session.get_bind().dialect.name]
    values = {"channel": channel, "provider_message_id": message_id, "created_at": utc_now()}
    result = await session.execute(statement, values)
    return bool(getattr(result, "rowcount", 0) == 1)


class BaseDedupe(ABC):
    @abstractmethod
    async def seen(self, channel: str, message_id: str, address: str = "") -> bool:
        """Whether this message was already processed. ``address`` (the sender's) places the
        Redis marker in its conversation's slot; the SQL marker does not need it."""

    @abstractmethod
    async def mark(self, channel: str, message_id: str, address: str = "") -> bool:
        """Record it as processed; ``False`` when it already was (someone else won)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections the store opened itself."""


class SqlDedupe(BaseDedupe):
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def seen(self, channel: str, message_id: str, address: str = "") -> bool:
        async with self._sessionmaker() as session:
            row = await session.execute(
                select(ProcessedMessage.created_at).where(
                    ProcessedMessage.channel == channel,
                    ProcessedMessage.provider_message_id == message_id,
                )
            )
            return row.first() is not None

    async def mark(self, channel: str, message_id: str, address: str = "") -> bool:
        async with self._sessionmaker() as session, session.begin():
            return await self.mark_in(session, channel, message_id)

    async def mark_in(self, session: AsyncSession, channel: str, message_id: str) -> bool:
        """Insert-or-ignore inside the caller's transaction; ``True`` when this call inserted."""
        return await mark_processed_in(session, channel, message_id)

    async def purge(self, now: datetime | None = None, keep: timedelta = DEDUPE_TTL) -> int:
        """Forget markers older than ``keep`` (never less than 24 hours); returns how many."""
        keep = max(keep, DEDUPE_TTL)
        cutoff = (now or utc_now()) - keep
        async with self._sessionmaker() as session, session.begin():
            result = await session.execute(
                delete(ProcessedMessage).where(ProcessedMessage.created_at < cutoff)
            )
            return int(getattr(result, "rowcount", 0))


class RedisDedupe(BaseDedupe):
    def __init__(
        self, redis: Redis, ttl: timedelta = DEDUPE_TTL, *, layout: RedisLayout = UNKEYED
    ) -> None:
        self._redis = redis
        self._ttl = max(ttl, DEDUPE_TTL)
        self._layout = layout

    @property
    def redis(self) -> Redis:
        return self._redis

    @property
    def layout(self) -> RedisLayout:
        return self._layout

    @property
    def ttl_seconds(self) -> int:
        return int(self._ttl.total_seconds())

    def name(self, channel: str, message_id: str, address: str = "") -> str:
        """The Redis key of a processed marker, in the conversation's slot
        (``storage.redis_layout``)."""
        return self._layout.marker(channel, address, message_id)

    async def seen(self, channel: str, message_id: str, address: str = "") -> bool:
        return bool(await self._redis.exists(self.name(channel, message_id, address)))

    async def mark(self, channel: str, message_id: str, address: str = "") -> bool:
        created = await self._redis.set(
            self.name(channel, message_id, address),
            b"1",
            nx=True,
            ex=int(self._ttl.total_seconds()),
        )
        return bool(created)
