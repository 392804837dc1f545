"""The turn loop on PostgreSQL + Redis, as several `citybot serve` processes run it."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import event, func, select

from bot.bootstrap import turn_loop_on
from channels.types import InboundMessage
from conversations.keys import ConversationKey
from storage.models import MessageLog, Submission
from tests.conversations.stores import redis_client
from tests.storage.databases import postgres_database


def _message(address: str, text: str | None = None, **kwargs: object) -> InboundMessage:
    return InboundMessage("webchat", address, uuid.uuid4().hex, text=text, **kwargs)  # type: ignore[arg-type]


async def test_two_processes_share_state_and_process_each_message_once() -> None:
    async with postgres_database() as url, redis_client() as (_client, prefix):
        first = turn_loop_on(url, _redis_url(), rate_burst=100, redis_prefix=prefix)
        second = turn_loop_on(url, _redis_url(), rate_burst=100, redis_prefix=prefix)
        try:
            address = uuid.uuid4().hex
            # The resident starts a report on one process and goes on on the other.
            await first.handle(_message(address, "pothole"))
            offered = await second.handle(_message(address, "1"))
            assert offered.effects[-1].step_id == "consent"  # type: ignore[union-attr]
            state = await first.states.get(ConversationKey("webchat", address))
            assert state is not None and state["pending"]["kind"] == "consent"

            # 20 messages, each delivered to both processes at once (a provider retry).
            other = uuid.uuid4().hex
            messages = [_message(other, f"note {n}") for n in range(20)]
            results = await asyncio.gather(
                *(loop.handle(m) for m in messages for loop in (first, second))
            )
            assert sum(not r.duplicate for r in results) == 20
            # With Redis state the message log is written behind the turns, in batches.
            await first.flush()
            await second.flush()
            async with first.sessionmaker() as session:
                count = await session.execute(
                    select(func.count())
                    .select_from(MessageLog)
                    .where(MessageLog.direction == "in", MessageLog.address == other)
                )
                assert count.scalar_one() == 20
                assert (
                    await session.execute(select(func.count()).select_from(Submission))
                ).scalar_one() == 0
        finally:
            await first.close()
            await second.close()


def _redis_url() -> str:
    from tests.storage.databases import redis_url_or_skip

    return redis_url_or_skip()


async def test_ordinary_answers_on_redis_open_no_transaction_however_many_arrive_at_once() -> None:
    """With the state in Redis an answer to a question needs nothing from the database: the
    once-a-second reads every turn depends on (conversations with a person, held messages,
    open incidents) are shared, not sent again by each turn that finds them stale. Before, 100
    turns arriving together each sent their own read in a transaction of their own."""
    async with postgres_database() as url, redis_client() as (_client, prefix):
        loop = turn_loop_on(
            url, _redis_url(), rate_burst=100, redis_prefix=prefix, hold_over_limit=True
        )
        try:
            addresses = [uuid.uuid4().hex for _ in range(100)]
            # Each resident opens a report and accepts the privacy notice (these write).
            await asyncio.gather(*(loop.handle(_message(a, "pothole")) for a in addresses))
            await asyncio.gather(*(loop.handle(_message(a, "yes")) for a in addresses))
            await loop.flush()
            begun: list[object] = []

            def note(connection: object) -> None:
                begun.append(connection)

            engine = loop.sessionmaker.kw["bind"].sync_engine
            event.listen(engine, "begin", note)
            try:
                # Past every shared read's refresh, so each is due again as the turns arrive.
                await asyncio.sleep(1.1)
                answers = await asyncio.gather(
                    *(loop.handle(_message(a, "Main Road, Gugulethu")) for a in addresses)
                )
            finally:
                event.remove(engine, "begin", note)
            assert all(r.effects and not r.duplicate for r in answers)
            # The shared reads (support tickets, held messages): one each, whatever the load.
            print(f"figure: {len(begun)} transactions for 100 concurrent answers")
            assert len(begun) <= 3
        finally:
            await loop.close()
