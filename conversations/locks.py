"""One turn at a time per conversation: in this process, and across processes with Redis.

``InProcessLocks`` keeps one ``asyncio.Lock`` per conversation while anyone holds or waits for
it (then drops it, so memory follows the active conversations, not all of them). asyncio's lock
wakes waiters first come, first served, so one resident's messages run in arrival order.

``RedisLocks`` adds a lease in Redis so several ``citybot serve`` processes serialise one
resident's messages: ``SET NX PX`` with a random token, renewed while the turn runs, released
only by the holder (the token is checked in a Lua script). A process that dies loses its lease
after ``lease`` seconds and the next process takes over. It takes the in-process lock first, so
arrival order within a process is kept and only one task per process polls Redis.

Example::

    locks = InProcessLocks()
    async with locks.hold(ConversationKey("sms", "+27831234567")):
        ...  # this resident's turn; their next message waits here
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

from redis.asyncio import Redis

from conversations.keys import ConversationKey
from storage.redis_layout import UNKEYED, RedisLayout

__all__ = ["BaseLocks", "InProcessLocks", "LockTimeout", "RedisLocks"]

log = logging.getLogger(__name__)


class LockTimeout(Exception):
    """The conversation stayed locked longer than the wait allows (the turn is retried later)."""


class BaseLocks(ABC):
    @abstractmethod
    def hold(self, key: ConversationKey) -> AbstractAsyncContextManager[None]:
        """Wait for the conversation, hold it for the ``async with`` body, then release it."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections the locks opened themselves."""


@dataclass
class _Slot:
    lock: asyncio.Lock
    users: int = 0


class InProcessLocks(BaseLocks):
    def __init__(self) -> None:
        self._slots: dict[str, _Slot] = {}

    def __len__(self) -> int:
        """Conversations currently held or waited for (the rest take no memory)."""
        return len(self._slots)

    @asynccontextmanager
    async def hold(self, key: ConversationKey) -> AsyncIterator[None]:
        name = key.storage_key
        slot = self._slots.get(name)
        if slot is None:
            slot = self._slots[name] = _Slot(asyncio.Lock())
        slot.users += 1
        try:
            async with slot.lock:
                yield
        finally:
            slot.users -= 1
            if slot.users == 0:
                del self._slots[name]


_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class RedisLocks(BaseLocks):
    def __init__(
        self,
        redis: Redis,
        *,
        lease: float = 10.0,
        wait: float = 30.0,
        layout: RedisLayout = UNKEYED,
    ) -> None:
        self._redis = redis
        self._lease_ms = int(lease * 1000)
        self._wait = wait
        self._layout = layout
        self._local = InProcessLocks()
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    @property
    def redis(self) -> Redis:
        return self._redis

    @property
    def layout(self) -> RedisLayout:
        return self._layout

    @property
    def lease_ms(self) -> int:
        return self._lease_ms

    @property
    def wait(self) -> float:
        """Seconds a turn waits for a conversation another turn holds."""
        return self._wait

    def name(self, key: ConversationKey) -> str:
        """The Redis key of a conversation's lock."""
        return self._layout.conversation(key.channel, key.address).lock

    @asynccontextmanager
    async def hold(self, key: ConversationKey) -> AsyncIterator[None]:
        async with self._local.hold(key):
            name = self.name(key)
            token = secrets.token_hex(16)
            await self._acquire(name, token)
            renewer = asyncio.create_task(self._keep_renewing(name, token))
            try:
                yield
            finally:
                renewer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewer
                await self._release(keys=[name], args=[token])

    async def _acquire(self, name: str, token: str) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        pause = 0.002
        while not await self._redis.set(name, token, nx=True, px=self._lease_ms):
            if loop.time() >= deadline:
                raise LockTimeout(f"conversation lock {name} still held after {self._wait}s")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    async def _keep_renewing(self, name: str, token: str) -> None:
        # Renew at a third of the lease: two renewals can be late before the lease runs out.
        interval = self._lease_ms / 3000
        while True:
            await asyncio.sleep(interval)
            renewed = await self._renew(keys=[name], args=[token, self._lease_ms])
            if not renewed:
                log.warning("conversation lock %s was lost before the turn ended", name)
                return
