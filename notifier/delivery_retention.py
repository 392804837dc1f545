"""Retention of broadcast deliveries: whole months go, each broadcast's counts stay.

A delivery row says which resident got which broadcast, on which channel, in which ward:
personal data, kept as long as the message log that holds the same sends
(``CITYBOT_MESSAGE_RETENTION_DAYS``; docs/operations.md says why the same period). On PostgreSQL
the table is partitioned by month on the time the broadcast's fan-out began (``storage.partitions``), so
``DeliveryRetention.forget_old`` drops a whole month as one ``DROP TABLE`` once the retention
period has passed all of it: a national broadcast's 12 million rows in one statement instead of
12 million deletes. On SQLite the same months go by a row delete.

Before a month goes, every broadcast of that month gets its report (the counts by state,
channel, ward and language, ``notifier.broadcasts.report``) written to
``Broadcast.report_summary``, in the same transaction, so the console and the staff API still
show an old broadcast's figures. ``Broadcast.recipients`` stays as it was too.

``DeliveryRetention.prepare_partitions`` makes this month's partition and the next
``PARTITION_MONTHS_AHEAD``'s. The housekeeping worker calls both every hour, beside
``conversations.retention``; both are idempotent and serialised per table.

Example::

    retention = DeliveryRetention(sessionmaker, retention_days=90)
    await retention.prepare_partitions()   # ["broadcast_deliveries_2027_03"]
    await retention.forget_old()            # {"delivery_partitions": 1, "delivery_rows": 0,
                                            #  "broadcasts_summarised": 4}
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier.broadcasts import report, summary_document
from storage.models import Broadcast, BroadcastDelivery
from storage.partitions import create_months_ahead, drop_months_before, month_start
from storage.types import utc_now

__all__ = ["PARTITION_MONTHS_AHEAD", "DeliveryRetention"]

# As the message log's: a housekeeping worker stopped for weeks still finds the month there.
PARTITION_MONTHS_AHEAD = 3

log = logging.getLogger("citybot.housekeeping")


class DeliveryRetention:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        retention_days: int,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.retention_days = retention_days
        self.clock = clock

    async def prepare_partitions(self) -> list[str]:
        """Make this month's partition and the coming ones (PostgreSQL; nothing on SQLite)."""
        async with self.sessionmaker() as session, session.begin():
            connection = await session.connection()
            made = await create_months_ahead(
                connection,
                BroadcastDelivery.__tablename__,
                self.clock(),
                months_ahead=PARTITION_MONTHS_AHEAD,
            )
        if made:
            log.info("broadcast delivery partitions made", extra={"partitions": made})
        return made

    async def forget_old(self) -> dict[str, int]:
        """Summarise, then drop, the months wholly older than the retention period."""
        cutoff = self.clock() - timedelta(days=self.retention_days)
        # Whole months only, as partitions go: the month the cutoff falls in stays whole.
        keep_from = datetime.combine(month_start(cutoff), datetime.min.time(), UTC)
        async with self.sessionmaker() as session, session.begin():
            old = (
                await session.scalars(
                    select(Broadcast).where(
                        Broadcast.deliveries_at < keep_from,
                        Broadcast.report_summary.is_(None),
                    )
                )
            ).all()
            for broadcast in old:
                broadcast.report_summary = summary_document(await report(session, broadcast))
            connection = await session.connection()
            dropped = await drop_months_before(
                connection, BroadcastDelivery.__tablename__, keep_from
            )
            # SQLite (and, on PostgreSQL, nothing left: the months are gone).
            rows = await session.execute(
                delete(BroadcastDelivery).where(BroadcastDelivery.created_at < keep_from)
            )
        forgotten = {
            "delivery_partitions": len(dropped),
            "delivery_rows": max(int(getattr(rows, "rowcount", 0) or 0), 0),
            "broadcasts_summarised": len(old),
        }
        if any(forgotten.values()):
            log.info("broadcast deliveries forgotten", extra=forgotten)
        return forgotten
