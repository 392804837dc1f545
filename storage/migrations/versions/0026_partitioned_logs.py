"""partitioned logs: the message log partitioned by month on PostgreSQL

On PostgreSQL the existing ``message_log`` is renamed, a partitioned table takes its name
(``PARTITION BY RANGE (created_at)``, primary key ``(id, created_at)`` as PostgreSQL requires),
partitions are made for every month that has rows, this month and the next three, plus a default
one; the rows are copied and the old table dropped. The id sequence is kept, so ids go on where
they were. SQLite keeps its one plain table: nothing happens there.

The copy runs in the upgrade's one transaction and holds the message log for as long as it
takes, which grows with the table (not measured at scale): docs/operations.md says how to plan it.

Revision ID: 0026_partitioned_logs
Revises: 0025_incident_suggestions
Create Date: 2026-12-04 22:10:00
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

from alembic import op
from sqlalchemy import text

revision: str = "0026_partitioned_logs"
down_revision: str | Sequence[str] | None = "0025_incident_suggestions"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Kept here rather than imported: a migration must do tomorrow what it did today.
_MONTHS_AHEAD = 3
_COLUMNS = (
    "id, direction, channel, address, resident_id, provider_message_id, kind, text, status, "
    "status_updated_at, created_at"
)
_INDEXES = (
    "CREATE INDEX ix_message_log_created_at ON message_log (created_at)",
    "CREATE INDEX ix_message_log_provider ON message_log (channel, provider_message_id)",
    "CREATE INDEX ix_message_log_resident_id ON message_log (resident_id)",
)
_DROP_INDEXES = (
    "DROP INDEX ix_message_log_created_at",
    "DROP INDEX ix_message_log_provider",
    "DROP INDEX ix_message_log_resident_id",
)
_TABLE = """
CREATE TABLE message_log (
    id INTEGER NOT NULL DEFAULT nextval('message_log_id_seq'),
    direction VARCHAR(3) NOT NULL,
    channel VARCHAR(32) NOT NULL,
    address VARCHAR(255),
    resident_id INTEGER,
    provider_message_id VARCHAR(128),
    kind VARCHAR(32) NOT NULL,
    text TEXT,
    status VARCHAR(32),
    status_updated_at TIMESTAMP WITH TIME ZONE,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL,
    CONSTRAINT {primary_key},
    CONSTRAINT fk_message_log_resident_id_residents FOREIGN KEY (resident_id)
        REFERENCES residents (id) ON DELETE SET NULL
){partitioned}
"""


def _month(moment: datetime) -> date:
    return moment.astimezone(UTC).date().replace(day=1)


def _next(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def _set_aside_old() -> None:
    """Rename the current table out of the way, its names freed for the new one; the id
    sequence is unhooked from it so that dropping it keeps the sequence."""
    op.execute("ALTER SEQUENCE message_log_id_seq OWNED BY NONE")
    op.execute("ALTER TABLE message_log RENAME TO message_log_old")
    for statement in _DROP_INDEXES:
        op.execute(statement)
    op.execute("ALTER TABLE message_log_old DROP CONSTRAINT fk_message_log_resident_id_residents")
    op.execute("ALTER TABLE message_log_old DROP CONSTRAINT pk_message_log")


def _finish(*, analyse: bool) -> None:
    op.execute(f"INSERT INTO message_log ({_COLUMNS}) SELECT {_COLUMNS} FROM message_log_old")
    op.execute("DROP TABLE message_log_old")
    op.execute("ALTER SEQUENCE message_log_id_seq OWNED BY message_log.id")
    for statement in _INDEXES:
        op.execute(statement)
    if analyse:
        op.execute("ANALYZE message_log")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    _set_aside_old()
    op.execute(
        _TABLE.format(
            primary_key="pk_message_log PRIMARY KEY (id, created_at)",
            partitioned=" PARTITION BY RANGE (created_at)",
        )
    )
    oldest = bind.execute(text("SELECT min(created_at) FROM message_log_old")).scalar()
    now = datetime.now(UTC)
    month = _month(oldest if oldest is not None and oldest < now else now)
    last = _month(now)
    for _ in range(_MONTHS_AHEAD):
        last = _next(last)
    while month <= last:
        following = _next(month)
        op.execute(
            f"CREATE TABLE message_log_{month.year:04d}_{month.month:02d} PARTITION OF "
            f"message_log FOR VALUES FROM ('{month} 00:00:00+00') TO ('{following} 00:00:00+00')"
        )
        month = following
    # Rows dated after the months made (a clock far ahead) are kept rather than refused.
    op.execute("CREATE TABLE message_log_default PARTITION OF message_log DEFAULT")
    _finish(analyse=True)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    _set_aside_old()
    op.execute(_TABLE.format(primary_key="pk_message_log PRIMARY KEY (id)", partitioned=""))
    _finish(analyse=False)
