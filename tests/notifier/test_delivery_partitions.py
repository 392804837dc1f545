"""Broadcast deliveries' monthly partitions on a real PostgreSQL: a broadcast's rows all land in
the month its fan-out began (however long ago it was drafted) and each resident gets it once;
a second row for the same broadcast and resident is refused; housekeeping makes the coming months
once; retention drops whole old months, keeping each broadcast's counts; erasure reaches every
partition."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.broadcast import seed
from notifier.broadcast_sending import BroadcastSender, SenderSettings
from notifier.broadcasts import report
from notifier.delivery_retention import PARTITION_MONTHS_AHEAD, DeliveryRetention
from notifier.ports import ResidentMessage
from storage.models import Broadcast, BroadcastDelivery, Resident, StaffAccount
from storage.partitions import create_month, month_partition, month_start, next_month
from storage.resident_data import erase_personal_data
from storage.session import create_engine, create_sessionmaker
from storage.types import utc_now
from tests.storage.databases import partitions_of, postgres_database

TABLE = "broadcast_deliveries"
RETENTION_DAYS = 90


@pytest.fixture
async def database() -> AsyncIterator[tuple[str, async_sessionmaker[AsyncSession]]]:
    async with postgres_database() as url:
        engine = create_engine(url)
        try:
            yield url, create_sessionmaker(engine)
        finally:
            await engine.dispose()


async def _where(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """Rows per partition."""
    async with sessions() as session:
        rows = await session.execute(
            text(f"SELECT tableoid::regclass::text, count(*) FROM {TABLE} GROUP BY 1")
        )
        return {str(name): int(count) for name, count in rows}


def _midnight(month: date) -> datetime:
    return datetime.combine(month, datetime.min.time(), UTC)


async def _broadcast(
    sessions: async_sessionmaker[AsyncSession],
    *,
    created: datetime,
    deliveries_at: datetime | None = None,
    state: str = "sent",
) -> int:
    async with sessions() as session, session.begin():
        author = await session.scalar(select(StaffAccount).limit(1))
        if author is None:
            author = StaffAccount(email="b@city.gov", roles=["broadcaster"], password_hash="-")
            session.add(author)
            await session.flush()
        broadcast = Broadcast(
            author_id=author.id,
            title="water",
            texts={"en": "Water is off."},
            target={"wards": [], "everyone": True},
            topic="water",
            channels=["sms"],
            urgency="emergency",
            state=state,
            created_at=created,
            updated_at=created,
            deliveries_at=deliveries_at,
        )
        session.add(broadcast)
        await session.flush()
        return broadcast.id


async def _deliveries(
    sessions: async_sessionmaker[AsyncSession],
    broadcast_id: int,
    residents: Sequence[int],
    *,
    state: str = "sent",
) -> None:
    async with sessions() as session, session.begin():
        broadcast = await session.get(Broadcast, broadcast_id)
        assert broadcast is not None and broadcast.deliveries_at is not None
        for resident_id in residents:
            session.add(
                BroadcastDelivery(
                    broadcast_id=broadcast_id,
                    resident_id=resident_id,
                    channel="sms",
                    locale="en",
                    ward="9",
                    state=state,
                    created_at=broadcast.deliveries_at,
                )
            )


async def test_a_broadcast_drafted_months_ago_fans_out_into_this_month_once(
    database: tuple[str, async_sessionmaker[AsyncSession]],
) -> None:
    url, sessions = database
    await seed(url, 500, False)
    long_ago = utc_now() - timedelta(days=200)
    broadcast_id = await _broadcast(sessions, created=long_ago, state="scheduled")
    sent: list[int] = []

    async def send(message: ResidentMessage) -> list[str]:
        sent.append(message.resident_id)
        return [f"SM{len(sent)}"]

    # Small ranges: the fan-out takes several transactions, as a city-wide one does.
    sender = BroadcastSender(sessions, send, SenderSettings(fanout_range=97, batches_in_flight=1))
    await sender.run_until_idle()
    async with sessions() as session:
        broadcast = await session.get(Broadcast, broadcast_id)
        assert broadcast is not None
        assert broadcast.state == "sent"
        assert broadcast.deliveries_at is not None
        assert month_start(broadcast.deliveries_at) == month_start(utc_now())
        total = await session.scalar(select(func.count()).select_from(BroadcastDelivery))
    # Every row of it in this month's partition, none in the month it was drafted.
    assert await _where(sessions) == {month_partition(TABLE, month_start(utc_now())): total}
    assert total == broadcast.recipients > 0
    assert len(sent) == len(set(sent))
    async with sessions() as session:
        sent_rows = await session.scalar(
            select(func.count()).where(BroadcastDelivery.state == "sent")
        )
    assert sent_rows == len(sent)
    # Run again: nothing is fanned out or sent a second time.
    await sender.run_until_idle()
    assert len(sent) == sent_rows


async def test_a_second_row_for_the_same_broadcast_and_resident_is_refused(
    database: tuple[str, async_sessionmaker[AsyncSession]],
) -> None:
    _, sessions = database
    now = utc_now()
    broadcast_id = await _broadcast(sessions, created=now, deliveries_at=now)
    await _deliveries(sessions, broadcast_id, [1, 2])
    with pytest.raises(IntegrityError):
        await _deliveries(sessions, broadcast_id, [2])


async def test_housekeeping_makes_the_coming_months_once(
    database: tuple[str, async_sessionmaker[AsyncSession]],
) -> None:
    _, sessions = database
    retention = DeliveryRetention(sessions, retention_days=RETENTION_DAYS)
    async with sessions() as session, session.begin():
        # As if the migration ran long ago: this month's and the next ones' partitions missing.
        for name in await partitions_of(sessions, TABLE):
            if name != f"{TABLE}_default":
                await session.execute(text(f'DROP TABLE "{name}"'))
    # A fan-out meanwhile lands in the default partition, not refused.
    now = utc_now()
    early = await _broadcast(sessions, created=now, deliveries_at=now)
    await _deliveries(sessions, early, [1, 2, 3])
    assert await _where(sessions) == {f"{TABLE}_default": 3}
    made = await retention.prepare_partitions()
    wanted = [month_start(now)]
    for _ in range(PARTITION_MONTHS_AHEAD):
        wanted.append(next_month(wanted[-1]))
    assert made == [month_partition(TABLE, m) for m in wanted]
    # The early rows moved into their month's partition when the month was made.
    assert await _where(sessions) == {month_partition(TABLE, month_start(now)): 3}
    assert await retention.prepare_partitions() == []


async def test_retention_drops_old_months_and_keeps_each_broadcasts_counts(
    database: tuple[str, async_sessionmaker[AsyncSession]],
) -> None:
    _, sessions = database
    now = utc_now()
    cutoff = now - timedelta(days=RETENTION_DAYS)
    old_month = month_start(cutoff - timedelta(days=62))
    cutoff_month = month_start(cutoff)
    async with sessions() as session, session.begin():
        connection = await session.connection()
        await create_month(connection, TABLE, old_month)
        await create_month(connection, TABLE, cutoff_month)
    old = await _broadcast(
        sessions, created=_midnight(old_month), deliveries_at=_midnight(old_month)
    )
    await _deliveries(sessions, old, [1, 2, 3])
    await _deliveries(sessions, old, [4], state="failed")
    # Older than the cutoff, but in the cutoff's month: kept until that month wholly passes.
    partial = await _broadcast(
        sessions, created=_midnight(cutoff_month), deliveries_at=_midnight(cutoff_month)
    )
    await _deliveries(sessions, partial, [1])
    # Between the two, in a month with no partition: the default one, deleted by rows.
    between_at = _midnight(next_month(old_month))
    between = await _broadcast(sessions, created=between_at, deliveries_at=between_at)
    await _deliveries(sessions, between, [5, 6])
    recent = await _broadcast(sessions, created=now, deliveries_at=now)
    await _deliveries(sessions, recent, [1, 2])
    async with sessions() as session:
        before = await session.get(Broadcast, old)
        assert before is not None
        expected = await report(session, before)
    assert expected.totals == {"failed": 1, "sent": 3}

    forgotten = await DeliveryRetention(sessions, retention_days=RETENTION_DAYS).forget_old()

    assert forgotten == {"delivery_partitions": 1, "delivery_rows": 0, "broadcasts_summarised": 2}
    partitions = await partitions_of(sessions, TABLE)
    assert month_partition(TABLE, old_month) not in partitions
    assert month_partition(TABLE, cutoff_month) in partitions
    async with sessions() as session:
        left = {
            b: n
            for b, n in await session.execute(
                select(BroadcastDelivery.broadcast_id, func.count()).group_by(
                    BroadcastDelivery.broadcast_id
                )
            )
        }
        assert left == {partial: 1, recent: 2}
        # The old broadcast's counts are still there, read from the broadcast row.
        dropped = await session.get(Broadcast, old)
        assert dropped is not None and dropped.report_summary is not None
        kept = await report(session, dropped)
        gone = await session.get(Broadcast, between)
        assert gone is not None
        kept_between = await report(session, gone)
    assert (kept.totals, kept.by_ward, kept.recipients) == (
        expected.totals,
        expected.by_ward,
        4,
    )
    assert kept_between.totals == {"sent": 2}
    again = await DeliveryRetention(sessions, retention_days=RETENTION_DAYS).forget_old()
    assert again == {"delivery_partitions": 0, "delivery_rows": 0, "broadcasts_summarised": 0}


async def test_erasure_skips_the_residents_queued_messages_in_every_partition(
    database: tuple[str, async_sessionmaker[AsyncSession]],
) -> None:
    _, sessions = database
    async with sessions() as session, session.begin():
        resident = Resident(locale="en")
        session.add(resident)
        await session.flush()
        resident_id = resident.id
    months = [date(2025, 11, 1), date(2026, 2, 1), month_start(utc_now())]
    async with sessions() as session, session.begin():
        connection = await session.connection()
        for month in months[:2]:
            await create_month(connection, TABLE, month)
    for month in months:
        at = _midnight(month)
        broadcast_id = await _broadcast(sessions, created=at, deliveries_at=at, state="sending")
        # Another resident's queued message in the same broadcast is left alone.
        await _deliveries(sessions, broadcast_id, [resident_id, resident_id + 1000], state="queued")
    assert len(await _where(sessions)) == 3
    async with sessions() as session, session.begin():
        await erase_personal_data(session, resident_id, personal_steps={}, now=utc_now())
    async with sessions() as session:
        states = {
            (r, s, e)
            for r, s, e in await session.execute(
                select(
                    BroadcastDelivery.resident_id, BroadcastDelivery.state, BroadcastDelivery.error
                )
            )
        }
    assert states == {(resident_id, "skipped", "erased"), (resident_id + 1000, "queued", None)}
