"""The audit log's hash chain: sealed rows verify; editing, deleting or reordering one shows."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, cast

import pytest
from sqlalchemy import Table, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from staff import audit
from storage.models import AuditLog
from storage.session import create_engine, create_sessionmaker
from storage.types import utc_now
from tests.storage.databases import postgres_database

TABLE = cast(Table, AuditLog.__table__)


async def _resident_rows(sessions: async_sessionmaker[AsyncSession], count: int) -> None:
    """What a resident's turn writes: a plain insert, no hash, no seal."""
    async with sessions() as session, session.begin():
        await session.execute(
            insert(TABLE),
            [
                {
                    "at": utc_now(),
                    "actor": f"resident:{i}",
                    "action": "opt_out",
                    "subject": f"resident:{i}",
                    "details": {"n": i, "text": "ŉ ✓"},
                }
                for i in range(count)
            ],
        )


async def _staff_action(sessions: async_sessionmaker[AsyncSession], n: int) -> None:
    async with sessions() as session, session.begin():
        await audit.record(
            session,
            actor="staff:1",
            action="account.create",
            target=f"staff:{n}",
            address="10.0.0.5",
            details={"roles": ["agent"]},
        )


async def _rows(sessions: async_sessionmaker[AsyncSession]) -> list[Any]:
    """Sealed rows in chain order, then unsealed ones (NULLs sort differently per database)."""
    async with sessions() as session:
        rows = (await session.execute(select(TABLE).order_by(TABLE.c.id))).all()
    return sorted(rows, key=lambda r: (r.seq is None, r.seq or 0, r.id))


