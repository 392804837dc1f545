"""Writing to the notification outbox, inside the caller's transaction.

Whoever decides that a resident must be told something calls ``enqueue`` in the same transaction
that records the reason (the filing, the status change): either both are stored or neither is,
so a crash can never leave a filed report whose message is forgotten. The dispatcher
(``notifier.dispatcher``) sends the row later.

``collapse=True`` is for updates where only the newest matters (status updates): earlier rows of
the same purpose for the same submission that no dispatcher holds right now are settled as
``skipped``, so a resident who was away is told where their request stands, not its history.

Example::

    async with sessionmaker() as session, session.begin():
        change.notify_state = "queued"
        enqueue(session, message, submission_id=7, now=now, collapse=True)
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, update
from sqlalchemy.ext.asyncio import AsyncSession

from notifier.ports import ResidentMessage
from storage.models import ResidentNotification

__all__ = ["SUPERSEDED", "enqueue"]

# ``last_error`` of a row skipped because a newer one of the same purpose replaced it.
SUPERSEDED = "superseded by a later update"


async def enqueue(
    session: AsyncSession,
    message: ResidentMessage,
    *,
    submission_id: int | None,
    now: datetime,
    collapse: bool = False,
) -> ResidentNotification:
    """Store ``message`` to be sent as soon as possible; the caller's transaction commits it."""
    if collapse and submission_id is not None:
        await session.execute(
            update(ResidentNotification)
            .where(
                ResidentNotification.submission_id == submission_id,
                ResidentNotification.purpose == message.purpose,
                ResidentNotification.state == "pending",
                # A held row may be on its way to the provider: its dispatcher settles it.
                or_(
                    ResidentNotification.claimed_until.is_(None),
                    ResidentNotification.claimed_until <= now,
                ),
            )
            .values(state="skipped", last_error=SUPERSEDED, text="", template_variables={})
            .execution_options(synchronize_session=False)
        )
    row = ResidentNotification(
        resident_id=message.resident_id,
        submission_id=submission_id,
        channel=message.channel,
        locale=message.locale,
        purpose=message.purpose,
        reference=message.reference,
        text=message.text,
        template_variables=dict(message.template_variables),
        created_at=now,
        state="pending",
        attempts=0,
        next_attempt_at=now,
    )
    session.add(row)
    return row
