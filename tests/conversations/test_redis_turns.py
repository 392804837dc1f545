"""The turn loop on PostgreSQL + Redis: two round trips to Redis, no SQL on an ordinary turn,
and the guarantees kept (once, in order, nothing half-written, opt-out across processes)."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.exc import OperationalError

from bot.bootstrap import turn_loop_on
from channels.types import InboundMessage, OutboundMessage
from conversations.dedupe import RedisDedupe
from conversations.keys import ConversationKey
from conversations.locks import LockTimeout, RedisLocks
from conversations.rate_limit import RedisRateLimiter
from conversations.redis_turns import RedisTurnGate
from conversations.state_store import RedisStateStore
from conversations.turn import REDIS_PROFILE_RECHECK, TurnLoop
from forms_runtime.effects import Ask, GeoPoint, Reject, Review
from forms_runtime.sample_answers import sample_answer
from notifier.reply_queue import ReplyQueue, encode
from storage.models import MessageLog, ProcessedMessage, Resident, Submission
from storage.redis_layout import RedisLayout
from tests.conversations.stores import redis_client
from tests.storage.databases import postgres_database, redis_url_or_skip


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def _loops(url: str, prefix: str, n: int = 2) -> list[TurnLoop]:
    return [
        turn_loop_on(url, redis_url_or_skip(), rate_burst=100, redis_prefix=prefix)
        for _ in range(n)
    ]


@pytest.fixture
async def world() -> AsyncIterator[tuple[list[TurnLoop], str]]:
    async with postgres_database() as url, redis_client() as (_client, prefix):
        loops = await _loops(url, prefix)
        try:
            yield loops, prefix
        finally:
            for loop in loops:
                await loop.close()


def _say(address: str, text: str | None = None, **kwargs: Any) -> InboundMessage:
    return InboundMessage("webchat", address, uuid.uuid4().hex, text=text, **kwargs)


async def test_an_answer_in_a_form_runs_no_sql(world: tuple[list[TurnLoop], str]) -> None:
    (loop, _), _ = world
    address = uuid.uuid4().hex
    await loop.handle(_say(address, "pothole"))
    await loop.handle(_say(address, "1"))
    asked = await loop.handle(_say(address, "yes"))  # consent: written to SQL
    assert isinstance(asked.effects[-1], Ask) and asked.effects[-1].step_id == "location"
    # The log rows of the turns so far are written behind them: out of the way first (on a
    # busy machine their batch could otherwise land in the window recorded below).
    await loop.flush()
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = loop.sessionmaker.kw["bind"].sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        answered = await loop.handle(_say(address, "Site C Khayelitsha"))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert answered.effects and statements == []
    await loop.flush()
    async with loop.sessionmaker() as session:
        logged = await session.scalar(
            select(func.count()).select_from(MessageLog).where(MessageLog.address == address)
        )
    assert logged == 8  # four messages in, four replies out, written behind the turns


async def test_opt_out_on_one_process_holds_on_the_other(
    world: tuple[list[TurnLoop], str],
) -> None:
    (first, second), _ = world
    address = uuid.uuid4().hex
    await first.handle(_say(address, "pothole"))
    await first.handle(_say(address, "STOP"))
    assert (await second.handle(_say(address, "pothole"))).effects == []
    assert (await second.handle(_say(address, "menu"))).effects == []
    back = await second.handle(_say(address, "START"))
    assert back.effects
    async with first.sessionmaker() as session:
        assert (await session.scalar(select(Resident.opted_out_at))) is None


async def test_an_opt_out_recorded_outside_a_turn_is_seen_after_the_recheck(
    world: tuple[list[TurnLoop], str],
) -> None:
    (loop, _), _ = world
    clock = Clock()
    loop.clock = clock
    address = uuid.uuid4().hex
    await loop.handle(_say(address, "pothole"))
    async with loop.sessionmaker() as session, session.begin():
        # What Twilio's 21610 handler does: the carrier says the resident texted STOP.
        await session.execute(update(Resident).values(opted_out_at=clock.now))
    clock.now += REDIS_PROFILE_RECHECK
    assert (await loop.handle(_say(address, "menu"))).effects == []


async def test_a_failed_submission_is_not_marked_and_the_retry_stores_it_once(
    world: tuple[list[TurnLoop], str],
) -> None:
    (loop, _), _ = world
    address = uuid.uuid4().hex
    result = await loop.handle(_say(address, "menu"))
    result = await loop.handle(_say(address, option_id="illegal_dumping"))
    rng = random.Random(2)
    for _ in range(40):
        last = result.effects[-1]
        if isinstance(last, Review):
            break
        assert isinstance(last, Ask)
        if last.kind == "location":
            message = _say(address, location=GeoPoint(-34.0363, 18.6776))
        elif any(isinstance(e, Reject) for e in result.effects) and last.optional:
            message = _say(address, "skip")
        else:
            answer = sample_answer(last, rng, typos=False)
            message = _say(address, answer.text, option_id=answer.option_id)
        result = await loop.handle(message)
    key = ConversationKey("webchat", address)
    before = await loop.states.get(key)
    engine = loop.sessionmaker.kw["bind"].sync_engine

    def refuse(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT INTO submission_outbox"):
            raise OperationalError(statement, None, Exception("server closed the connection"))

    send = _say(address, "send")
    event.listen(engine, "before_cursor_execute", refuse)
    try:
        with pytest.raises(OperationalError):
            await loop.handle(send)
    finally:
        event.remove(engine, "before_cursor_execute", refuse)
    assert await loop.states.get(key) == before
    assert not await loop.dedupe.seen("webchat", send.message_id)
    retried = await loop.handle(send)
    assert retried.reference is not None
    assert (await loop.handle(send)).duplicate
    async with loop.sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Submission)) == 1
        marked = await session.scalar(
            select(func.count())
            .select_from(ProcessedMessage)
            .where(ProcessedMessage.provider_message_id == send.message_id)
        )
    assert marked == 1  # a lost Redis marker still cannot store the report twice


async def test_the_gate_waits_for_the_lock_and_releases_on_every_path() -> None:
    async with redis_client() as (client, prefix):

        def gate(wait: float) -> RedisTurnGate:
            return RedisTurnGate(
                RedisStateStore(client, layout=RedisLayout(prefix=prefix)),
                RedisDedupe(client, layout=RedisLayout(prefix=prefix)),
                RedisLocks(client, layout=RedisLayout(prefix=prefix), wait=wait),
                RedisRateLimiter(client, rate=1.0, burst=2, layout=RedisLayout(prefix=prefix)),
            )

        first, second = gate(5.0), gate(0.05)
        key = ConversationKey("sms", "+27831234567")
        ticket = await first.enter(key, "sms", "a")
        assert ticket.runs and ticket.state is None
        with pytest.raises(LockTimeout):
            await second.enter(key, "sms", "b")  # another process holds the conversation
        await first.abandon(ticket)  # failed turn: released, message "a" not processed
        again = await second.enter(key, "sms", "a")
        assert again.runs
        await second.leave(again, {"form": None, "n": 1})
        duplicate = await first.enter(key, "sms", "a")
        assert duplicate.duplicate
        limited = await first.enter(key, "sms", "c")  # the bucket (burst 2) is empty now
        assert not limited.runs and limited.state == {"form": None, "n": 1}
        after = await second.enter(key, "sms", "d")  # no lock was left behind
        assert not after.runs and not after.duplicate
        await first.close()
        await second.close()


async def test_a_turn_that_lost_its_lock_to_a_finished_retry_changes_nothing() -> None:
    """A turn whose lease ran out while a retry of the same message ran and finished on another
    process must not overwrite the state the retry saved, nor queue a second reply."""
    async with redis_client() as (client, prefix):
        queue = ReplyQueue(RedisLayout(prefix=prefix))

        def gate() -> RedisTurnGate:
            return RedisTurnGate(
                RedisStateStore(client, layout=RedisLayout(prefix=prefix)),
                RedisDedupe(client, layout=RedisLayout(prefix=prefix)),
                RedisLocks(client, layout=RedisLayout(prefix=prefix), wait=1.0),
                RedisRateLimiter(client, rate=1.0, burst=5, layout=RedisLayout(prefix=prefix)),
                queue,
            )

        slow, retry = gate(), gate()
        key = ConversationKey("sms", "+27831234567")
        stalled = await slow.enter(key, "sms", "SM1")
        await client.delete(
            RedisLocks(client, layout=RedisLayout(prefix=prefix)).name(key)
        )  # lease ran out
        again = await retry.enter(key, "sms", "SM1")  # the provider's retry, lease gone
        assert again.runs
        await retry.leave(again, {"n": 2}, _reply(key, "from the retry"))
        await slow.leave(stalled, {"n": 1}, _reply(key, "from the stalled turn"))
        state = await RedisStateStore(client, layout=RedisLayout(prefix=prefix)).get(key)
        assert state == {"n": 2}
        assert await client.xlen(queue.stream("sms")) == 1
        await slow.close()
        await retry.close()


def _reply(key: ConversationKey, text: str) -> bytes:
    entry = encode([OutboundMessage(channel=key.channel, address=key.address, text=text)])
    assert entry is not None
    return entry
