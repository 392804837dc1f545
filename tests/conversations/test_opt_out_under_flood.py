"""A flooded resident who sends STOP is opted out: opt-out words pass the rate limit, on the SQL
stores and through the Redis turn gate, in every locale."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.bootstrap import turn_loop_on
from channels.types import InboundMessage
from conversations.commands import bypasses_rate_limit
from conversations.turn import TurnLoop
from storage.models import Resident, ResidentAddress
from tests.conversations.stores import redis_client
from tests.storage.databases import redis_url_or_skip, sqlite_database


def _message(channel: str, address: str, text: str) -> InboundMessage:
    return InboundMessage(channel, address, uuid.uuid4().hex, text=text)


async def _flood_then(loop: TurnLoop, channel: str, word: str) -> None:
    address = uuid.uuid4().hex
    for n in range(30):
        await loop.handle(_message(channel, address, f"spam {n}"))
    assert (await loop.handle(_message(channel, address, "pothole"))).rate_limited
    stop = await loop.handle(_message(channel, address, word))
    assert not stop.rate_limited
    async with loop.sessionmaker() as session:
        opted_out = await session.scalar(
            select(Resident.opted_out_at)
            .join(ResidentAddress, ResidentAddress.resident_id == Resident.id)
            .where(ResidentAddress.address == address)
        )
    assert opted_out is not None, f"{word!r} on {channel} did not opt the resident out"
    # And a flooded, opted-out resident can come back with START.
    back = await loop.handle(_message(channel, address, "START"))
    assert not back.rate_limited and back.effects


@pytest.mark.parametrize(
    ("channel", "word"),
    [("webchat", "STOP"), ("telegram", "staak"), ("sms", "cancel"), ("whatsapp", "ngiyayeka")],
)
async def test_opt_out_passes_the_rate_limit_on_sql(
    tmp_path: Path, channel: str, word: str
) -> None:
    async with sqlite_database(tmp_path) as url:
        loop = turn_loop_on(url, rate_per_second=0.01, rate_burst=5)
        try:
            await _flood_then(loop, channel, word)
        finally:
            await loop.close()


@pytest.mark.redis
@pytest.mark.parametrize(("channel", "word"), [("webchat", "Stop"), ("sms", "yima")])
async def test_opt_out_passes_the_rate_limit_through_the_redis_gate(
    tmp_path: Path, channel: str, word: str
) -> None:
    async with sqlite_database(tmp_path) as url, redis_client() as (_client, prefix):
        loop = turn_loop_on(
            url, redis_url_or_skip(), rate_per_second=0.01, rate_burst=5, redis_prefix=prefix
        )
        try:
            assert loop.queues_replies
            await _flood_then(loop, channel, word)
        finally:
            await loop.close()


def test_only_whole_opt_words_pass() -> None:
    assert bypasses_rate_limit("STOP", channel="webchat")
    assert bypasses_rate_limit("  Unsubscribe ", channel="telegram")
    assert bypasses_rate_limit("cancel", channel="sms")
    assert not bypasses_rate_limit("cancel", channel="webchat")  # CANCEL cancels the form there
    assert not bypasses_rate_limit("stop the water", channel="sms")
    assert not bypasses_rate_limit("yes", channel="sms")  # an answer, not only an opt-in
    assert not bypasses_rate_limit("help", channel="sms")  # a flood of HELP stays limited
    assert not bypasses_rate_limit("stop" * 1000, channel="sms")
