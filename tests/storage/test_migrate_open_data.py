"""0016_demo_and_open_data on SQLite and PostgreSQL: existing reports keep their status changes and
tracking (SQLite's batch mode would copy and drop ``submissions``, and the drop cascades), are
not demo data, and the revision goes down again."""

from __future__ import annotations

from sqlalchemy import text

from storage.session import create_engine
from tests.storage.test_migrate_staff import _alembic, empty_url

__all__ = ["empty_url"]

_REPORT = (
    "INSERT INTO submissions (id, reference, channel, form_id, form_version, service_code, "
    "locale, answers, status, service_request_id, created_at, updated_at) VALUES (1, "
    "'CT-AAAAAA', 'sms', 'pothole', 1, 'ROADS-POTHOLE', 'en', '{}', 'filed', '7', "
    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
)
_CHANGE = (
    "INSERT INTO request_status_changes (submission_id, service_request_id, status, "
    "observed_at, notify_state) VALUES (1, '7', 'open', CURRENT_TIMESTAMP, 'acknowledged')"
)
_TRACKED = (
    "INSERT INTO tracked_requests (submission_id, service_request_id, status, "
    "acknowledged_at, last_polled_at) VALUES (1, '7', 'open', CURRENT_TIMESTAMP, "
    "CURRENT_TIMESTAMP)"
)


async def test_reports_keep_their_history_and_are_not_demo(empty_url: str) -> None:
    await _alembic(empty_url, "upgrade", "0012_area_subscriptions")
    engine = create_engine(empty_url)
    try:
        async with engine.begin() as connection:
            for statement in (_REPORT, _CHANGE, _TRACKED):
                await connection.execute(text(statement))
        await _alembic(empty_url, "upgrade", "head")
        async with engine.connect() as connection:
            demo = (await connection.execute(text("SELECT demo FROM submissions"))).scalars()
            assert [bool(d) for d in demo] == [False]
            for table in ("request_status_changes", "tracked_requests"):
                count = await connection.scalar(text(f"SELECT count(*) FROM {table}"))
                assert count == 1, table
        await _alembic(empty_url, "downgrade", "0012_area_subscriptions")
        async with engine.connect() as connection:
            count = await connection.scalar(text("SELECT count(*) FROM request_status_changes"))
            assert count == 1
    finally:
        await engine.dispose()
