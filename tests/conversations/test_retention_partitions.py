"""The message log's monthly partitions on a real PostgreSQL: housekeeping makes the coming months,
retention drops whole months past the retention period (and clears texts by rows in the month the
cutoff falls in), erasure reaches every partition, and a provider's retry is still refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.types import InboundMessage
from conversations.dedupe import SqlDedupe
from conversations.locks import InProcessLocks
from conversations.rate_limit import InProcessRateLimiter
from conversations.retention import PARTITION_MONTHS_AHEAD, Retention
from conversations.state_store import SqlStateStore
from conversations.turn import TurnLoop
from forms_runtime.gazetteer import default_gazetteer
from forms_runtime.loader import standard_forms
from storage.models import MessageLog, Resident
from storage.partitions import create_month, month_partition, month_start, next_month
from storage.resident_data import erase_personal_data
from storage.session import create_engine, create_sessionmaker
from storage.types import utc_now
from tests.storage.databases import partitions_of, postgres_database

RETENTION_DAYS = 90


@pytest.fixture
async def sessions() -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    async with postgres_database() as url:
        engine = create_engine(url)
        try:
            yield create_sessionmaker(engine)
        finally:
            await engine.dispose()


async def _where(sessions: async_sessionmaker[AsyncSession], row_id: int) -> str | None:
    """The partition a row is stored in (None: no such row)."""
    async with sessions() as session:
        found = await session.scalar(
            text("SELECT tableoid::regclass::text FROM message_log WHERE id = :id"), {"id": row_id}
        )
        return None if found is None else str(found)


async def _log(
    sessions: async_sessionmaker[AsyncSession], created: datetime, *, resident: int | None = None
) -> int:
    async with sessions() as session, session.begin():
        row = MessageLog(
            direction="in", channel="sms", text="words", resident_id=resident, created_at=created
        )
        session.add(row)
        await session.flush()
        return row.id


async def test_housekeeping_makes_the_coming_months_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    retention = Retention(sessions, {}, message_retention_days=RETENTION_DAYS)
    async with sessions() as session, session.begin():
        # As if the migration ran long ago: this month's and the next ones' partitions missing.
        for name in await partitions_of(sessions, "message_log"):
            if name != "message_log_default":
                await session.execute(text(f'DROP TABLE "{name}"'))
    # A message written meanwhile lands in the default partition, not refused.
    early = await _log(sessions, utc_now())
    assert await _where(sessions, early) == "message_log_default"
    made = await retention.prepare_partitions()
    month = month_start(utc_now())
    wanted = [month]
    for _ in range(PARTITION_MONTHS_AHEAD):
        wanted.append(next_month(wanted[-1]))
    assert made == [month_partition("message_log", m) for m in wanted]
    # The early message moved into its month's partition when the month was made.
    assert await _where(sessions, early) == month_partition("message_log", month)
    assert await retention.prepare_partitions() == []


async def test_retention_drops_whole_old_months_and_clears_the_partial_one(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = utc_now()
    cutoff = now - timedelta(days=RETENTION_DAYS)
    old_month = month_start(cutoff - timedelta(days=62))
    partial_month = month_start(cutoff)
    old = await _log(sessions, datetime.combine(old_month, datetime.min.time(), UTC))
    # Older than the cutoff but in the cutoff's month: cleared by rows, kept.
    partial = await _log(sessions, datetime.combine(partial_month, datetime.min.time(), UTC))
    assert datetime.combine(partial_month, datetime.min.time(), UTC) < cutoff
    between = await _log(
        sessions, datetime.combine(next_month(old_month), datetime.min.time(), UTC)
    )
    recent = await _log(sessions, now)
    async with sessions() as session, session.begin():
        connection = await session.connection()
        await create_month(connection, "message_log", old_month)
        await create_month(connection, "message_log", partial_month)
    assert await _where(sessions, old) == month_partition("message_log", old_month)
    # ``between``'s month has no partition: it stays in the default one, deleted by rows.
    assert await _where(sessions, between) == "message_log_default"

    purged = await Retention(sessions, {}, message_retention_days=RETENTION_DAYS).purge_expired()

    assert purged["message_partitions"] == 1
    assert purged["message_texts"] == 1
    partitions = await partitions_of(sessions, "message_log")
    assert month_partition("message_log", old_month) not in partitions
    assert month_partition("message_log", partial_month) in partitions
    async with sessions() as session:
        kept = {
            i: t for i, t in (await session.execute(select(MessageLog.id, MessageLog.text))).all()
        }
    assert kept == {partial: None, recent: "words"}
    again = await Retention(sessions, {}, message_retention_days=RETENTION_DAYS).purge_expired()
    assert (again["message_partitions"], again["message_texts"]) == (0, 0)


async def test_erasure_clears_the_residents_messages_in_every_partition(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as session, session.begin():
        resident = Resident(locale="en")
        session.add(resident)
        await session.flush()
        resident_id = resident.id
    months = [date(2025, 11, 1), date(2026, 2, 1), month_start(utc_now())]
    async with sessions() as session, session.begin():
        connection = await session.connection()
        for month in months[:2]:
            await create_month(connection, "message_log", month)
    ids = [
        await _log(sessions, datetime.combine(m, datetime.min.time(), UTC), resident=resident_id)
        for m in months
    ]
    # Another resident's message in the same months is left alone.
    other = await _log(sessions, datetime.combine(months[0], datetime.min.time(), UTC))
    assert len({await _where(sessions, i) for i in ids}) == 3
    async with sessions() as session, session.begin():
        counts = await erase_personal_data(session, resident_id, personal_steps={}, now=utc_now())
    assert counts.messages == 3
    async with sessions() as session:
        texts = {
            i: t for i, t in (await session.execute(select(MessageLog.id, MessageLog.text))).all()
        }
    assert texts == {**dict.fromkeys(ids), other: "words"}


async def test_a_providers_retry_is_still_refused_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The log's primary key is (id, created_at) now, so it could not refuse a duplicate: the
    dedupe store (``processed_messages``) does, and the retry writes no second log row."""
    loop = TurnLoop(
        sessionmaker=sessions,
        states=SqlStateStore(sessions),
        dedupe=SqlDedupe(sessions),
        locks=InProcessLocks(),
        rate_limiter=InProcessRateLimiter(rate=10.0, burst=30),
        forms=standard_forms(),
        gazetteer=default_gazetteer(),
    )
    try:
        message = InboundMessage(
            channel="sms", address="+27831234567", message_id="SM-retried", text="hi"
        )
        first = await loop.handle(message)
        retry = await loop.handle(message)
    finally:
        await loop.close()
    assert not first.duplicate and retry.duplicate
    async with sessions() as session:
        logged = await session.scalar(
            select(text("count(*)"))
            .select_from(MessageLog)
            .where(MessageLog.provider_message_id == "SM-retried")
        )
    assert logged == 1