async def test_a_sealed_chain_verifies_and_staff_writes_seal_residents_rows(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _resident_rows(sessions, 3)
    await _staff_action(sessions, 1)
    await _resident_rows(sessions, 2)
    everything = await _rows(sessions)
    # The staff write sealed what was there before it (and itself); the last two wait.
    rows = [r for r in everything if r.seq is not None]
    assert [r.seq for r in rows] == [1, 2, 3, 4]
    assert len(everything) == 6
    assert rows[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    staff_row = next(r for r in rows if r.actor == "staff:1")
    assert (staff_row.address, staff_row.subject) == ("10.0.0.5", "staff:1")

    report = await audit.verify(sessions)
    assert report.broken is None and report.rows == 4
    async with sessions() as session, session.begin():
        assert await audit.seal(session) == 2
    report = await audit.verify(sessions)
    assert report.broken is None and report.rows == 6
    assert report.head == (await _rows(sessions))[-1].hash


async def _sealed(sessions: async_sessionmaker[AsyncSession], count: int) -> list[Any]:
    await _resident_rows(sessions, count)
    async with sessions() as session, session.begin():
        await audit.seal(session)
    return await _rows(sessions)


async def test_editing_a_sealed_row_is_found(sessions: async_sessionmaker[AsyncSession]) -> None:
    rows = await _sealed(sessions, 5)
    async with sessions() as session, session.begin():
        await session.execute(
            update(TABLE).where(TABLE.c.id == rows[2].id).values(action="consent_given")
        )
    report = await audit.verify(sessions)
    assert report.broken is not None
    assert (report.broken.row_id, report.broken.seq) == (rows[2].id, 3)
    assert "changed" in report.broken.reason
    assert report.rows == 2


async def test_editing_details_or_time_is_found(sessions: async_sessionmaker[AsyncSession]) -> None:
    rows = await _sealed(sessions, 3)
    async with sessions() as session, session.begin():
        await session.execute(
            update(TABLE).where(TABLE.c.id == rows[0].id).values(details={"n": 99})
        )
    assert (await audit.verify(sessions)).broken.row_id == rows[0].id  # type: ignore[union-attr]
    async with sessions() as session, session.begin():
        await session.execute(
            update(TABLE).where(TABLE.c.id == rows[0].id).values(details=rows[0].details)
        )
    assert (await audit.verify(sessions)).broken is None
    async with sessions() as session, session.begin():
        await session.execute(update(TABLE).where(TABLE.c.id == rows[1].id).values(at=utc_now()))
    assert (await audit.verify(sessions)).broken.row_id == rows[1].id  # type: ignore[union-attr]


async def test_deleting_a_sealed_row_is_found(sessions: async_sessionmaker[AsyncSession]) -> None:
    rows = await _sealed(sessions, 5)
    async with sessions() as session, session.begin():
        await session.execute(delete(TABLE).where(TABLE.c.id == rows[1].id))
    report = await audit.verify(sessions)
    assert report.broken is not None
    assert report.broken.row_id == rows[2].id
    assert "deleted" in report.broken.reason


async def test_deleting_and_renumbering_is_found(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Closing the gap a deletion left does not help: the next row's link no longer fits."""
    rows = await _sealed(sessions, 4)
    async with sessions() as session, session.begin():
        await session.execute(delete(TABLE).where(TABLE.c.id == rows[1].id))
        for row in rows[2:]:
            await session.execute(update(TABLE).where(TABLE.c.id == row.id).values(seq=row.seq - 1))
    report = await audit.verify(sessions)
    assert report.broken is not None and report.broken.row_id == rows[2].id
    assert "does not follow" in report.broken.reason


async def test_reordering_sealed_rows_is_found(sessions: async_sessionmaker[AsyncSession]) -> None:
    rows = await _sealed(sessions, 4)
    first, second = rows[1], rows[2]
    async with sessions() as session, session.begin():
        # Swap their places (through a free one: seq is unique).
        await session.execute(update(TABLE).where(TABLE.c.id == first.id).values(seq=1000))
        await session.execute(update(TABLE).where(TABLE.c.id == second.id).values(seq=first.seq))
        await session.execute(update(TABLE).where(TABLE.c.id == first.id).values(seq=second.seq))
    report = await audit.verify(sessions)
    assert report.broken is not None and report.broken.row_id == second.id


async def test_swapping_contents_between_rows_is_found(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Moving the hashes along with the content cannot work either: ids and places are hashed."""
    rows = await _sealed(sessions, 3)
    a, b = rows[0], rows[1]
    async with sessions() as session, session.begin():
        for target, source in ((a, b), (b, a)):
            await session.execute(
                update(TABLE)
                .where(TABLE.c.id == target.id)
                .values(actor=source.actor, subject=source.subject, details=source.details)
            )
    report = await audit.verify(sessions)
    assert report.broken is not None and report.broken.row_id == a.id


async def test_forged_hash_on_an_unsealed_row_is_found(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _sealed(sessions, 2)
    await _resident_rows(sessions, 1)
    async with sessions() as session, session.begin():
        await session.execute(update(TABLE).where(TABLE.c.seq.is_(None)).values(hash="f" * 64))
    report = await audit.verify(sessions)
    assert report.broken is not None and "no place" in report.broken.reason


async def test_an_empty_log_verifies(sessions: async_sessionmaker[AsyncSession]) -> None:
    report = await audit.verify(sessions)
    assert (report.rows, report.head, report.broken) == (0, audit.GENESIS, None)


@pytest.mark.postgres
async def test_concurrent_writers_on_postgresql_give_one_valid_chain() -> None:
    """Many staff writers and resident turns at once, each on its own connection: every row
    ends up in one unbroken chain, no place taken twice, none skipped."""
    async with postgres_database() as url:
        engines = [create_engine(url, pool_size=2, max_overflow=0) for _ in range(4)]
        try:
            makers = [create_sessionmaker(engine) for engine in engines]
            writers = [
                _staff_action(makers[i % 4], i) if i % 3 else _resident_rows(makers[i % 4], 3)
                for i in range(60)
            ]
            await asyncio.gather(*writers)
            async with makers[0]() as session, session.begin():
                await audit.seal(session)
            report = await audit.verify(makers[0])
            async with makers[0]() as session:
                total = await session.scalar(select(func.count()).select_from(TABLE))
                unsealed = await session.scalar(
                    select(func.count()).select_from(TABLE).where(TABLE.c.seq.is_(None))
                )
            assert report.broken is None
            assert unsealed == 0
            assert report.rows == total == 40 + 20 * 3
        finally:
            for engine in engines:
                await engine.dispose()


async def test_sealing_in_limited_steps_makes_the_same_chain(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await _resident_rows(sessions, 7)
    counts = []
    for _ in range(4):
        async with sessions() as session, session.begin():
            counts.append(await audit.seal(session, limit=3))
    assert counts == [3, 3, 1, 0]
    report = await audit.verify(sessions)
    assert report.broken is None and report.rows == 7
