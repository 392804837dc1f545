"""The message log writer on a real SQLite file: batches in order, scrubs, retries, flushes; rows
the database refuses (on SQLite and PostgreSQL) are set aside while the others are written."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from channels.types import InboundMessage
from conversations.message_log import MessageLogWriter, inbound_row, outbound_row
from forms_runtime.effects import Notice
from storage.models import MessageLog, Resident, ResidentAddress
from storage.session import create_engine
from tests.storage.databases import postgres_database, sqlite_database

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


# --- one refused row never holds up the log (issue 10, defect 8) ---------------------------------

# Rows each database really refuses: a Telegram ``"text": {}`` that got through, a lone surrogate
# from a JSON "\ud800", and on PostgreSQL a NUL character and a MessageSid over 128 characters.
_REFUSED_EVERYWHERE: list[dict[str, Any]] = [{"text": {}}, {"text": "odd \ud800"}]
_REFUSED_BY_POSTGRES: list[dict[str, Any]] = [
    {"text": "nul \x00 inside"},
    {"provider_message_id": "SM" + "9" * 200},
]


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_engine(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[AsyncEngine, list[dict[str, Any]]]]:
    """An engine on each database, with the rows that database refuses."""
    if request.param == "sqlite":
        database, refused = sqlite_database(tmp_path), _REFUSED_EVERYWHERE
    else:
        database, refused = postgres_database(), _REFUSED_EVERYWHERE + _REFUSED_BY_POSTGRES
    async with database as url:
        db = create_engine(url)
        try:
            yield db, refused
        finally:
            await db.dispose()


def _rows(numbers: range, refused: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Good rows ``numbers``, with one refused row after each of the first ones."""
    rows = []
    for n in numbers:
        rows.append(inbound_row(_message(n), None, NOW))
        if n < len(refused):
            rows.append({**inbound_row(_message(1000 + n), None, NOW), **refused[n]})
    return rows


async def _texts(engine: AsyncEngine) -> list[str]:
    return [text for _, _, text in await _logged(engine)]


async def test_refused_rows_are_set_aside_and_every_other_row_is_written_in_order(
    any_engine: tuple[AsyncEngine, list[dict[str, Any]]], caplog: pytest.LogCaptureFixture
) -> None:
    engine, refused = any_engine
    writer = MessageLogWriter(engine, interval=60)
    writer.add(*_rows(range(40), refused))
    await writer.flush()  # raised before, and wrote nothing
    assert await _texts(engine) == [f"words {n}" for n in range(40)]
    assert writer.set_aside == len(refused) and writer.backlog == 0
    aside = [r.getMessage() for r in caplog.records if "set aside" in r.getMessage()]
    assert len(aside) == len(refused) and all("sms in message" in m for m in aside)
    assert not any("nul" in m or "odd" in m for m in aside)  # the text is not logged
    await writer.close()


async def test_the_background_writer_goes_on_past_a_refused_row(
    any_engine: tuple[AsyncEngine, list[dict[str, Any]]],
) -> None:
    engine, refused = any_engine
    writer = MessageLogWriter(engine, interval=0.01)
    writer.add(*_rows(range(3), refused[:1]))
    writer.add(inbound_row(_message(3), None, NOW))  # queued after the refused row
    for _ in range(300):
        if writer.backlog == 0 and len(await _texts(engine)) == 4:
            break
        await asyncio.sleep(0.01)
    assert await _texts(engine) == [f"words {n}" for n in range(4)]
    assert writer.set_aside == 1
    await writer.close()


async def test_close_writes_the_rows_queued_behind_a_refused_one(
    any_engine: tuple[AsyncEngine, list[dict[str, Any]]],
) -> None:
    engine, refused = any_engine
    writer = MessageLogWriter(engine, interval=60)  # only close() will write
    writer.add(*_rows(range(1200), refused))  # more than two batches
    await writer.close()
    assert await _texts(engine) == [f"words {n}" for n in range(1200)]
    assert writer.set_aside == len(refused) and writer.dropped == 0


async def test_while_the_database_is_down_nothing_is_set_aside() -> None:
    async def refuse() -> Any:
        raise ConnectionRefusedError("the database is down")

    down = create_async_engine("postgresql+asyncpg://", async_creator=refuse)
    writer = MessageLogWriter(down, interval=60)
    writer.add(*_rows(range(3), _REFUSED_EVERYWHERE))
    with pytest.raises(OSError):
        await writer.flush()
    assert writer.set_aside == 0 and writer.backlog == 5
    await down.dispose()


async def test_an_error_of_no_telling_type_is_blamed_on_the_data_only_if_the_database_answers(
    engine: AsyncEngine,
) -> None:
    """A failure whose type does not say "unreachable" (asyncpg reports some as an
    InterfaceError) sets nothing aside when the database cannot answer a plain query either."""
    down = True

    def fail(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("INSERT INTO message_log"):
            raise InterfaceError(statement, None, Exception("connection lost mid-statement"))
        if down and statement.startswith("SELECT 1"):
            raise OperationalError(statement, None, Exception("connection refused"))

    writer = MessageLogWriter(engine, interval=60)
    writer.add(inbound_row(_message(1), 1, NOW), inbound_row(_message(2), 1, NOW))
    event.listen(engine.sync_engine, "before_cursor_execute", fail)
    with pytest.raises(InterfaceError):
        await writer.flush()
    assert writer.set_aside == 0 and writer.backlog == 2
    down = False  # it answers now: the rows themselves are refused
    await writer.flush()
    assert writer.set_aside == 2 and writer.backlog == 0
    event.remove(engine.sync_engine, "before_cursor_execute", fail)
    await writer.close()
