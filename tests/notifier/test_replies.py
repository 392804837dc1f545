"""Replies: the stream entry format, the in-process sender's bound, and the Redis reply stream
(sent once, acknowledged, taken over from a process that died, never stolen from a live one).

The stream tests use a real Redis, the real SmsChannel (the twilio SDK builds every request) and
a local fake Twilio that records what reaches it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from channels.base import BaseChannel
from channels.twilio_common import TwilioAccount
from channels.twilio_sms import SmsChannel
from channels.types import Button, OutboundMessage
from notifier.replies import GROUP, ReplySender, ReplyStream, decode_reply, encode_reply
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio


def sms(address: str, text: str) -> OutboundMessage:
    return OutboundMessage(channel="sms", address=address, text=text)


def test_an_entry_keeps_every_field_of_every_message() -> None:
    reply = [
        OutboundMessage(
            channel="telegram",
            address="123",
            text="Kuphi? — “quotes” and emoji 🚧",
            buttons=(Button("1", "Yebo"), Button("loc", "Send my location", "location")),
        ),
        OutboundMessage(
            channel="telegram",
            address="123",
            text="second",
            purpose="status_update",
            template_variables={"1": "CT-7KQ4XM"},
        ),
    ]
    entry = encode_reply(reply)
    assert entry is not None
    assert decode_reply(entry) == ("telegram", reply)
    assert decode_reply(entry.decode()) == ("telegram", reply)
    assert encode_reply([]) is None


@dataclass
class Rig:
    redis: Redis
    prefix: str
    twilio: FakeTwilio
    channel: BaseChannel

    @property
    def stream(self) -> str:
        return f"{self.prefix}:sms"

    async def queue(self, *replies: list[OutboundMessage]) -> None:
        for reply in replies:
            entry = encode_reply(reply)
            assert entry is not None
            await self.redis.xadd(self.stream, {"reply": entry})

    def bodies(self) -> list[tuple[str, str]]:
        return [(m.form["To"], m.form["Body"]) for m in self.twilio.messages()]

    async def send_everything(self, name: str, **options: float) -> None:
        """Run a consumer until every queued reply is sent and acknowledged."""
        stream, sender = self.consumer(name, **options)
        stream.start()
        try:
            assert await sender.drain(10)
        finally:
            await stream.close()

    def consumer(self, name: str, **options: float) -> tuple[ReplyStream, ReplySender]:
        sender = ReplySender(backoff=(0.05,))
        stream = ReplyStream(
            self.redis, self.prefix, self.channel, sender, consumer=name, **options
        )
        sender.streams = [stream]
        sender.queues_in_turn = True
        return stream, sender


@pytest.fixture
async def rig(redis_url: str) -> AsyncIterator[Rig]:
    redis = Redis.from_url(redis_url)
    prefix = f"citybot-test:{uuid.uuid4().hex[:8]}:replies"
    async with FakeTwilio() as twilio:
        account = TwilioAccount(
            ACCOUNT_SID, AUTH_TOKEN, "https://bot.city.example", api_base_url=twilio.url
        )
        channel = SmsChannel(account, "+27211234567", per_second=10_000)
        try:
            yield Rig(redis, prefix, twilio, channel)
        finally:
            await channel.close()
            await redis.delete(f"{prefix}:sms")
            await redis.aclose()


async def test_queued_replies_are_sent_in_order_once_then_deleted(rig: Rig) -> None:
    await rig.queue(
        [sms("+27830000001", "one a"), sms("+27830000001", "one b")],
        [sms("+27830000002", "two")],
        [sms("+27830000001", "one c")],
    )
    await rig.send_everything("a")
    bodies = rig.bodies()
    assert sorted(bodies) == sorted(
        [
            ("+27830000001", "one a"),
            ("+27830000001", "one b"),
            ("+27830000002", "two"),
            ("+27830000001", "one c"),
        ]
    )
    assert [b for to, b in bodies if to == "+27830000001"] == ["one a", "one b", "one c"]
    assert await rig.redis.xlen(rig.stream) == 0
    [group] = await rig.redis.xinfo_groups(rig.stream)
    assert group["pending"] == 0


async def test_a_provider_outage_keeps_the_reply_until_it_is_sent(rig: Rig) -> None:
    rig.twilio.fail_next(503, {"code": 20500, "message": "down", "status": 503}, times=3)
    await rig.queue([sms("+27830000003", "after the outage")])
    await rig.send_everything("a")
    assert rig.bodies() == [("+27830000003", "after the outage")]


async def test_replies_a_dead_process_took_are_sent_by_another_once(rig: Rig) -> None:
    await rig.queue([sms("+27830000004", "taken by the dead")], [sms("+27830000005", "also")])
    # A process takes both entries, then dies before sending (nothing acknowledged).
    await rig.redis.xgroup_create(rig.stream, GROUP, id="0", mkstream=True)
    taken = await rig.redis.xreadgroup(GROUP, "dead", {rig.stream: ">"}, count=10)
    assert len(taken[0][1]) == 2
    await rig.send_everything("alive", claim_idle=0.3)
    assert sorted(rig.bodies()) == [
        ("+27830000004", "taken by the dead"),
        ("+27830000005", "also"),
    ]


async def test_a_live_process_keeps_its_replies_however_long_they_take(rig: Rig) -> None:
    # The provider is down for longer than the claim time: the first process retries the whole
    # while; a second process must not take the reply over and send it too.
    rig.twilio.fail_next(503, {"code": 20500, "message": "down", "status": 503}, times=12)
    await rig.queue([sms("+27830000006", "exactly once")])
    first, first_sender = rig.consumer("first", claim_idle=0.4)
    first_sender.backoff = (0.1,)
    first_sender.attempts = 20
    first.start()
    await asyncio.sleep(0.2)  # the first has taken it
    second, second_sender = rig.consumer("second", claim_idle=0.4)
    second.start()
    try:
        assert await first_sender.drain(15)
        await asyncio.sleep(0.5)  # a claim cycle of the second after the send
    finally:
        await second.close()
        await first.close()
    assert rig.bodies() == [("+27830000006", "exactly once")]
    assert second_sender.pending == 0


async def test_an_unreadable_entry_is_dropped_and_does_not_block_the_rest(rig: Rig) -> None:
    await rig.redis.xadd(rig.stream, {"reply": "{not json"})
    await rig.redis.xadd(rig.stream, {"reply": '{"channel":"fax","address":"1","messages":[]}'})
    await rig.queue([OutboundMessage(channel="telegram", address="5", text="not on this stream")])
    await rig.queue([sms("+27830000007", "still sent")])
    await rig.send_everything("a")
    assert rig.bodies() == [("+27830000007", "still sent")]
    assert await rig.redis.xlen(rig.stream) == 0


async def test_the_sender_makes_callers_wait_when_a_channel_is_full() -> None:
    async with FakeTwilio() as twilio:
        account = TwilioAccount(
            ACCOUNT_SID, AUTH_TOKEN, "https://bot.city.example", api_base_url=twilio.url
        )
        channel = SmsChannel(account, "+27211234567", per_second=10_000)
        sender = ReplySender(max_pending=2)
        try:
            sender.schedule(channel, [sms("+27830000008", "a")])
            sender.schedule(channel, [sms("+27830000009", "b")])
            waiting = asyncio.ensure_future(sender.wait_for_room("sms"))
            await asyncio.sleep(0)
            assert not waiting.done()
            # A channel held back never holds up another.
            await asyncio.wait_for(sender.wait_for_room("telegram"), 0.1)
            assert (sender.room("sms"), sender.room("telegram")) == (0, 2)
            assert await sender.drain(10)
            await asyncio.wait_for(waiting, 1)
        finally:
            await channel.close()
        assert sorted(m.form["Body"] for m in twilio.messages()) == ["a", "b"]


async def test_a_deleted_stream_is_made_again_and_read(rig: Rig) -> None:
    stream, sender = rig.consumer("a")
    stream.start()
    try:
        await rig.queue([sms("+27830000010", "before")])
        assert await sender.drain(10)
        await rig.redis.delete(rig.stream)  # an operator's clean-up, or eviction
        await asyncio.sleep(0.1)
        await rig.queue([sms("+27830000011", "after")])
        await asyncio.sleep(1.5)  # the reader's blocking read ends, fails, and makes the group
        assert await sender.drain(10)
    finally:
        await stream.close()
    assert sorted(rig.bodies()) == [("+27830000010", "before"), ("+27830000011", "after")]
