"""The Redis key layout, the URLs of the three topologies, and waiting for replicas."""

from __future__ import annotations

import logging
from collections import Counter

import pytest
from redis.crc import key_slot

from bot.config import ConfigError, Settings
from storage.redis import ReplicaWait, redis_topology
from storage.redis_layout import RedisLayout

PHONE = "+27831234567"


def test_every_key_a_turn_touches_is_in_one_slot_with_its_reply_stream() -> None:
    layout = RedisLayout(secret=b"s" * 32, shards=12)
    for n in range(200):
        address = f"+2783{n:07d}"
        keys = layout.conversation("sms", address)
        names = [
            keys.state,
            keys.lock,
            keys.rate,
            keys.order,
            layout.marker("sms", address, f"SM{n}"),
            layout.reply_stream("sms", keys.shard),
        ]
        assert len({key_slot(name.encode()) for name in names}) == 1, names


def test_no_key_name_carries_the_address_or_the_message_id() -> None:
    layout = RedisLayout(secret=b"s" * 32, shards=4)
    keys = layout.conversation("sms", PHONE)
    names = [keys.state, keys.lock, keys.rate, keys.order, layout.marker("sms", PHONE, "SMabc")]
    assert not any(PHONE in name or "27831234567" in name or "SMabc" in name for name in names)
    assert keys.state == f"citybot:{{s{keys.shard}}}:state:{keys.tag}" and len(keys.tag) == 32


def test_the_names_are_keyed_by_the_secret() -> None:
    one = RedisLayout(secret=b"a" * 32).conversation("sms", PHONE)
    other = RedisLayout(secret=b"b" * 32).conversation("sms", PHONE)
    assert one.tag != other.tag
    assert RedisLayout(secret=b"a" * 32).conversation("sms", PHONE) == one  # and stable


def test_residents_spread_evenly_over_the_shards() -> None:
    layout = RedisLayout(secret=b"s" * 32, shards=4)
    counts = Counter(layout.conversation("sms", f"+2782{n:07d}").shard for n in range(4000))
    assert sorted(counts) == [0, 1, 2, 3]
    assert min(counts.values()) > 850  # 1000 each on average


@pytest.mark.parametrize(
    ("url", "kind", "nodes"),
    [
        ("redis://127.0.0.1:6379/0", "single", ()),
        ("redis+cluster://a:7000,b:7001", "cluster", (("a", 7000), ("b", 7001))),
        ("rediss+cluster://:pw@a:7000/", "cluster", (("a", 7000),)),
        ("redis+sentinel://a:26379,b:26379/citybot", "sentinel", (("a", 26379), ("b", 26379))),
    ],
)
def test_the_three_topologies_are_read(url: str, kind: str, nodes: tuple[object, ...]) -> None:
    topology = redis_topology(url)
    assert (topology.kind, topology.nodes) == (kind, nodes)


def test_a_password_is_taken_and_never_described() -> None:
    topology = redis_topology("rediss+sentinel://:s3cret@a:26379/citybot/2")
    assert (topology.password, topology.tls, topology.db) == ("s3cret", True, 2)
    assert "s3cret" not in topology.describe()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("redis+cluster://", "at least one host:port"),
        ("redis+cluster://a:7000,b", "host:port"),
        ("redis+cluster://a:7000/3", "database 0 only"),
        ("redis+sentinel://a:26379", "primary's name"),
        ("redis+sentinel://a:26379/citybot/x", "is a number"),
    ],
)
def test_a_wrong_url_is_one_clear_line(url: str, reason: str) -> None:
    with pytest.raises(ConfigError, match="CITYBOT_REDIS_URL") as raised:
        Settings.from_env({"CITYBOT_REDIS_URL": url})
    assert reason in str(raised.value)


def test_a_short_key_secret_is_refused_and_the_shards_are_bounded() -> None:
    with pytest.raises(ConfigError, match="CITYBOT_REDIS_KEY_SECRET"):
        Settings.from_env({"CITYBOT_REDIS_KEY_SECRET": "short"})
    with pytest.raises(ConfigError, match="CITYBOT_REDIS_STREAM_SHARDS"):
        Settings.from_env({"CITYBOT_REDIS_STREAM_SHARDS": "0"})
    settings = Settings.from_env({"CITYBOT_SESSION_SECRET": "x" * 32})
    assert settings.redis_key_names_secret != b"x" * 32  # derived, never the secret itself
    kept = Settings.from_env({"CITYBOT_REDIS_KEY_SECRET": "k" * 20})
    assert kept.redis_key_names_secret == b"k" * 20


class _Pipeline:
    def __init__(self) -> None:
        self.commands: list[tuple[object, ...]] = []

    def execute_command(self, *args: object) -> None:
        self.commands.append(args)


def test_a_short_wait_pauses_the_waits_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    wait = ReplicaWait(1, pause_seconds=5.0, clock=lambda: now[0])
    pipe = _Pipeline()
    assert wait.add_to(pipe) and pipe.commands == [("WAIT", 1, 250)]
    wait.saw(1)
    assert wait.add_to(pipe)
    with caplog.at_level(logging.WARNING, logger="citybot.redis"):
        wait.saw(0)  # the replica is gone
        assert not wait.add_to(pipe)  # no 250 ms on every turn while it is
        now[0] = 6.0
        assert wait.add_to(pipe)
        wait.saw(0)
        now[0] = 12.0
        assert wait.add_to(pipe)
        wait.saw(1)  # back
    said = [r.getMessage() for r in caplog.records]
    assert sum("did not confirm" in line for line in said) == 1
    assert sum("confirm writes again" in line for line in said) == 1
