"""Per-conversation locks: in order within a process, exclusive across processes (Redis)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from redis.asyncio import Redis

from conversations.keys import ConversationKey
from conversations.locks import BaseLocks, InProcessLocks, LockTimeout, RedisLocks
from storage.redis_layout import RedisLayout
from tests.conversations.stores import REDIS_KINDS, redis_client, redis_store_client

KEY = ConversationKey("sms", "+27831234567")


@pytest.fixture(params=["memory", *REDIS_KINDS])
async def locks(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BaseLocks]:
    if request.param == "memory":
        yield InProcessLocks()
    else:
        async with redis_store_client(request, request.param) as (client, layout):
            yield RedisLocks(client, lease=1.0, layout=layout)


class TestLocksContract:
    async def test_one_holder_at_a_time_in_arrival_order(self, locks: BaseLocks) -> None:
        order: list[int] = []
        inside = 0

        async def turn(n: int) -> None:
            nonlocal inside
            async with locks.hold(KEY):
                inside += 1
                assert inside == 1
                await asyncio.sleep(0.001)
                order.append(n)
                inside -= 1

        await asyncio.gather(*(turn(n) for n in range(20)))
        assert order == list(range(20))

    async def test_different_conversations_run_in_parallel(self, locks: BaseLocks) -> None:
        other = ConversationKey("sms", "+27839999999")
        entered = asyncio.Event()

        async def slow() -> None:
            async with locks.hold(KEY):
                entered.set()
                await asyncio.sleep(0.3)

        task = asyncio.create_task(slow())
        await entered.wait()
        async with asyncio.timeout(0.2), locks.hold(other):
            pass
        await task

    async def test_released_when_the_body_raises(self, locks: BaseLocks) -> None:
        with pytest.raises(RuntimeError):
            async with locks.hold(KEY):
                raise RuntimeError("turn failed")
        async with asyncio.timeout(0.5), locks.hold(KEY):
            pass


async def test_in_process_locks_forget_idle_conversations() -> None:
    locks = InProcessLocks()
    async with locks.hold(KEY):
        assert len(locks) == 1
    assert len(locks) == 0


@asynccontextmanager
async def _two_processes() -> AsyncIterator[tuple[RedisLocks, RedisLocks, Redis, str]]:
    async with redis_client() as (client, prefix):
        # Two lock objects, each with its own in-process lock: two `citybot serve` processes.
        yield (
            RedisLocks(client, lease=0.3, layout=RedisLayout(prefix=prefix)),
            RedisLocks(client, lease=0.3, wait=0.2, layout=RedisLayout(prefix=prefix)),
            client,
            prefix,
        )


async def test_two_redis_lock_objects_exclude_each_other_beyond_the_lease() -> None:
    async with _two_processes() as (first, second, _client, _prefix):
        held = asyncio.Event()
        release = asyncio.Event()

        async def long_turn() -> None:
            async with first.hold(KEY):
                held.set()
                await release.wait()

        task = asyncio.create_task(long_turn())
        await held.wait()
        await asyncio.sleep(0.5)  # longer than the lease: only renewal keeps it held
        with pytest.raises(LockTimeout):
            async with second.hold(KEY):
                pass
        release.set()
        await task
        async with second.hold(KEY):
            pass


async def test_a_dead_holders_lease_expires_and_a_stranger_cannot_release() -> None:
    async with _two_processes() as (first, _second, client, _prefix):
        name = first.name(KEY)
        # A process that died while holding the lock: its token stays until the lease runs out.
        await client.set(name, "dead-process-token", px=200)
        started = asyncio.get_running_loop().time()
        async with first.hold(KEY):
            assert asyncio.get_running_loop().time() - started >= 0.1
            assert await client.get(name) != b"dead-process-token"
            await client.set(name, "someone-else")  # the lease was stolen mid-turn
        # Release checked the token: the other holder's key is untouched.
        assert await client.get(name) == b"someone-else"
