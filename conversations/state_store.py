"""Where each conversation is: the port and its two adapters (SQL, Redis).

A state is a small JSON object (the turn loop's envelope around the engine's form state). The
SQL store is the embedded default and durable; the Redis store is for scale-out, where every
``citybot serve`` process must see the same state. Both pass the one contract test suite in
``tests/conversations/test_state_store.py``.

Example::

    store = SqlStateStore(sessionmaker)
    await store.set(ConversationKey("sms", "+27831234567"), {"form": None})
    await store.get(ConversationKey("sms", "+27831234567"))   # {'form': None}
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import orjson
from redis.asyncio import Redis
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from conversations.keys import ConversationKey
from storage.models import ConversationState
from storage.redis_layout import UNKEYED, RedisLayout
from storage.types import utc_now

__all__ = ["BaseStateStore", "RedisStateStore", "SqlStateStore"]


def _upsert(insert: Any) -> Any:
    # Built once per dialect: building it per turn was a visible share of a SQLite turn.
    statement = insert(ConversationState.__table__)
    return statement.on_conflict_do_update(
        index_elements=["key"],
        set_={"state": statement.excluded.state, "updated_at": statement.excluded.updated_at},
    )


_UPSERT = {"postgresql": _upsert(pg_insert), "sqlite": _upsert(sqlite_insert)}


class BaseStateStore(ABC):
    """Conversation state by key. ``get`` of an unknown key is ``None``, never an error."""

    @abstractmethod
    async def get(self, key: ConversationKey) -> dict[str, Any] | None: ...

    @abstractmethod
    async def set(self, key: ConversationKey, state: dict[str, Any]) -> None: ...

    @abstractmethod
    async def delete(self, key: ConversationKey) -> None: ...

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections the store opened itself."""


class SqlStateStore(BaseStateStore):
    """State in the ``conversation_states`` table.

    ``set_in``/``delete_in`` write inside a caller's transaction, so the turn loop saves the state
    in the same commit as the turn's submission and processed marker: all or nothing.
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def get(self, key: ConversationKey) -> dict[str, Any] | None:
        async with self._sessionmaker() as session:
            return await self.get_in(session, key)

    async def set(self, key: ConversationKey, state: dict[str, Any]) -> None:
        async with self._sessionmaker() as session, session.begin():
            await self.set_in(session, key, state)

    async def delete(self, key: ConversationKey) -> None:
        async with self._sessionmaker() as session, session.begin():
            await self.delete_in(session, key)

    async def get_in(self, session: AsyncSession, key: ConversationKey) -> dict[str, Any] | None:
        row = await session.execute(
            select(ConversationState.state).where(ConversationState.key == key.storage_key)
        )
        state: dict[str, Any] | None = row.scalar_one_or_none()
        return state

    async def set_in(
        self, session: AsyncSession, key: ConversationKey, state: dict[str, Any]
    ) -> None:
        values = {"key": key.storage_key, "state": state, "updated_at": utc_now()}
        await session.execute(_UPSERT[session.get_bind().dialect.name], values)

    async def delete_in(self, session: AsyncSession, key: ConversationKey) -> None:
        await session.execute(
            delete(ConversationState).where(ConversationState.key == key.storage_key)
        )


class RedisStateStore(BaseStateStore):
    """State as JSON strings in Redis, expiring ``ttl`` seconds after the last write.

    The ttl bounds memory for residents who never come back; pick it longer than the turn loop's
    idle timeout so a returning resident can still be offered to continue.
    """

    def __init__(
        self,
        redis: Redis,
        ttl: int = 30 * 24 * 3600,
        *,
        layout: RedisLayout = UNKEYED,
        close_client: bool = False,
    ) -> None:
        self._redis = redis
        self._ttl = ttl
        self._layout = layout
        # The client is usually shared with the locks and dedupe: its owner closes it.
        self._close_client = close_client

    @property
    def redis(self) -> Redis:
        return self._redis

    @property
    def ttl(self) -> int:
        return self._ttl

    @property
    def layout(self) -> RedisLayout:
        return self._layout

    def name(self, key: ConversationKey) -> str:
        """The Redis key of a conversation's state (``storage.redis_layout``)."""
        return self._layout.conversation(key.channel, key.address).state

    async def get(self, key: ConversationKey) -> dict[str, Any] | None:
        raw = await self._redis.get(self.name(key))
        if raw is None:
            return None
        state: dict[str, Any] = orjson.loads(raw)
        return state

    async def set(self, key: ConversationKey, state: dict[str, Any]) -> None:
        await self._redis.set(self.name(key), orjson.dumps(state), ex=self._ttl)

    async def delete(self, key: ConversationKey) -> None:
        await self._redis.delete(self.name(key))

    async def close(self) -> None:
        if self._close_client:
            await self._redis.aclose()
