"""0025_incident_suggestions on SQLite and PostgreSQL: the early-warning tables come with the
reports behind a suggestion linked to real submissions, and the revision goes down cleanly."""

from __future__ import annotations

from sqlalchemy import inspect, text

from storage.session import create_engine
from tests.storage.test_migrate_staff import _alembic, empty_url, revision_before

__all__ = ["empty_url"]

REVISION = "0025_incident_suggestions"
TABLES = {
    "burst_counters",
    "burst_detector_state",
    "incident_suggestions",
    "incident_suggestion_reports",
}


async def test_suggestion_tables_come_and_go(empty_url: str) -> None:
    await _alembic(empty_url, "upgrade", revision_before(REVISION))
    engine = create_engine(empty_url)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert not TABLES & tables
        await _alembic(empty_url, "upgrade", REVISION)
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO submissions (id, reference, form_id, form_version, service_code, "
                    "locale, answers, status, created_at, updated_at, demo) VALUES (1, 'CT-AAAAAA', "
                    "'no_water', 1, 'WATER', 'en', '{}', 'pending', '2026-03-02 09:00:00', "
                    "'2026-03-02 09:00:00', false)"
                )
            )
            await connection.execute(
                text(
                    "INSERT INTO incident_suggestions (id, serial, service, area, wards, status, "
                    "window_count, expected, p_value, report_count, first_report_at, "
                    "latest_report_at, created_at, updated_at) VALUES (1, 7, 'no_water', "
                    "'ward:9', '[\"9\"]', 'suggested', 5, 0.4, 1e-9, 1, '2026-03-02 09:00:00', "
                    "'2026-03-02 09:00:00', '2026-03-02 09:01:00', '2026-03-02 09:01:00')"
                )
            )
            await connection.execute(text("INSERT INTO incident_suggestion_reports VALUES (1, 1)"))
            await connection.execute(
                text(
                    "INSERT INTO burst_counters (key, state, updated_at) VALUES "
                    "('no_water|ward:9', '{\"level\": 1.0}', '2026-03-02 09:01:00')"
                )
            )
        async with engine.connect() as connection:
            linked = await connection.scalar(
                text("SELECT count(*) FROM incident_suggestion_reports")
            )
        assert linked == 1
        await _alembic(empty_url, "downgrade", revision_before(REVISION))
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert not TABLES & tables
    finally:
        await engine.dispose()
