"""Retention: forget what the city promised to forget, on time.

``Retention.purge_expired`` (run every hour by the ``housekeeping`` worker)
- removes the personal answers of reports older than their form's ``retention_days`` (the
  report itself stays: place, ward, what and when, for the city's statistics);
- clears the text of message-log rows and settled notifications older than the message
  retention setting (the rows stay, so counts stay right);
- deletes the daily digests of reports (``report_digests``) of days older than that setting
  (their text is in the message log as sent; the row only kept them from going twice);
- drops dedupe markers old enough that no provider still retries them;
- deletes where USSD phones stood in their dialogue (``ussd_sessions``) once no resume or
  gateway retry can use it (``conversations.ussd_sessions.KEEP``).
Every statement is idempotent, so several workers may run it.

Example::

    retention = Retention(sessionmaker, forms, message_retention_days=90)
    purged = await retention.purge_expired()
    # {"personal_answers": 4, "message_texts": 120, "notification_texts": 9,
    #  "report_digests": 0, "dedupe_markers": 3400, "ussd_sessions": 12}
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
from storage.types import utc_now

__all__ = ["DEDUPE_KEEP", "Retention"]

# Providers retry for hours at most (Twilio, Telegram); the design promises at least 24 h.
DEDUPE_KEEP = timedelta(days=3)
# Reports whose personal answers are removed per transaction: short locks on a busy database.
RETENTION_BATCH = 500

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
