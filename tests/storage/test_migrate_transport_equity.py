"""0024_transport_equity on SQLite and PostgreSQL: reports stored before it stay as they were,
the aggregate answers' table comes with its one-answer-per-question index and the cascade from
its report, and the revision goes down cleanly."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from storage.session import create_engine
from tests.storage.test_migrate_staff import _alembic, empty_url, revision_before

__all__ = ["empty_url"]

REVISION = "0024_transport_equity"


_REPORT = (
    "INSERT INTO submissions (id, reference, form_id, form_version, service_code, locale, "
    "answers, status, created_at, updated_at, demo) VALUES (1, 'CT-B00001', "
    "'transport_reliability', 1, 'TRANSPORT-RELIABILITY', 'en', '{\"problem\": \"late\"}', "
    "'pending', '2026-03-02 09:00:00', '2026-03-02 09:00:00', false)"
)
_ANSWER = (
    "INSERT INTO aggregate_answers (submission_id, form_id, step_id, value, special, "
    "created_at) VALUES (1, 'transport_reliability', 'disability', 'disabled', true, "
    "'2026-03-02 09:01:00')"
)


async def test_the_answers_table_comes_and_goes_and_reports_stay(empty_url: str) -> None:
    await _alembic(empty_url, "upgrade", revision_before(REVISION))
    engine = create_engine(empty_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(_REPORT))
        await _alembic(empty_url, "upgrade", REVISION)
        async with engine.begin() as connection:
            await connection.execute(text(_ANSWER))
        with pytest.raises(IntegrityError):  # one answer per question per report
            async with engine.begin() as connection:
                await connection.execute(text(_ANSWER))
        async with engine.begin() as connection:
            await connection.execute(text("DELETE FROM submissions WHERE id = 1"))
            left = await connection.scalar(text("SELECT count(*) FROM aggregate_answers"))
        assert left == 0  # the answers go with their report
        async with engine.begin() as connection:
            await connection.execute(text(_REPORT))
        await _alembic(empty_url, "downgrade", revision_before(REVISION))
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
            reports = await connection.scalar(text("SELECT count(*) FROM submissions"))
        assert "aggregate_answers" not in tables and reports == 1
    finally:
        await engine.dispose()
