"""The composition root gives each provider channel one pacer for its account (bot/channel_setup.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from bot.channel_setup import build_channels, check_channel_env
from bot.config import ConfigError, Settings
from channels.pacing import Lane, Pacer
from channels.shared_pacing import RedisPacer

ENV = {
    "TELEGRAM_BOT_TOKEN": "4242:secret-part",
    "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
    "TWILIO_AUTH_TOKEN": "token",
    "TWILIO_SMS_FROM": "+27210000001",
    "TWILIO_WHATSAPP_FROM": "whatsapp:+27210000002",
}


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_without_redis_each_channel_paces_its_own_process() -> None:
    channels = build_channels(Settings.from_env(ENV), None, ENV)
    assert {name: type(c.pacer) for name, c in channels.items()} == {  # type: ignore[attr-defined]
        "telegram": Pacer,
        "sms": Pacer,
        "whatsapp": Pacer,
    }
    await channels["telegram"].close()


async def test_with_redis_each_provider_account_has_its_shared_pacer(redis: Redis) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    env = {**ENV, "TWILIO_SMS_MPS": "3", "TWILIO_WHATSAPP_MPS": "7"}
    channels = build_channels(Settings.from_env(env), None, env, redis=redis, redis_prefix=prefix)
    pacers = {name: c.pacer for name, c in channels.items()}  # type: ignore[attr-defined]
    assert all(isinstance(p, RedisPacer) for p in pacers.values())
    keys = {name: pacer.schedule_key for name, pacer in pacers.items()}
    assert keys["telegram"].startswith(f"{prefix}{{pace:telegram:")
    assert keys["sms"].startswith(f"{prefix}{{pace:twilio:")
    assert keys["whatsapp"].startswith(f"{prefix}{{pace:twilio:")
    assert len(set(keys.values())) == 3  # one schedule per account and sending number
    # No sending number in a key name (a digest of the account instead).
    assert not any("+2721" in key for key in keys.values())
    # The bot token's secret part never reaches Redis.
    assert "secret-part" not in pacers["telegram"].schedule_key
    # TWILIO_SMS_MPS is the SMS sender's rate: 3/s, so the fourth send waits about a second.
    for i in range(4):
        await pacers["sms"].wait(f"+2783000000{i}", Lane.BULK)
    booked_until = float(await redis.hget(pacers["sms"].schedule_key, "next") or 0)
    (seconds, micros) = await redis.time()
    assert booked_until - (seconds * 1_000_000 + micros) == pytest.approx(1 / 3 * 1.01e6, abs=0.1e6)
    await channels["telegram"].close()


@pytest.mark.parametrize(
    ("name", "value"),
    [("TWILIO_SMS_MPS", "0"), ("TWILIO_WHATSAPP_MPS", "fast"), ("CITYBOT_PACING_JITTER_MS", "-1")],
)
def test_bad_rates_are_refused_with_the_variables_name(name: str, value: str) -> None:
    env = {**ENV, name: value}
    with pytest.raises(ConfigError, match=name):
        build_channels(Settings.from_env(env), None, env)
    # At start (serve, worker, check) too, with no channel on: one line, exit 2, not a traceback
    # once the channel is turned on.
    with pytest.raises(ConfigError, match=name):
        check_channel_env({name: value})
    check_channel_env({})
