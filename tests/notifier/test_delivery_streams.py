"""``notifier.delivery_streams`` on a real Redis: each entry goes to one worker, a dead worker's
entry is taken over once it has been idle for the lease, and an acknowledged one is gone."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from notifier.delivery_streams import DeliveryStreams
from storage.redis import connect_redis
from storage.redis_layout import RedisLayout


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = connect_redis(redis_url)
    yield client
    await client.aclose()


def _streams(redis: Redis, prefix: str, name: str, idle: float = 60.0) -> DeliveryStreams:
    return DeliveryStreams(
        redis, layout=RedisLayout(prefix=prefix), claim_idle_seconds=idle, consumer=name
    )


async def test_each_entry_goes_to_one_worker_and_is_gone_once_done(redis: Redis) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    first, second = _streams(redis, prefix, "a"), _streams(redis, prefix, "b")
    await first.enqueue("sms", [[1, 2], [3]])
    await first.enqueue("telegram", [[4]])
    taken = [await first.take(["sms", "telegram"]), await second.take(["sms", "telegram"])]
    taken.append(await second.take(["sms", "telegram"]))
    assert all(entry is not None for entry in taken)
    assert sorted(i for entry in taken if entry for i in entry.ids) == [1, 2, 3, 4]
    assert await first.take(["sms", "telegram"]) is None
    for entry in taken:
        assert entry is not None
        await first.done(entry)
    assert await first.backlog("sms") == 0 and await first.backlog("telegram") == 0


async def test_a_dead_workers_entry_is_taken_over_after_the_lease(redis: Redis) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    dead = _streams(redis, prefix, "dead", idle=0.3)
    await dead.enqueue("sms", [[7, 8]])
    held = await dead.take(["sms"])
    assert held is not None and held.ids == (7, 8)
    # It never acknowledges. Another worker does not get it while it is fresh...
    alive = _streams(redis, prefix, "alive", idle=0.3)
    assert await alive.take(["sms"]) is None
    # ...and gets it, once, after it has been idle for the lease.
    deadline = time.monotonic() + 30
    taken = None
    while taken is None:
        assert time.monotonic() < deadline, "the entry was never taken over"
        await asyncio.sleep(0.1)
        taken = await alive.take(["sms"])
    assert taken.ids == (7, 8) and taken.entry_id == held.entry_id
    await alive.done(taken)
    assert await alive.backlog("sms") == 0
