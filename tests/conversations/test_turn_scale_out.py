"""The turn loop on PostgreSQL + Redis, as several `citybot serve` processes run it."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select

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
