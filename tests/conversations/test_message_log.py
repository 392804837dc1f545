"""The message log writer on a real SQLite file: batches in order, scrubs, retries, flushes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from channels.types import InboundMessage
from conversations.message_log import MessageLogWriter, inbound_row, outbound_row
from forms_runtime.effects import Notice
from storage.models import MessageLog, Resident, ResidentAddress
from storage.session import create_engine
from tests.storage.databases import sqlite_database

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    async with sqlite_database(tmp_path) as url:
        db = create_engine(url)
        async with db.begin() as connection:
            for resident_id in (1, 2):
                await connection.execute(insert(Resident).values(id=resident_id, locale="en"))
            await connection.execute(
                insert(ResidentAddress).values(resident_id=1, channel="sms", address="+2783")
            )
        yield db
        await db.dispose()


def _message(n: int, address: str = "+2783") -> InboundMessage:
    return InboundMessage("sms", address, f"m{n}", text=f"words {n}")


async def _logged(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(MessageLog.resident_id, MessageLog.direction, MessageLog.text).order_by(
                MessageLog.id
            )
        )
        return [tuple(r) for r in rows]


async def test_rows_are_written_in_queue_order_and_close_flushes(engine: AsyncEngine) -> None:
    writer = MessageLogWriter(engine, interval=60)  # only close() will write
    for n in range(3):
        writer.add(
            inbound_row(_message(n), 1, NOW),
            outbound_row(_message(n), 1, [Notice(f"reply {n}")], NOW),
        )
    assert await _logged(engine) == []
    await writer.close()
    assert await _logged(engine) == [
        (1, d, t) for n in range(3) for d, t in (("in", f"words {n}"), ("out", f"reply {n}"))
    ]


async def test_the_background_task_writes_within_the_interval(engine: AsyncEngine) -> None:
    writer = MessageLogWriter(engine, interval=0.02)
    writer.add(inbound_row(_message(1), 1, NOW))
    for _ in range(100):
        if await _logged(engine):
            break
        await asyncio.sleep(0.01)
    assert await _logged(engine) == [(1, "in", "words 1")]
    await writer.close()


async def test_a_scrub_clears_rows_queued_before_it_and_only_that_residents(
    engine: AsyncEngine,
) -> None:
    writer = MessageLogWriter(engine, interval=60)
    writer.add(inbound_row(_message(1), 1, NOW))
    await writer.flush()  # one row already in the table, one still queued
    writer.add(inbound_row(_message(2), 1, NOW), inbound_row(_message(3, "+2784"), 2, NOW))
    writer.scrub(1)
    await writer.close()
    assert await _logged(engine) == [(1, "in", None), (1, "in", None), (2, "in", "words 3")]


async def test_rows_wait_while_the_database_refuses_and_are_written_after(
    engine: AsyncEngine,
) -> None:
    def refuse(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT INTO message_log"):
            raise OperationalError(statement, None, Exception("disk I/O error"))

    writer = MessageLogWriter(engine, interval=60)
    writer.add(inbound_row(_message(1), 1, NOW), inbound_row(_message(2), 1, NOW))
    event.listen(engine.sync_engine, "before_cursor_execute", refuse)
    with pytest.raises(OperationalError):
        await writer.flush()
    assert len(writer) == 2 and await _logged(engine) == []
    event.remove(engine.sync_engine, "before_cursor_execute", refuse)
    await writer.close()
    assert [text for _, _, text in await _logged(engine)] == ["words 1", "words 2"]


async def test_touch_sets_last_inbound_at(engine: AsyncEngine) -> None:
    writer = MessageLogWriter(engine, interval=60)
    writer.touch("sms", "+2783", NOW + timedelta(minutes=7))
    await writer.close()
    async with engine.connect() as connection:
        seen = await connection.scalar(select(ResidentAddress.last_inbound_at))
    assert seen == NOW + timedelta(minutes=7)


async def test_past_the_limit_the_oldest_rows_are_dropped_and_counted(
    engine: AsyncEngine,
) -> None:
    writer = MessageLogWriter(engine, interval=60, max_pending=2)
    writer.add(*(inbound_row(_message(n), 1, NOW) for n in range(3)))
    assert writer.dropped == 1
    await writer.close()
    assert [text for _, _, text in await _logged(engine)] == ["words 1", "words 2"]
