"""Replies: the stream entry format, the in-process sender's bound, and the Redis reply stream
(sent once, acknowledged, taken over from a process that died, never stolen from a live one).

The stream tests use a real Redis, the real SmsChannel (the twilio SDK builds every request) and
a local fake Twilio that records what reaches it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from channels.base import BaseChannel
from channels.twilio_common import TwilioAccount
from channels.twilio_sms import SmsChannel
from channels.types import Button, OutboundMessage
from notifier.message_trace import MessageTrace
from notifier.replies import ReplySender, ReplyStream
from notifier.reply_queue import GROUP, QueuedReply, ReplyQueue, decode, encode
from storage.redis_layout import RedisLayout
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio

# The reply queue's commit Lua as a script of its own (the turn runs it inside its own).
QUEUE_REPLY = ReplyQueue.commit_lua(
    stream="KEYS[1]", order="KEYS[2]", entry="ARGV[1]", ttl="ARGV[2]"
)


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
    entry = encode(reply)
    assert entry is not None
    assert decode(entry) == ("telegram", reply)
    assert decode(entry.decode()) == ("telegram", reply)
    assert encode([]) is None


def test_an_entry_carries_the_trace_of_the_message_it_answers() -> None:
    reply = [OutboundMessage(channel="sms", address="+27831230009", text="hi")]
    trace = MessageTrace("sms", "5f0c2a9b41d7e3c8", 1767225600.25)
    traced = QueuedReply.from_fields("1-0", {b"reply": encode(reply, trace) or b""})
    assert traced.trace == trace and traced.messages == reply
    # An entry queued by an older version (no trace) reads as before.
    assert QueuedReply.from_fields("2-0", {b"reply": encode(reply) or b""}).trace is None
    assert MessageTrace.from_json("sms", {"id": 7}) is None


@dataclass
class Rig:
    redis: Redis
    reply_queue: ReplyQueue
    twilio: FakeTwilio
    channel: BaseChannel

    @property
    def stream(self) -> str:
        return self.reply_queue.stream("sms")

    async def queue(self, *replies: list[OutboundMessage]) -> None:
        for reply in replies:
            entry = encode(reply)
            assert entry is not None
            await self.redis.xadd(self.stream, {"reply": entry})

    async def queue_numbered(self, address: str, text: str) -> None:
        """Queue a reply as a turn's commit does: numbered in the resident's order hash."""
        entry = encode([sms(address, text)])
        assert entry is not None
        keys = self.reply_queue.keys_for("sms", address)
        await self.redis.eval(QUEUE_REPLY, len(keys), *keys, entry, 3600)

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
            self.redis, self.reply_queue, self.channel, sender, consumer=name, **options
        )
        sender.streams = [stream]
        sender.queues_in_turn = True
        return stream, sender


@pytest.fixture
async def rig(redis_url: str) -> AsyncIterator[Rig]:
    redis = Redis.from_url(redis_url)
    queue = ReplyQueue(RedisLayout(prefix=f"citybot-test:{uuid.uuid4().hex[:8]}:"))
    async with FakeTwilio() as twilio:
        account = TwilioAccount(
            ACCOUNT_SID, AUTH_TOKEN, "https://bot.city.example", api_base_url=twilio.url
        )
        channel = SmsChannel(account, "+27211234567", per_second=10_000)
        try:
            yield Rig(redis, queue, twilio, channel)
        finally:
            await channel.close()
            async for key in redis.scan_iter(match=f"{queue.prefix}*"):
                await redis.delete(key)
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


# -- each resident's replies in order across processes ------------------------------------------

DOWN = {"code": 20500, "message": "down", "status": 503}


async def _until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_residents_replies_keep_their_order_across_live_processes(rig: Rig) -> None:
    resident = "+27830000020"
    # The first process takes the first reply and is still retrying it (Twilio is down) when the
    # resident's second reply is queued and taken by another process.
    rig.twilio.fail_next(503, DOWN, times=3)
    first, first_sender = rig.consumer("first")
    first_sender.backoff = (0.3,)
    first.start()
    second, second_sender = rig.consumer("second")
    try:
        await rig.queue_numbered(resident, "first reply")
        await _until(lambda: len(rig.twilio.requests) >= 1)
        await first.stop()  # it takes nothing more, and goes on sending what it has
        second.start()
        await rig.queue_numbered(resident, "second reply")
        await _until(lambda: len(rig.twilio.messages()) >= 2)
    finally:
        await second.close()
        await first.close()
    assert rig.bodies() == [(resident, "first reply"), (resident, "second reply")]
    assert second_sender.pending == 0 and first_sender.pending == 0


async def test_a_held_reply_goes_after_the_one_a_dead_process_took(rig: Rig) -> None:
    resident = "+27830000021"
    await rig.queue_numbered(resident, "first reply")
    # A process takes the first reply and dies before sending it.
    await rig.redis.xgroup_create(rig.stream, GROUP, id="0", mkstream=True)
    await rig.redis.xreadgroup(GROUP, "dead", {rig.stream: ">"}, count=10)
    await rig.queue_numbered(resident, "second reply")
    await rig.send_everything("alive", claim_idle=0.3)
    assert rig.bodies() == [(resident, "first reply"), (resident, "second reply")]


async def test_other_residents_are_not_held_up(rig: Rig) -> None:
    await rig.queue_numbered("+27830000022", "first reply")
    await rig.redis.xgroup_create(rig.stream, GROUP, id="0", mkstream=True)
    await rig.redis.xreadgroup(GROUP, "dead", {rig.stream: ">"}, count=10)
    await rig.queue_numbered("+27830000022", "second reply")
    await rig.queue_numbered("+27830000023", "someone else")
    stream, _ = rig.consumer("alive", claim_idle=5)
    stream.start()
    try:
        await _until(lambda: len(rig.twilio.messages()) >= 1, timeout=2)
        await asyncio.sleep(0.3)
    finally:
        await stream.close()
    # The held reply waits for the dead process's claim; the other resident's goes at once.
    assert rig.bodies() == [("+27830000023", "someone else")]


async def test_a_reply_whose_order_was_lost_is_not_held(rig: Rig) -> None:
    # The resident's order hash expired (or Redis lost it): nothing can be known, so it goes.
    await rig.queue_numbered("+27830000024", "lost first")
    await rig.queue_numbered("+27830000024", "second")
    [(first_id, _), _] = await rig.redis.xrange(rig.stream)
    await rig.redis.xdel(rig.stream, first_id)
    await rig.redis.delete(rig.reply_queue.order_key("sms", "+27830000024"))
    await rig.send_everything("a")
    assert rig.bodies() == [("+27830000024", "second")]


async def test_a_reply_held_too_long_goes_anyway(rig: Rig) -> None:
    # The reply before it vanished (deleted by hand) while its number is still on record.
    await rig.queue_numbered("+27830000025", "vanished")
    await rig.queue_numbered("+27830000025", "held, then sent")
    [(first_id, _), _] = await rig.redis.xrange(rig.stream)
    await rig.redis.xdel(rig.stream, first_id)
    stream, _ = rig.consumer("a")
    stream.max_hold = 0.3
    stream.start()
    try:
        await _until(lambda: len(rig.twilio.messages()) >= 1, timeout=5)
    finally:
        await stream.close()
    assert rig.bodies() == [("+27830000025", "held, then sent")]


async def test_acknowledging_survives_redis_forgetting_its_scripts(rig: Rig) -> None:
    # A restarted Redis knows no scripts: the acknowledgement loads its own and goes again.
    await rig.redis.script_flush()
    await rig.queue_numbered("+27830000026", "first")
    await rig.queue_numbered("+27830000026", "second")
    await rig.send_everything("a")
    assert rig.bodies() == [("+27830000026", "first"), ("+27830000026", "second")]
    assert await rig.redis.xlen(rig.stream) == 0
    assert await rig.redis.hget(rig.reply_queue.order_key("sms", "+27830000026"), "done") == b"2"
