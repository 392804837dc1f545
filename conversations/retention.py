"""Retention: forget what the city promised to forget, on time.

``Retention.purge_expired`` (run every hour by the ``housekeeping`` worker)
- removes the personal answers of reports older than their form's ``retention_days`` (the
  report itself stays: place, ward, what and when, for the city's statistics);
- on PostgreSQL, drops the message log's monthly partitions (``storage.partitions``) whose whole
  month is older than the message retention setting: one ``DROP TABLE`` instead of a row
  delete or update per message;
- clears the text of the remaining message-log rows (the month the cutoff falls in, and every
  row on SQLite) and settled notifications older than that setting (the rows stay, so the
  counts of the months kept stay right);
- deletes the daily digests of reports (``report_digests``) of days older than that setting
  (their text is in the message log as sent; the row only kept them from going twice);
- drops dedupe markers old enough that no provider still retries them;
- deletes where USSD phones stood in their dialogue (``ussd_sessions``) once no resume or
  gateway retry can use it (``conversations.ussd_sessions.KEEP``).
Every statement is idempotent, so several workers may run it.

``Retention.prepare_partitions`` (the same worker, before purging) makes the message log's
partitions of this month and the next ``PARTITION_MONTHS_AHEAD`` on PostgreSQL.

Example::

    retention = Retention(sessionmaker, forms, message_retention_days=90)
    purged = await retention.purge_expired()
    # {"personal_answers": 4, "message_partitions": 1, "message_texts": 120,
    #  "notification_texts": 9, "report_digests": 0, "dedupe_markers": 3400, "ussd_sessions": 12}
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from conversations.dedupe import SqlDedupe
from conversations.ussd_sessions import KEEP as USSD_KEEP
from forms_runtime.model import Form
from storage.models import (
    MessageLog,
    ReportDigest,
    ResidentNotification,
    Submission,
    UssdSession,
)
from storage.partitions import create_months_ahead, drop_months_before
from storage.types import utc_now

__all__ = ["DEDUPE_KEEP", "PARTITION_MONTHS_AHEAD", "Retention"]

# Providers retry for hours at most (Twilio, Telegram); the design promises at least 24 h.
DEDUPE_KEEP = timedelta(days=3)
# Reports whose personal answers are removed per transaction: short locks on a busy database.
RETENTION_BATCH = 500
# Months of message-log partitions made ahead: a housekeeping worker stopped for weeks still
# finds the coming month's partition there (and the default partition catches the rest).
PARTITION_MONTHS_AHEAD = 3

log = logging.getLogger("citybot.housekeeping")


class Retention:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        forms: Mapping[str, Form],
        *,
        message_retention_days: int,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.forms = forms
        self.message_retention_days = message_retention_days

    async def prepare_partitions(self) -> list[str]:
        """Make the message log's partitions of this month and the coming ones (PostgreSQL;
        nothing on SQLite); the names of those made."""
        async with self.sessionmaker() as session, session.begin():
            connection = await session.connection()
            made = await create_months_ahead(
                connection, MessageLog.__tablename__, utc_now(), months_ahead=PARTITION_MONTHS_AHEAD
            )
        if made:
            log.info("message log partitions made", extra={"partitions": made})
        return made

    async def purge_expired(self) -> dict[str, int]:
        """Forget what is due; how many of each kind were forgotten."""
        now = utc_now()
        text_cutoff = now - timedelta(days=self.message_retention_days)
        personal = 0
        for form in self.forms.values():
            steps = form.personal_step_ids
            cutoff = now - timedelta(days=form.retention_days)
            while True:
                async with self.sessionmaker() as session, session.begin():
                    removed = await _remove_personal(session, form.id, steps, cutoff, now)
                personal += removed
                if removed < RETENTION_BATCH:
                    break
        async with self.sessionmaker() as session, session.begin():
            connection = await session.connection()
            dropped = await drop_months_before(connection, MessageLog.__tablename__, text_cutoff)
        if dropped:
            log.info("message log partitions dropped", extra={"partitions": dropped})
        async with self.sessionmaker() as session, session.begin():
            texts = await session.execute(
                update(MessageLog)
                .where(MessageLog.created_at < text_cutoff, MessageLog.text.is_not(None))
                .values(text=None)
            )
            # Sent and skipped rows are emptied when settled; this catches failed ones, kept
            # for a person to look into, once the message retention has passed.
            notifications = await session.execute(
                update(ResidentNotification)
                .where(
                    ResidentNotification.created_at < text_cutoff, ResidentNotification.text != ""
                )
                .values(text="", template_variables={})
            )
            digests = await session.execute(
                delete(ReportDigest).where(ReportDigest.day < text_cutoff.date())
            )
            ussd = await session.execute(
                delete(UssdSession).where(UssdSession.updated_at < now - USSD_KEEP)
            )
        markers = await SqlDedupe(self.sessionmaker).purge(now, keep=DEDUPE_KEEP)
        purged = {
            "personal_answers": personal,
            "message_partitions": len(dropped),
            "message_texts": _count(texts),
            "notification_texts": _count(notifications),
            "report_digests": _count(digests),
            "dedupe_markers": markers,
            "ussd_sessions": _count(ussd),
        }
        if any(purged.values()):
            log.info("purged expired data", extra=purged)
        return purged


async def _remove_personal(
    session: AsyncSession, form_id: str, steps: frozenset[str], cutoff: datetime, now: datetime
) -> int:
    """Remove one batch of expired personal answers; returns how many reports it touched."""
    due = (
        await session.scalars(
            select(Submission)
            .where(
                Submission.form_id == form_id,
                Submission.created_at < cutoff,
                Submission.personal_removed_at.is_(None),
            )
            .limit(RETENTION_BATCH)
        )
    ).all()
    for submission in due:
        submission.answers = _without(submission.answers, steps)
        submission.personal_removed_at = now
    return len(due)


def _without(answers: Mapping[str, object], steps: frozenset[str]) -> dict[str, object]:
    return {key: value for key, value in answers.items() if key not in steps}


def _count(result: object) -> int:
    rowcount = getattr(result, "rowcount", 0)
    return int(rowcount) if isinstance(rowcount, int) and rowcount > 0 else 0
