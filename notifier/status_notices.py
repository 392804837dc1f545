"""Status notices: what the resident is told as their report moves through the city's hands.

Two moments, both written into the notification outbox (``notifier.outbox``) in a transaction
that also records why, so a crash never loses a notice and never doubles it; the dispatcher
(``notifier.dispatcher``) sends them:

* **Filed**: ``queue_filed`` runs inside the filer's transaction that marks the report filed
  (``city.filer`` calls it through its ``on_filed`` port): "Your report CT-... is with the city
  now. The city's number for it is 1042."
* **Status changed**: the status poller (``city.status_poller``) records each change the city
  makes in ``request_status_changes`` as ``pending``; ``notify_pending`` settles each one with a
  conditional update and, in the same transaction, queues the update in the resident's
  language, so two workers never queue it twice. Quiet hours only delay: a change found at 23:00
  is queued at 07:00. An opted-out or erased resident gets nothing; several changes waiting for
  one request are collapsed into the latest (and a still unsent update for it in the outbox is
  replaced).

States of a change: ``pending`` (to tell), ``queued`` (in the outbox), ``superseded`` (a later
change is told instead), ``opted_out``, ``unreachable`` (no resident or channel), ``acknowledged``
(the first sighting, which the "filed" notice already covered).

Example::

    notices = StatusNotices(sessionmaker, quiet_hours=QuietHours())
    await notices.notify_pending()     # -> 3 updates queued
    status_message("zu", "CT-7KQ4XM", "1042", "closed", None, None)
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from babel.dates import format_date
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from forms_runtime.i18n import N_, tr
from notifier.outbox import enqueue
from notifier.ports import ResidentMessage
from notifier.quiet_hours import QuietHours
from storage.models import RequestStatusChange, Resident, Submission

__all__ = ["StatusNotices", "filed_message", "queue_filed", "status_message"]

log = logging.getLogger("citybot.status")

_STATUS_WORDS = {
    "open": N_("open: the city is working on it"),
    "closed": N_("closed"),
}


def status_message(
    locale: str,
    reference: str,
    number: str,
    status: str,
    notes: str | None,
    expected: datetime | None,
) -> str:
    """The update as the resident reads it, in their language, dates formatted by babel."""
    word = tr(locale, _STATUS_WORDS[status]) if status in _STATUS_WORDS else status
    lines = [
        tr(
            locale,
            N_("Update on your report {reference} (city number {number}): {status}."),
            reference=reference,
            number=number,
            status=word,
        )
    ]
    if notes:
        lines.append(tr(locale, N_("The city says: {notes}"), notes=notes))
    if expected is not None:
        when = format_date(expected.date(), format="long", locale=locale)
        lines.append(tr(locale, N_("Expected by {date}."), date=when))
    return "\n".join(lines)


def filed_message(locale: str, reference: str, number: str) -> str:
    """ "Your report is with the city now", with the city's number, in the resident's language."""
    return tr(
        locale,
        N_("Your report {reference} is with the city now. The city's number for it is {number}."),
        reference=reference,
        number=number,
    )


async def queue_filed(session: AsyncSession, submission: Submission, now: datetime) -> bool:
    """Queue the "filed" notice for ``submission`` in the caller's transaction (the filer's);
    False when there is nobody to tell (no resident or channel, opted out, erased)."""
    if submission.resident_id is None or not submission.channel:
        return False
    resident = await session.get(Resident, submission.resident_id)
    if resident is None or resident.opted_out_at is not None or resident.erased_at is not None:
        return False
    number = submission.service_request_id or ""
    message = ResidentMessage(
        resident_id=resident.id,
        channel=submission.channel,
        locale=submission.locale,
        text=filed_message(submission.locale, submission.reference, number),
        purpose="report_filed",
        reference=submission.reference,
        template_variables={"reference": submission.reference, "number": number},
    )
    await enqueue(session, message, submission_id=submission.id, now=now)
    return True


class StatusNotices:
    """Turns the city's recorded status changes into queued notices (``notify_pending``)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        quiet_hours: QuietHours | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sessionmaker = sessionmaker
        self.quiet_hours = quiet_hours
        self.clock = clock

    async def notify_pending(self) -> int:
        """Queue every pending change (outside quiet hours); returns how many were queued."""
        now = self.clock()
        if self.quiet_hours is not None and self.quiet_hours.contains(now):
            return 0
        async with self.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(RequestStatusChange, Submission, Resident)
                    .join(Submission, Submission.id == RequestStatusChange.submission_id)
                    .outerjoin(Resident, Resident.id == Submission.resident_id)
                    .where(RequestStatusChange.notify_state == "pending")
                    .order_by(RequestStatusChange.id)
                )
            ).all()
        latest: dict[int, int] = {}
        for change, submission, _ in rows:
            latest[submission.id] = change.id
        queued = 0
        for change, submission, resident in rows:
            message: ResidentMessage | None = None
            if latest[submission.id] != change.id:
                state = "superseded"
            elif resident is None or not submission.channel or resident.erased_at is not None:
                state = "unreachable"
            elif resident.opted_out_at is not None:
                state = "opted_out"
            else:
                state = "queued"
                message = ResidentMessage(
                    resident_id=resident.id,
                    channel=submission.channel,
                    locale=submission.locale,
                    text=status_message(
                        submission.locale,
                        submission.reference,
                        change.service_request_id,
                        change.status,
                        change.status_notes,
                        change.expected_datetime,
                    ),
                    purpose="status_update",
                    reference=submission.reference,
                    template_variables={"reference": submission.reference, "status": change.status},
                )
            async with self.sessionmaker() as session, session.begin():
                if not await _settle(session, change.id, state, now):
                    continue  # another worker settled it
                if message is not None:
                    await enqueue(
                        session, message, submission_id=submission.id, now=now, collapse=True
                    )
                    queued += 1
        return queued


async def _settle(session: AsyncSession, change_id: int, state: str, now: datetime) -> bool:
    """Move a pending change to ``state``; False when someone else already did."""
    result = await session.execute(
        update(RequestStatusChange)
        .where(RequestStatusChange.id == change_id, RequestStatusChange.notify_state == "pending")
        .values(notify_state=state, notified_at=now)
    )
    return bool(getattr(result, "rowcount", 0))
