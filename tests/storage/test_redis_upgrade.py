"""An older citybot's Redis keys (before ``storage.redis_layout``) are moved at start: a resident in
the middle of a form keeps their place, replies still queued are sent, each once and in order."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
from redis.asyncio import Redis

from bot.bootstrap import build_services, close_services
from bot.workers import run_workers
from channels.types import OutboundMessage
from conversations.keys import ConversationKey
from conversations.state_store import RedisStateStore
from notifier.reply_queue import GROUP, QueuedReply, encode
from storage.redis_layout import RedisLayout
from storage.redis_upgrade import LayoutMismatch, upgrade_redis_layout
from tests.e2e.city import city_settings, free_port
from tests.e2e.test_report_loop import fresh_redis_keys
from tests.fakes.twilio_api import FakeTwilio

pytestmark = pytest.mark.redis

PHONE = "+27831112233"
STATE = {"form": {"id": "pothole", "step": "where"}, "locale": "af"}


def reply(text: str) -> bytes:
    entry = encode([OutboundMessage(channel="sms", address=PHONE, text=text)])
    assert entry is not None
    return entry


async def old_layout(redis: Redis, prefix: str) -> None:
    """What an older citybot left: a state mid-form, its order hash, two replies queued (one
    taken by a process that was stopped before it acknowledged it), a dispatch stream."""
    await redis.set(f"{prefix}state:sms:{PHONE}", orjson.dumps(STATE), ex=3600)
    order = f"{prefix}replies:order:sms:{PHONE}"
    await redis.hset(order, mapping={"seq": 3, "done": 1})
    await redis.expire(order, 3600)
    stream = f"{prefix}replies:sms"
    await redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
    await redis.xadd(stream, {"reply": reply("second"), "seq": 2, "order": order})
    await redis.xreadgroup(GROUP, "stopped-process", {stream: ">"}, count=1)
    await redis.xadd(stream, {"reply": reply("third"), "seq": 3, "order": order})
    await redis.xadd(f"{prefix}{{dispatch:broadcasts:sms}}", {"ids": "1,2,3"})


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[tuple[Redis, str]]:
    client = Redis.from_url(redis_url)
    prefix = f"citybot-test:{uuid.uuid4().hex[:10]}:"
    try:
        yield client, prefix
    finally:
        keys = [k async for k in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_the_old_layout_is_moved_once_and_nothing_is_lost(
    redis: tuple[Redis, str],
) -> None:
    client, prefix = redis
    await old_layout(client, prefix)
    layout = RedisLayout(secret=b"k" * 32, prefix=prefix, shards=3)

    report = await upgrade_redis_layout(client, layout)
    assert (report.states, report.orders, report.replies, report.dispatch_streams) == (1, 1, 2, 1)
    # Only the new layout is left, and no key names the resident.
    names = sorted([k.decode() async for k in client.scan_iter(match=f"{prefix}*")])
    assert not any(PHONE in name for name in names), names
    keys = layout.conversation("sms", PHONE)
    assert sorted(names) == sorted(
        [keys.state, keys.order, layout.reply_stream("sms", keys.shard), f"{prefix}layout"]
    )

    store = RedisStateStore(client, layout=layout)
    assert await store.get(ConversationKey("sms", PHONE)) == STATE
    assert 3500 < await client.ttl(keys.state) <= 3600
    assert await client.hgetall(keys.order) == {b"seq": b"3", b"done": b"1"}
    assert await client.ttl(keys.order) > 3500
    entries = await client.xrange(layout.reply_stream("sms", keys.shard))
    queued = [QueuedReply.from_fields(i.decode(), f) for i, f in entries]
    assert [(r.messages[0].text, r.number) for r in queued] == [
        ("second", (keys.order, 2)),
        ("third", (keys.order, 3)),
    ]

    # Again (a second process starting, or a start killed halfway): nothing more moves.
    again = await upgrade_redis_layout(client, layout)
    assert (again.states, again.orders, again.replies, again.dispatch_streams) == (0, 0, 0, 0)
    assert await client.xlen(layout.reply_stream("sms", keys.shard)) == 2


async def test_a_newer_state_is_never_overwritten_by_an_old_one(redis: tuple[Redis, str]) -> None:
    client, prefix = redis
    layout = RedisLayout(prefix=prefix)
    store = RedisStateStore(client, layout=layout)
    key = ConversationKey("sms", PHONE)
    await store.set(key, {"form": None, "locale": "zu"})
    await client.set(f"{prefix}state:sms:{PHONE}", orjson.dumps(STATE))
    await upgrade_redis_layout(client, layout)
    assert await store.get(key) == {"form": None, "locale": "zu"}
    assert not await client.exists(f"{prefix}state:sms:{PHONE}")


async def test_another_shard_count_than_the_keys_have_is_refused(
    redis: tuple[Redis, str],
) -> None:
    client, prefix = redis
    await upgrade_redis_layout(client, RedisLayout(prefix=prefix, shards=4))
    with pytest.raises(LayoutMismatch, match=r"laid out in 4 shards.*gives 2"):
        await upgrade_redis_layout(client, RedisLayout(prefix=prefix, shards=2))
    await upgrade_redis_layout(client, RedisLayout(prefix=prefix, shards=4))


async def test_after_an_upgrade_the_queued_replies_are_sent_in_order_and_the_form_goes_on(
    tmp_path: Path, redis_url: str
) -> None:
    async with fresh_redis_keys(redis_url), FakeTwilio() as twilio:
        client = Redis.from_url(redis_url)
        try:
            await old_layout(client, "citybot:")
        finally:
            await client.aclose()
        settings = city_settings(
            tmp_path, free_port(), twilio=twilio, env={"CITYBOT_REDIS_URL": redis_url}
        )
        services = await build_services(settings)  # moves them before anything is taken
        try:
            assert await services.turn_loop.states.get(ConversationKey("sms", PHONE)) == STATE
            async with run_workers(services, {"replies"}):
                deadline = time.monotonic() + 10
                while len(twilio.messages()) < 2:
                    assert time.monotonic() < deadline, twilio.messages()
                    await asyncio.sleep(0.05)
                await asyncio.sleep(0.3)  # nothing more comes
            assert [(m.form["To"], m.form["Body"]) for m in twilio.messages()] == [
                (PHONE, "second"),
                (PHONE, "third"),
            ]
        finally:
            await close_services(services)
