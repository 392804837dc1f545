"""Group commit: many turns' small SQL work in one transaction, each caller told once committed;
a bad item fails alone; first contacts found or created many at a time, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import Table, func, insert, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from conversations.residents import FirstContact, find_or_create_many
from storage.models import AuditLog, Resident, ResidentAddress
from storage.session import create_engine
from storage.sql_batch import BatchClosed, SqlBatcher
from tests.storage.databases import postgres_database, sqlite_database

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_audit = cast(Table, AuditLog.__table__)


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    database = sqlite_database(tmp_path) if request.param == "sqlite" else postgres_database()
    async with database as url:
        db = create_engine(url)
        try:
            yield db
        finally:
            await db.dispose()


async def _audit_rows(connection: AsyncConnection, actions: list[str]) -> list[str]:
    rows: list[dict[str, Any]] = [
        {"at": NOW, "actor": "system", "action": a, "subject": None, "details": {}} for a in actions
    ]
    await connection.execute(insert(_audit), rows)
    return [f"stored {a}" for a in actions]


async def _count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(table))).scalar_one())


async def test_concurrent_items_share_transactions_and_each_gets_its_result(
    engine: AsyncEngine,
) -> None:
    batcher: SqlBatcher[str, str] = SqlBatcher(
        engine, lambda c, items: _audit_rows(c, items), name="audit"
    )
    results = await asyncio.gather(*(batcher.submit(f"a{i}") for i in range(100)))
    assert results == [f"stored a{i}" for i in range(100)]
    assert await _count(engine, AuditLog) == 100  # committed before the callers were told
    assert batcher.batches < 50
    assert await batcher.submit("alone") == "stored alone"
    await batcher.close()
    with pytest.raises(BatchClosed):
        await batcher.submit("late")


async def test_a_failing_item_fails_alone_and_the_others_commit(engine: AsyncEngine) -> None:
    async def run(connection: AsyncConnection, items: list[str]) -> list[str]:
        if "bad" in items:
            # Breaks the transaction (a NOT NULL column left out), as a constraint would.
            await connection.execute(insert(_audit), [{"at": NOW, "action": "x"}])
        return await _audit_rows(connection, items)

    batcher: SqlBatcher[str, str] = SqlBatcher(engine, run, name="audit")
    results = await asyncio.gather(
        *(batcher.submit(item) for item in ["a", "b", "bad", "c"]), return_exceptions=True
    )
    assert results[:2] == ["stored a", "stored b"] and results[3] == "stored c"
    assert isinstance(results[2], IntegrityError)
    assert await _count(engine, AuditLog) == 3
    await batcher.close()


async def test_first_contacts_are_found_or_created_many_at_a_time(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        first = await find_or_create_many(
            connection,
            [
                FirstContact("sms", "+27831234567", "zu", NOW),
                FirstContact("webchat", "s1", "en", NOW),
            ],
        )
    assert [created for _, created in first] == [True, True]
    assert [p.locale for p, _ in first] == ["zu", "en"]
    assert first[0][0].id != first[1][0].id
    async with engine.begin() as connection:
        again = await find_or_create_many(
            connection,
            [
                FirstContact("webchat", "s1", "af", NOW),
                FirstContact("sms", "+27830000000", "af", NOW),
                FirstContact("sms", "+27831234567", "en", NOW),
            ],
        )
    found_s1, new, found_sms = again
    assert found_s1 == (first[1][0], False) and found_sms == (first[0][0], False)
    assert new[1] and new[0].locale == "af" and new[0].checked_at == NOW
    assert await _count(engine, Resident) == 3
    assert await _count(engine, ResidentAddress) == 3


async def test_an_unreachable_database_fails_the_whole_batch_at_once() -> None:
    attempts = 0

    async def refuse() -> Any:
        nonlocal attempts
        attempts += 1
        raise ConnectionRefusedError("the database is down")

    down = create_async_engine("postgresql+asyncpg://", async_creator=refuse)
    batcher: SqlBatcher[str, str] = SqlBatcher(
        down, lambda c, items: _audit_rows(c, items), name="audit"
    )
    results = await asyncio.gather(
        *(batcher.submit(f"a{i}") for i in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, OSError | DBAPIError) for r in results), results
    assert attempts <= 2  # one per batch, never once per item
    await batcher.close()
    await down.dispose()
