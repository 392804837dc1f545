"""Monthly partitions of the message log and broadcast deliveries on PostgreSQL: made ahead,
dropped when forgotten.

On PostgreSQL ``message_log`` is partitioned by month on ``created_at`` (native declarative
partitioning, migration ``0026_partitioned_logs``): one partition per calendar month (UTC),
named ``message_log_YYYY_MM``, and a default partition, ``message_log_default``, that catches a
row whose month has no partition yet, so a late housekeeping run never refuses a message. SQLite
has one plain table and nothing here does anything to it. ``broadcast_deliveries`` is partitioned
the same way (migration ``0027_partitioned_deliveries``) on its ``created_at``, which is when its
broadcast's fan-out began (the same for all its rows), so every function here takes the table's name.

The housekeeping worker (``conversations.retention``) calls ``create_months_ahead`` so that the
coming months exist before their first message, and ``drop_months_before`` so that a month the
retention period has wholly passed goes as one ``DROP TABLE`` instead of millions of row
deletes. Creating a month moves whatever the default partition already holds for it (rows
written while the month had no partition) into the new partition before attaching it, which
PostgreSQL would otherwise refuse.

Example::

    async with engine.begin() as connection:
        made = await create_months_ahead(connection, "message_log", utc_now(), months=3)
        gone = await drop_months_before(connection, "message_log", utc_now() - timedelta(days=90))
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

__all__ = [
    "PARTITIONED_TABLES",
    "create_months_ahead",
    "default_partition",
    "drop_months_before",
    "is_partition_name",
    "is_partitioned",
    "month_partition",
    "month_start",
    "months",
    "next_month",
]

# The append-only logs partitioned by month (docs/operations.md says why only these): the
# message log, and broadcast deliveries (a national broadcast writes 12 million rows), whose
# ``created_at`` is when their broadcast's fan-out began, so one broadcast's rows share one.
PARTITIONED_TABLES = ("message_log", "broadcast_deliveries")
_MONTH_NAME = re.compile(r"_(\d{4})_(\d{2})$")


def month_start(moment: datetime | date) -> date:
    """The first day of the month ``moment`` falls in (UTC for a datetime)."""
    if isinstance(moment, datetime):
        moment = moment.astimezone(UTC).date()
    return moment.replace(day=1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def months(first: date, last: date) -> list[date]:
    """Every month from ``first``'s to ``last``'s, both included."""
    found: list[date] = []
    month = month_start(first)
    while month <= last:
        found.append(month)
        month = next_month(month)
    return found


def month_partition(table: str, month: date) -> str:
    return f"{table}_{month.year:04d}_{month.month:02d}"


def default_partition(table: str) -> str:
    return f"{table}_default"


def is_partition_name(name: str) -> bool:
    """True for a partition's name (a month's or the default): not a table of the models, so
    Alembic's comparison of the models with the database leaves it out."""
    for table in PARTITIONED_TABLES:
        if name == default_partition(table):
            return True
        if name.startswith(f"{table}_") and _MONTH_NAME.fullmatch(name[len(table) :]):
            return True
    return False


def _bound(month: date) -> str:
    return f"{month.isoformat()} 00:00:00+00"


async def is_partitioned(connection: AsyncConnection, table: str) -> bool:
    """True on PostgreSQL once the migration made ``table`` a partitioned table."""
    if connection.dialect.name != "postgresql":
        return False
    kind: str | None = await connection.scalar(
        text("SELECT relkind::text FROM pg_class WHERE oid = to_regclass(:table)"), {"table": table}
    )
    return kind == "p"


async def _existing_months(connection: AsyncConnection, table: str) -> dict[date, str]:
    names = await connection.scalars(
        text(
            "SELECT child.relname FROM pg_inherits "
            "JOIN pg_class child ON child.oid = pg_inherits.inhrelid "
            "WHERE pg_inherits.inhparent = to_regclass(:table)"
        ),
        {"table": table},
    )
    found: dict[date, str] = {}
    for name in names:
        match = _MONTH_NAME.search(name)
        if match and name == month_partition(table, date(int(match[1]), int(match[2]), 1)):
            found[date(int(match[1]), int(match[2]), 1)] = name
    return found


async def create_month(connection: AsyncConnection, table: str, month: date) -> None:
    """Make ``month``'s partition, taking over what the default partition holds for it.

    Built beside the table and attached, not ``CREATE TABLE ... PARTITION OF``: that is refused
    while the default partition has rows of the month, and those rows must not be lost.
    """
    name = month_partition(table, month)
    start, end = _bound(month), _bound(next_month(month))
    await connection.execute(
        text(f'CREATE TABLE "{name}" (LIKE "{table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
    )
    await connection.execute(
        text(
            f'WITH moved AS (DELETE FROM "{default_partition(table)}" '
            f"WHERE created_at >= '{start}' AND created_at < '{end}' RETURNING *) "
            f'INSERT INTO "{name}" SELECT * FROM moved'
        )
    )
    await connection.execute(
        text(
            f'ALTER TABLE "{table}" ATTACH PARTITION "{name}" '
            f"FOR VALUES FROM ('{start}') TO ('{end}')"
        )
    )


async def create_months_ahead(
    connection: AsyncConnection, table: str, now: datetime, *, months_ahead: int
) -> list[str]:
    """Make the partitions of this month and the next ``months_ahead``; the names made."""
    if not await is_partitioned(connection, table):
        return []
    # Several workers may run housekeeping at once: they take turns, the second finds it done.
    await connection.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"partitions:{table}"}
    )
    existing = await _existing_months(connection, table)
    this_month = month_start(now)
    wanted = [this_month]
    for _ in range(months_ahead):
        wanted.append(next_month(wanted[-1]))
    made: list[str] = []
    for month in wanted:
        if month not in existing:
            await create_month(connection, table, month)
            made.append(month_partition(table, month))
    return made


async def drop_months_before(
    connection: AsyncConnection, table: str, cutoff: datetime
) -> list[str]:
    """Drop the partitions whose whole month is older than ``cutoff``, and delete the default
    partition's rows older than it; the names dropped. The month ``cutoff`` falls in stays:
    its older rows are the row-by-row retention's (``conversations.retention``)."""
    if not await is_partitioned(connection, table):
        return []
    await connection.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"partitions:{table}"}
    )
    existing = await _existing_months(connection, table)
    keep_from = month_start(cutoff)
    dropped: list[str] = []
    for month, name in sorted(existing.items()):
        if month < keep_from:
            # Detached first: dropping an attached partition locks the parent for longer.
            await connection.execute(text(f'ALTER TABLE "{table}" DETACH PARTITION "{name}"'))
            await connection.execute(text(f'DROP TABLE "{name}"'))
            dropped.append(name)
    await connection.execute(
        text(f'DELETE FROM "{default_partition(table)}" WHERE created_at < :cutoff'),
        {"cutoff": datetime.combine(keep_from, datetime.min.time(), UTC)},
    )
    return dropped
