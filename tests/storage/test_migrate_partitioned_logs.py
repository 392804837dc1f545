"""0026_partitioned_logs: on PostgreSQL the message log becomes partitioned by month with every
row kept (ids, texts, dates), new rows go on from the old ids, and the downgrade brings back one
plain table with the same rows; on SQLite nothing changes."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from storage.partitions import month_partition, month_start, months, next_month
from storage.session import create_engine
from tests.storage.databases import relkind
from tests.storage.test_migrate_staff import _alembic, empty_url

__all__ = ["empty_url"]

REVISION = "0026_partitioned_logs"
BEFORE = "0025_incident_suggestions"
# Rows from three different months, one of them long ago.
DATES = (
    datetime(2025, 1, 31, 23, 59, 59, tzinfo=UTC),
    datetime(2025, 2, 1, tzinfo=UTC),
    datetime(2026, 6, 15, 12, tzinfo=UTC),
)


async def test_rows_survive_partitioning_and_going_back(empty_url: str) -> None:
    await _alembic(empty_url, "upgrade", BEFORE)
    engine = create_engine(empty_url)
    postgres = engine.dialect.name == "postgresql"
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO residents (id, locale, created_at) VALUES (1, 'en', :at)"),
                {"at": DATES[0]},
            )
            for number, created in enumerate(DATES, start=1):
                await connection.execute(
                    text(
                        "INSERT INTO message_log (direction, channel, address, resident_id, "
                        "provider_message_id, kind, text, created_at) VALUES ('in', 'sms', "
                        "'+27831234567', 1, :pid, 'text', :text, :created)"
                    ),
                    {"pid": f"SM{number}", "text": f"message {number}", "created": created},
                )
        await _alembic(empty_url, "upgrade", REVISION)
        async with engine.begin() as connection:
            rows = (
                await connection.execute(
                    text("SELECT id, text, provider_message_id FROM message_log ORDER BY id")
                )
            ).all()
            assert [tuple(r) for r in rows] == [
                (1, "message 1", "SM1"),
                (2, "message 2", "SM2"),
                (3, "message 3", "SM3"),
            ]
            # A new row takes the next id, not one the old rows hold.
            new_id = await connection.scalar(
                text(
                    "INSERT INTO message_log (direction, channel, kind, created_at) "
                    "VALUES ('out', 'sms', 'reply', :at) RETURNING id"
                ),
                {"at": DATES[2]},
            )
            assert new_id == 4
            if postgres:
                assert await relkind(connection, "message_log") == "p"
                now = datetime.now(UTC)
                ahead = month_start(now)
                for _ in range(3):
                    ahead = next_month(ahead)
                expected = {
                    month_partition("message_log", m)
                    for m in months(datetime(2025, 1, 1, tzinfo=UTC).date(), ahead)
                }
                made = set(
                    await connection.scalars(
                        text(
                            "SELECT c.relname FROM pg_inherits i JOIN pg_class c "
                            "ON c.oid = i.inhrelid WHERE i.inhparent = 'message_log'::regclass"
                        )
                    )
                )
                assert made == expected | {"message_log_default"}
                # Each row sits in its month's partition: the bounds are UTC months.
                january = await connection.scalar(text("SELECT count(*) FROM message_log_2025_01"))
                february = await connection.scalar(text("SELECT count(*) FROM message_log_2025_02"))
                assert (january, february) == (1, 1)
                # The resident's foreign key still holds in every partition.
                await connection.execute(text("DELETE FROM residents WHERE id = 1"))
                orphaned = await connection.scalar(
                    text("SELECT count(*) FROM message_log WHERE resident_id IS NULL")
                )
                assert orphaned == 4
        await _alembic(empty_url, "downgrade", BEFORE)
        async with engine.begin() as connection:
            if postgres:
                assert await relkind(connection, "message_log") == "r"
                assert await relkind(connection, "message_log_2025_01") is None
            count = await connection.scalar(text("SELECT count(*) FROM message_log"))
            assert count == 4
            next_id = await connection.scalar(
                text(
                    "INSERT INTO message_log (direction, channel, kind, created_at) "
                    "VALUES ('out', 'sms', 'reply', :at) RETURNING id"
                ),
                {"at": DATES[1]},
            )
            assert next_id == 5
    finally:
        await engine.dispose()
