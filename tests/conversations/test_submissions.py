"""Reports stored many turns at a time: once per message, with free references, all of a turn's
work or none of it; on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from conversations import submissions
from conversations.submissions import StoreWork, store_many, store_submission
from conversations.turn_context import Write
from forms_runtime.effects import Submit
from storage.models import AuditLog, Resident, Submission, SubmissionOutbox
from storage.session import create_engine
from tests.storage.databases import postgres_database, sqlite_database

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
_audit = insert(cast(Table, AuditLog.__table__))


@pytest.fixture(params=["sqlite", "postgresql"])
async def engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    database = sqlite_database(tmp_path) if request.param == "sqlite" else postgres_database()
    async with database as url:
        db = create_engine(url)
        try:
            yield db
        finally:
            await db.dispose()


def _report(n: int) -> Submit:
    return Submit("pothole", 1, "POTHOLE", "en", {"details": f"hole {n}"}, "Thanks.")


def _work(message_id: str, *reports: Submit, writes: tuple[Write, ...] = ()) -> StoreWork:
    return StoreWork("sms", message_id, None, tuple((r, None) for r in reports), writes, NOW)


def _audit_write(action: str) -> Write:
    return _audit, {"at": NOW, "actor": "system", "action": action, "subject": None, "details": {}}


async def _count(engine: AsyncEngine, model: type[object]) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(model))).scalar_one())


async def test_many_turns_store_their_reports_once_each(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        stored = await store_many(
            connection,
            [
                _work("m1", _report(1), writes=(_audit_write("a"),)),
                _work("m2", _report(2), _report(3)),
            ],
        )
    assert stored[0] is not None and stored[1] is not None
    assert len(stored[0]) == 1 and len(stored[1]) == 2
    references = [*stored[0], *stored[1]]
    assert len(set(references)) == 3 and all(r.startswith("CT-") for r in references)
    async with engine.begin() as connection:
        again = await store_many(
            connection,
            [_work("m2", _report(2), writes=(_audit_write("b"),)), _work("m3", _report(4))],
        )
    # m2 was processed: nothing of it is written again (not its report, not its audit row).
    assert again[0] is None and again[1] is not None
    assert await _count(engine, Submission) == 4
    assert await _count(engine, SubmissionOutbox) == 4
    async with engine.connect() as connection:
        actions = (await connection.execute(select(AuditLog.action))).scalars().all()
        details = (
            await connection.execute(
                select(Submission.answers).where(Submission.reference == stored[1][1])
            )
        ).scalar_one()
    assert actions == ["a"]
    assert details == {"details": "hole 3"}


async def test_a_reference_already_taken_is_drawn_again(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with engine.begin() as connection:
        await connection.execute(insert(Resident), [{"locale": "en", "created_at": NOW}])
        taken = await store_submission(
            connection,
            _report(0),
            None,
            resident_id=None,
            channel="sms",
            now=NOW,
        )
    drawn: Iterator[str] = iter([taken, taken, "CT-AAAAAA", "CT-CCCCCC"])
    monkeypatch.setattr(submissions, "new_reference", lambda: next(drawn))
    async with engine.begin() as connection:
        stored = await store_many(connection, [_work("m1", _report(1)), _work("m2", _report(2))])
    # The first clashed with the stored report, the second with the first: both drawn again.
    assert stored == [["CT-CCCCCC"], ["CT-AAAAAA"]]
    assert await _count(engine, Submission) == 3
