"""citybot on a real Redis Cluster of three primaries (``tests.cluster.servers``).

The store contracts run on the cluster too (``tests/conversations/test_*`` with the
``redis-cluster`` parameter), and broadcasts (``tests/notifier/test_broadcasts.py``). Here: the
whole turn loop through ``citybot serve``'s app (signed webhook in, turn committed with its reply
on the reply stream of the conversation's shard, reply sent to the fake provider by the stream's
reader, report filed and closed), the shards spread over every primary, and no resident's
address in any key name of the cluster afterwards.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.bootstrap import CLUSTER_STREAM_SHARDS
from bot.config import Settings
from bot.preflight import Outcome, check_redis
from notifier.reply_queue import GROUP
from storage.redis import connect_redis, is_cluster, redis_topology
from storage.redis_layout import RedisLayout
from storage.redis_upgrade import upgrade_redis_layout
from tests.e2e.city import SmsResident, TelegramResident, running_city
from tests.e2e.test_report_loop import close_the_loop
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio

pytestmark = pytest.mark.redis

SMS_PHONE = "+27831239876"
TELEGRAM_CHAT = 987654321


async def cluster_keys(url: str) -> list[str]:
    """Every key on every primary of the cluster."""
    names: list[str] = []
    for node in url.removeprefix("redis+cluster://").split(","):
        host, _, port = node.partition(":")
        client = Redis(host=host, port=int(port))
        try:
            names += [key.decode() async for key in client.scan_iter(count=1000)]
        finally:
            await client.aclose()
    return names


def test_the_cluster_url_names_its_nodes() -> None:
    topology = redis_topology("redis+cluster://10.0.0.1:7000,10.0.0.2:7001")
    assert topology.kind == "cluster"
    assert topology.nodes == (("10.0.0.1", 7000), ("10.0.0.2", 7001))
    assert "10.0.0.2:7001" in topology.describe()


async def test_a_report_closes_the_loop_on_a_cluster_and_no_key_names_a_resident(
    tmp_path: Path, redis_cluster_url: str
) -> None:
    async with (
        FakeTelegram() as telegram,
        FakeTwilio() as twilio,
        running_city(
            tmp_path,
            telegram=telegram,
            twilio=twilio,
            env={"CITYBOT_REDIS_URL": redis_cluster_url},
        ) as city,
    ):
        redis = city.services.redis
        assert redis is not None and is_cluster(redis)
        assert city.services.turn_loop.queues_replies  # the fused Redis turn scripts
        queue = city.services.replies.queue
        assert queue is not None and queue.layout.shards == CLUSTER_STREAM_SHARDS
        async with city.http.get(city.url + "/readyz") as response:
            ready = await response.json()
        assert response.status == 200 and ready["checks"]["redis"] == "ok"
        assert ready["redis"] == {"topology": "cluster", "stream_shards": CLUSTER_STREAM_SHARDS}
        await close_the_loop(city, SmsResident(city, SMS_PHONE), "en")
        await close_the_loop(city, TelegramResident(city, TELEGRAM_CHAT), "zu")

        # Each resident's replies went through the stream of their conversation's shard (not
        # another's), and every one was acknowledged.
        for channel, address in (("sms", SMS_PHONE), ("telegram", str(TELEGRAM_CHAT))):
            stream, _ = queue.keys_for(channel, address)
            [group] = await redis.xinfo_groups(stream)
            assert group["name"].decode() == GROUP
            assert group["entries-read"] >= 8 and group["pending"] == 0
            for other in queue.streams(channel):
                if other != stream:
                    [group] = await redis.xinfo_groups(other)
                    assert not group["entries-read"], other

    names = await cluster_keys(redis_cluster_url)
    assert any(":state:" in name for name in names), names  # the check below saw the keys
    leaked = [
        name
        for name in names
        if SMS_PHONE in name or str(TELEGRAM_CHAT) in name or re.search(r"\+\d{6,}", name)
    ]
    assert leaked == []


async def test_the_shards_spread_over_every_primary(redis_cluster_url: str) -> None:
    redis = connect_redis(redis_cluster_url)
    try:
        await redis.ping()  # the client learns the cluster's slots
        layout = RedisLayout(shards=CLUSTER_STREAM_SHARDS)
        nodes = set()
        for shard in range(layout.shards):
            # redis-py's own map of slots to nodes: where a shard's keys live.
            node = redis.get_node_from_key(layout.reply_stream("sms", shard))  # type: ignore[attr-defined]
            nodes.add(node.name)
        assert len(nodes) == 3
    finally:
        await redis.aclose()


async def test_check_describes_the_cluster_and_a_shard_count_its_keys_do_not_have(
    redis_cluster_url: str, tmp_path: Path
) -> None:
    env = {
        "CITYBOT_REDIS_URL": redis_cluster_url,
        "CITYBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/check.sqlite3",
        "CITYBOT_REDIS_KEY_SECRET": "k" * 32,
    }
    [found, *warnings] = await check_redis(Settings.from_env(env))
    assert found.outcome is Outcome.OK, found
    assert "Redis Cluster" in found.detail and "3 primaries" in found.detail
    assert "127.0.0.1" in found.detail and not any(w.outcome is Outcome.FAIL for w in warnings)
    redis = connect_redis(redis_cluster_url)
    try:
        # What a first start with 12 shards wrote: a start with 5 would look in wrong places.
        await upgrade_redis_layout(redis, RedisLayout(prefix="citybot:", shards=12))
    finally:
        await redis.aclose()
    five = Settings.from_env({**env, "CITYBOT_REDIS_STREAM_SHARDS": "5"})
    failed = [f for f in await check_redis(five) if f.outcome is Outcome.FAIL]
    assert len(failed) == 1 and "CITYBOT_REDIS_STREAM_SHARDS=12" in failed[0].fix
