"""0027_partitioned_deliveries: on PostgreSQL broadcast deliveries become partitioned by month
with every row kept, each in the month its broadcast's fan-out began, new rows go on from the
old ids, a second row for the same broadcast and resident is still refused, and the downgrade
brings back one plain table with the same rows; on SQLite the table gains the column and the
wider unique, and the same holds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from storage.partitions import month_partition, month_start, months, next_month
from storage.session import create_engine
from tests.storage.databases import relkind
from tests.storage.test_migrate_staff import _alembic, empty_url

__all__ = ["empty_url"]

REVISION = "0027_partitioned_deliveries"
BEFORE = "0026_partitioned_logs"
# Two broadcasts, fanned out in two months long ago; a third never fanned out.
CREATED = (
    datetime(2025, 1, 31, 23, 59, 59, tzinfo=UTC),
    datetime(2025, 2, 1, tzinfo=UTC),
    datetime(2026, 6, 15, 12, tzinfo=UTC),
)


async def _seed(connection: object) -> None:
    execute = connection.execute  # type: ignore[attr-defined]
    await execute(
        text(
            "INSERT INTO staff_accounts (id, email, name, roles, languages, active, "
            "password_hash, must_change_password, created_at, updated_at) VALUES (1, "
            "'a@city.example', 'A', '[]', '[]', true, 'x', false, :at, :at)"
        ),
        {"at": CREATED[0]},
    )
    for number, created in enumerate(CREATED, start=1):
        await execute(
            text(
                "INSERT INTO broadcasts (id, author_id, title, texts, target, topic, channels, "
                "urgency, state, fanned_out_to, recipients, created_at, updated_at) VALUES "
                "(:id, 1, 't', '{\"en\": \"x\"}', '{}', 'water', '[\"sms\"]', 'routine', "
                ":state, :fanned, 0, :at, :at)"
            ),
            {
                "id": number,
                "at": created,
                "state": "sent" if number < 3 else "draft",
                "fanned": 10 if number < 3 else 0,
            },
        )
    for broadcast_id, resident_id in ((1, 1), (1, 2), (2, 1)):
        await execute(
            text(
                "INSERT INTO broadcast_deliveries (broadcast_id, resident_id, channel, locale, "
                "ward, state, resends, updated_at) VALUES (:b, :r, 'sms', 'en', '9', 'sent', 0, "
                ":at)"
            ),
            {"b": broadcast_id, "r": resident_id, "at": CREATED[2]},
        )


async def test_deliveries_survive_partitioning_and_going_back(empty_url: str) -> None:
    await _alembic(empty_url, "upgrade", BEFORE)
    engine = create_engine(empty_url)
    postgres = engine.dialect.name == "postgresql"
    try:
        async with engine.begin() as connection:
            await _seed(connection)
        await _alembic(empty_url, "upgrade", REVISION)
        async with engine.begin() as connection:
            rows = (
                await connection.execute(
                    text(
                        "SELECT id, broadcast_id, resident_id, created_at "
                        "FROM broadcast_deliveries ORDER BY id"
                    )
                )
            ).all()
            assert [(r[0], r[1], r[2]) for r in rows] == [(1, 1, 1), (2, 1, 2), (3, 2, 1)]
            # Each row took its broadcast's time, which became the broadcast's deliveries_at.
            if postgres:
                assert [r[3] for r in rows] == [CREATED[0], CREATED[0], CREATED[1]]
            at = (
                await connection.execute(text("SELECT deliveries_at FROM broadcasts ORDER BY id"))
            ).all()
            assert [a[0] is not None for a in at] == [True, True, False]
            new_id = await connection.scalar(
                text(
                    "INSERT INTO broadcast_deliveries (broadcast_id, resident_id, channel, "
                    "locale, state, resends, updated_at, created_at) VALUES (2, 2, 'sms', 'en', "
                    "'queued', 0, :at, :created) RETURNING id"
                ),
                {"at": CREATED[2], "created": CREATED[1]},
            )
            assert new_id == 4
            if postgres:
                assert await relkind(connection, "broadcast_deliveries") == "p"
                ahead = month_start(datetime.now(UTC))
                for _ in range(3):
                    ahead = next_month(ahead)
                expected = {
                    month_partition("broadcast_deliveries", m)
                    for m in months(datetime(2025, 1, 1, tzinfo=UTC).date(), ahead)
                }
                made = set(
                    await connection.scalars(
                        text(
                            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = "
                            "i.inhrelid WHERE i.inhparent = 'broadcast_deliveries'::regclass"
                        )
                    )
                )
                assert made == expected | {"broadcast_deliveries_default"}
                january = await connection.scalar(
                    text("SELECT count(*) FROM broadcast_deliveries_2025_01")
                )
                february = await connection.scalar(
                    text("SELECT count(*) FROM broadcast_deliveries_2025_02")
                )
                assert (january, february) == (2, 2)
        # The same broadcast and resident a second time: refused, in every partition.
        with pytest.raises(IntegrityError):
            async with engine.begin() as connection:
                await connection.execute(
                    text(
                        "INSERT INTO broadcast_deliveries (broadcast_id, resident_id, channel, "
                        "locale, state, resends, updated_at, created_at) VALUES (1, 2, 'sms', "
                        "'en', 'queued', 0, :at, :created)"
                    ),
                    {"at": CREATED[2], "created": CREATED[0]},
                )
        await _alembic(empty_url, "downgrade", BEFORE)
        async with engine.begin() as connection:
            if postgres:
                assert await relkind(connection, "broadcast_deliveries") == "r"
                assert await relkind(connection, "broadcast_deliveries_2025_01") is None
            count = await connection.scalar(text("SELECT count(*) FROM broadcast_deliveries"))
            assert count == 4
            next_id = await connection.scalar(
                text(
                    "INSERT INTO broadcast_deliveries (broadcast_id, resident_id, channel, "
                    "locale, state, resends, updated_at) VALUES (3, 1, 'sms', 'en', 'queued', "
                    "0, :at) RETURNING id"
                ),
                {"at": CREATED[2]},
            )
            # PostgreSQL's sequence spent 5 on the refused duplicate (sequences never roll back).
            assert next_id == (6 if postgres else 5)
        with pytest.raises(IntegrityError):
            async with engine.begin() as connection:
                await connection.execute(
                    text(
                        "INSERT INTO broadcast_deliveries (broadcast_id, resident_id, channel, "
                        "locale, state, resends, updated_at) VALUES (1, 1, 'sms', 'en', "
                        "'queued', 0, :at)"
                    ),
                    {"at": CREATED[2]},
                )
    finally:
        await engine.dispose()
