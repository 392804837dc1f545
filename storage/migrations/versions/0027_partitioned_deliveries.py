"""partitioned deliveries: broadcast deliveries partitioned by month on PostgreSQL

Broadcasts get ``deliveries_at`` (when their fan-out began; for those fanned out already, their
creation time) and ``report_summary`` (where retention keeps a broadcast's counts before dropping
its month of rows). Every delivery row gets ``created_at``, its broadcast's ``deliveries_at``
(the partition key: all rows of one broadcast share it, so they live in one partition), and the
unique (broadcast, resident) becomes (broadcast, resident, created_at), still one row per
resident and broadcast.

On PostgreSQL the existing ``broadcast_deliveries`` is renamed, a partitioned table takes its
name (``PARTITION BY RANGE (created_at)``, primary key ``(id, created_at)``), partitions are made
for every month that has rows, this month and the next three, plus a default one; the rows are
copied with their broadcast's ``deliveries_at`` and the old table dropped. The id sequence is kept.
On SQLite the table stays one plain table and only gains the column and the wider unique.

The copy runs in the upgrade's one transaction and holds the table for as long as it takes
(a national broadcast is 12 million rows): docs/operations.md says how to plan it.

Revision ID: 0027_partitioned_deliveries
Revises: 0026_partitioned_logs
Create Date: 2026-12-04 23:10:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic import op
from sqlalchemy import text
from sqlalchemy.dialects import postgresql

import storage.types

revision: str = "0027_partitioned_deliveries"
down_revision: str | Sequence[str] | None = "0026_partitioned_logs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Kept here rather than imported: a migration must do tomorrow what it did today.
_MONTHS_AHEAD = 3
_COLUMNS = (
    "id, broadcast_id, resident_id, channel, locale, ward, state, claimed_until, "
    "provider_message_id, error, resends, updated_at"
)
_INDEXES = (
    "CREATE INDEX ix_broadcast_deliveries_due ON broadcast_deliveries (state, broadcast_id, id)",
    "CREATE INDEX ix_broadcast_deliveries_resident_id ON broadcast_deliveries (resident_id)",
)
_DROP_INDEXES = (
    "DROP INDEX ix_broadcast_deliveries_due",
    "DROP INDEX ix_broadcast_deliveries_resident_id",
)
_TABLE = """
CREATE TABLE broadcast_deliveries (
    id INTEGER NOT NULL DEFAULT nextval('broadcast_deliveries_id_seq'),
    broadcast_id INTEGER NOT NULL,
    resident_id INTEGER NOT NULL,
    channel VARCHAR(32) NOT NULL,
    locale VARCHAR(8) NOT NULL,
    ward VARCHAR(32),
    state VARCHAR(16) NOT NULL,
    claimed_until TIMESTAMP WITH TIME ZONE,
    provider_message_id VARCHAR(64),
    error TEXT,
    resends INTEGER NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
    {created_at}CONSTRAINT {primary_key},
    CONSTRAINT {unique}
){partitioned}
"""
_UNIQUE = "uq_broadcast_deliveries_broadcast_id"
_SUMMARY = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _month(moment: datetime) -> date:
    return moment.astimezone(UTC).date().replace(day=1)


def _next(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _set_aside_old() -> None:
    """Rename the current table out of the way, its names freed for the new one; the id
    sequence is unhooked from it so that dropping it keeps the sequence."""
    op.execute("ALTER SEQUENCE broadcast_deliveries_id_seq OWNED BY NONE")
    op.execute("ALTER TABLE broadcast_deliveries RENAME TO broadcast_deliveries_old")
    for statement in _DROP_INDEXES:
        op.execute(statement)
    op.execute(f"ALTER TABLE broadcast_deliveries_old DROP CONSTRAINT {_UNIQUE}")
    op.execute("ALTER TABLE broadcast_deliveries_old DROP CONSTRAINT pk_broadcast_deliveries")


def _finish(copy: str, *, analyse: bool) -> None:
    op.execute(copy)
    op.execute("DROP TABLE broadcast_deliveries_old")
    op.execute("ALTER SEQUENCE broadcast_deliveries_id_seq OWNED BY broadcast_deliveries.id")
    for statement in _INDEXES:
        op.execute(statement)
    if analyse:
        op.execute("ANALYZE broadcast_deliveries")


def _upgrade_postgresql() -> None:
    bind = op.get_bind()
    _set_aside_old()
    op.execute(
        _TABLE.format(
            created_at="created_at TIMESTAMP WITH TIME ZONE NOT NULL,\n    ",
            primary_key="pk_broadcast_deliveries PRIMARY KEY (id, created_at)",
            unique=f"{_UNIQUE} UNIQUE (broadcast_id, resident_id, created_at)",
            partitioned=" PARTITION BY RANGE (created_at)",
        )
    )
    oldest = bind.execute(
        text(
            "SELECT min(broadcasts.deliveries_at) FROM broadcasts WHERE EXISTS (SELECT 1 FROM "
            "broadcast_deliveries_old d WHERE d.broadcast_id = broadcasts.id)"
        )
    ).scalar()
    now = datetime.now(UTC)
    month = _month(oldest if oldest is not None and oldest < now else now)
    last = _month(now)
    for _ in range(_MONTHS_AHEAD):
        last = _next(last)
    while month <= last:
        following = _next(month)
        op.execute(
            f"CREATE TABLE broadcast_deliveries_{month.year:04d}_{month.month:02d} PARTITION OF "
            f"broadcast_deliveries FOR VALUES FROM ('{month} 00:00:00+00') "
            f"TO ('{following} 00:00:00+00')"
        )
        month = following
    op.execute("CREATE TABLE broadcast_deliveries_default PARTITION OF broadcast_deliveries DEFAULT")
    # A row whose broadcast is gone (none are deleted; kept rather than lost) takes its own time.
    _finish(
        f"INSERT INTO broadcast_deliveries ({_COLUMNS}, created_at) "
        f"SELECT {', '.join('d.' + c.strip() for c in _COLUMNS.split(','))}, "
        "coalesce(b.deliveries_at, d.updated_at) FROM broadcast_deliveries_old d "
        "LEFT JOIN broadcasts b ON b.id = d.broadcast_id",
        analyse=True,
    )


def upgrade() -> None:
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("deliveries_at", storage.types.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("report_summary", _SUMMARY, nullable=True))
    op.execute(
        "UPDATE broadcasts SET deliveries_at = created_at WHERE fanned_out_to > 0 "
        "OR fanned_out_at IS NOT NULL OR EXISTS (SELECT 1 FROM broadcast_deliveries d "
        "WHERE d.broadcast_id = broadcasts.id)"
    )
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
        return
    with op.batch_alter_table("broadcast_deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("created_at", storage.types.UtcDateTime(timezone=True), nullable=True)
        )
    op.execute(
        "UPDATE broadcast_deliveries SET created_at = coalesce((SELECT broadcasts.deliveries_at "
        "FROM broadcasts WHERE broadcasts.id = broadcast_deliveries.broadcast_id), updated_at)"
    )
    with op.batch_alter_table("broadcast_deliveries", schema=None) as batch_op:
        batch_op.alter_column(
            "created_at", existing_type=storage.types.UtcDateTime(timezone=True), nullable=False
        )
        batch_op.drop_constraint(_UNIQUE, type_="unique")
        batch_op.create_unique_constraint(_UNIQUE, ["broadcast_id", "resident_id", "created_at"])


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _set_aside_old()
        op.execute(
            _TABLE.format(
                created_at="",
                primary_key="pk_broadcast_deliveries PRIMARY KEY (id)",
                unique=f"{_UNIQUE} UNIQUE (broadcast_id, resident_id)",
                partitioned="",
            )
        )
        _finish(
            f"INSERT INTO broadcast_deliveries ({_COLUMNS}) "
            f"SELECT {_COLUMNS} FROM broadcast_deliveries_old",
            analyse=False,
        )
    else:
        with op.batch_alter_table("broadcast_deliveries", schema=None) as batch_op:
            batch_op.drop_constraint(_UNIQUE, type_="unique")
            batch_op.create_unique_constraint(_UNIQUE, ["broadcast_id", "resident_id"])
            batch_op.drop_column("created_at")
    with op.batch_alter_table("broadcasts", schema=None) as batch_op:
        batch_op.drop_column("report_summary")
        batch_op.drop_column("deliveries_at")
