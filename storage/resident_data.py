"""What the city holds about one resident: all of it read out (an access request), or the personal
part of it erased. One module for both, so an export and an erasure agree on what is personal.

The resident asks in the conversation (``conversations.data_export``, ``conversations.erasure``)
and an admin through the staff side (``staff.residents``); both call these functions inside their
own transaction and write their own audit row.

The export holds the resident's own rows only, and of those only what is about them: not the
filer's attempts, delivery errors, analytics labels (area type, precision) or the audit log,
which are the city's working records. A photo answer shows that a photo was sent, not the
provider's URL (that URL carries the city's account and is fetched only by the media proxy).

Erasure takes which answers of each form are personal as plain step ids (``personal_steps``),
because forms are the form standard's business and this floor imports none of it; a report of a
form not in the map loses every answer.

Example::

    async with sessionmaker() as session, session.begin():
        record = await resident_record(session, 7)
        record["reports"][0]["reference"]      # "CT-7KQ4XM"
        counts = await erase_personal_data(session, 7, personal_steps={"pothole": {"name"}}, now=now)
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from storage.models import (
    AggregateAnswer,
    Broadcast,
    BroadcastDelivery,
    MessageLog,
    ReportDigest,
    Resident,
    ResidentAddress,
    ResidentNotification,
    Submission,
    Subscription,
    SupportMessage,
    SupportTicket,
    TrackedRequest,
    UssdSession,
)

__all__ = [
    "EXPORT_FORMAT",
    "ErasureCounts",
    "erase_personal_data",
    "resident_record",
    "scrub_resident",
]

# The channel name USSD residents' addresses are kept under (channels.ussd.USSD; this floor
# imports no channel).
USSD_CHANNEL = "ussd"

# Named in every export, so a reader (or a later version of citybot) knows the layout.
EXPORT_FORMAT = "citybot resident export v1"

_log = cast(Table, MessageLog.__table__)


@dataclass(frozen=True, slots=True)
class ErasureCounts:
    reports: int
    messages: int
    # The (channel, address) pairs that were removed: whoever erases outside a conversation
    # (an admin) must also forget those conversations' state, which lives with the turn loop.
    # Personal data: never written to the audit log.
    addresses: tuple[tuple[str, str], ...] = ()


async def resident_record(session: AsyncSession, resident_id: int) -> dict[str, Any] | None:
    """Everything held about one resident as JSON-ready data; ``None`` if there is no such
    resident. Lists are oldest first."""
    resident = await session.get(Resident, resident_id)
    if resident is None:
        return None
    addresses = await _rows(session, ResidentAddress, ResidentAddress.created_at, resident_id)
    reports = (
        await session.execute(
            select(Submission, TrackedRequest)
            .outerjoin(TrackedRequest, TrackedRequest.submission_id == Submission.id)
            .where(Submission.resident_id == resident_id)
            .order_by(Submission.created_at, Submission.id)
        )
    ).all()
    subscriptions = await _rows(session, Subscription, Subscription.created_at, resident_id)
    messages = await _rows(session, MessageLog, MessageLog.created_at, resident_id)
    notifications = await _rows(
        session, ResidentNotification, ResidentNotification.created_at, resident_id
    )
    tickets = await _rows(session, SupportTicket, SupportTicket.created_at, resident_id)
    transcript = (
        (
            await session.execute(
                select(SupportMessage)
                .where(
                    SupportMessage.ticket_id.in_([t.id for t in tickets]),
                    SupportMessage.direction.in_(("resident", "agent")),
                )
                .order_by(SupportMessage.at, SupportMessage.id)
            )
        )
        .scalars()
        .all()
        if tickets
        else []
    )
    broadcasts = (
        await session.execute(
            select(BroadcastDelivery, Broadcast.texts)
            .join(Broadcast, Broadcast.id == BroadcastDelivery.broadcast_id)
            .where(BroadcastDelivery.resident_id == resident_id)
            .order_by(BroadcastDelivery.id)
        )
    ).all()
    digests = await _rows(session, ReportDigest, ReportDigest.day, resident_id)
    return {
        "format": EXPORT_FORMAT,
        "resident": {
            "id": resident.id,
            "language": resident.locale,
            "created_at": _time(resident.created_at),
            "consent_given_at": _time(resident.consent_at),
            "consent_declined_at": _time(resident.consent_declined_at),
            "opted_out_at": _time(resident.opted_out_at),
            "erased_at": _time(resident.erased_at),
        },
        "addresses": [
            {
                "channel": a.channel,
                "address": a.address,
                "since": _time(a.created_at),
                "last_message_at": _time(a.last_inbound_at),
            }
            for a in addresses
        ],
        "reports": [_report(submission, tracked) for submission, tracked in reports],
        "subscriptions": [
            {
                "alert": s.label,
                "ward": s.ward,
                "topics": s.topics.strip(","),
                "since": _time(s.created_at),
            }
            for s in subscriptions
        ],
        "messages": [
            {
                "direction": m.direction,
                "channel": m.channel,
                "kind": m.kind,
                "text": m.text,
                "at": _time(m.created_at),
                "delivery": m.status,
            }
            for m in messages
        ],
        "notifications": [
            {
                "reference": n.reference,
                "purpose": n.purpose,
                "channel": n.channel,
                "state": n.state,
                "created_at": _time(n.created_at),
                "sent_at": _time(n.sent_at),
            }
            for n in notifications
        ],
        # Conversations with a person: what was said to and by them (staff's notes are the
        # city's working records, not theirs).
        "agent_requests": [
            {
                "channel": t.channel,
                "created_at": _time(t.created_at),
                "closed_at": _time(t.closed_at),
                "messages": [
                    {"from": m.direction, "text": m.text, "at": _time(m.at)}
                    for m in transcript
                    if m.ticket_id == t.id
                ],
            }
            for t in tickets
        ],
        # The city's broadcasts meant for them, and what became of each (a failed one too).
        "broadcasts": [
            {
                "broadcast": d.broadcast_id,
                "text": texts.get(d.locale) or texts.get("en"),
                "channel": d.channel,
                "state": d.state,
                "at": _time(d.updated_at),
            }
            for d, texts in broadcasts
        ],
        # The daily digests of reports written for them (a day with nothing has none).
        "digests": [
            {
                "alert": d.label,
                "day": d.day.isoformat(),
                "text": d.text,
                "channel": d.channel,
                "state": d.state,
            }
            for d in digests
        ],
    }


async def erase_personal_data(
    session: AsyncSession,
    resident_id: int,
    *,
    personal_steps: Mapping[str, Set[str]],
    now: datetime,
) -> ErasureCounts:
    """Remove a resident's personal data inside the caller's transaction; the caller commits
    (or rolls back) all of it, with its own audit row.

    Removed: channel addresses, subscriptions and their daily digests, consent times, where a
    USSD dialogue stood (``ussd_sessions``), the text and address of every logged message, the
    optional answers counted with reports (``aggregate_answers``), texts of notifications (those
    still to send are skipped, as are broadcast messages still queued for them), and the personal
    answers of reports. Kept: the reports (what, where, when) and the resident row, marked
    ``erased_at``, so counts stay right.
    """
    submissions = (
        (await session.execute(select(Submission).where(Submission.resident_id == resident_id)))
        .scalars()
        .all()
    )
    for submission in submissions:
        personal = personal_steps.get(submission.form_id)
        submission.answers = {
            k: v
            for k, v in submission.answers.items()
            if personal is not None and k not in personal
        }
        submission.personal_removed_at = now
    messages = await scrub_resident(session, resident_id)
    # Optional answers counted with reports (gender, disability: special personal information)
    # go whole: kept, even unlinked, a report's answers could still be tied back to its author.
    await session.execute(delete(AggregateAnswer).where(AggregateAnswer.resident_id == resident_id))
    await session.execute(
        update(ResidentNotification)
        .where(ResidentNotification.resident_id == resident_id)
        .values(
            text="",
            template_variables={},
            state=case(
                (ResidentNotification.state == "pending", "skipped"),
                else_=ResidentNotification.state,
            ),
        )
    )
    # Broadcast messages still to send are skipped now rather than at their turn, in every
    # month's partition (no broadcast named: the resident's index of each partition serves).
    # The rows stay, for the broadcasts' counts; they hold no address or text.
    await session.execute(
        update(BroadcastDelivery)
        .where(BroadcastDelivery.resident_id == resident_id, BroadcastDelivery.state == "queued")
        .values(state="skipped", error="erased", updated_at=now)
    )
    await session.execute(delete(Subscription).where(Subscription.resident_id == resident_id))
    # A pin alert's label is where the resident stood: its digests go with it.
    await session.execute(delete(ReportDigest).where(ReportDigest.resident_id == resident_id))
    # Conversations with a person: where they were and the resident's own words go; the
    # agents' replies and notes stay (the city's record of what it did).
    ticket_ids = select(SupportTicket.id).where(SupportTicket.resident_id == resident_id)
    await session.execute(
        update(SupportMessage)
        .where(SupportMessage.ticket_id.in_(ticket_ids), SupportMessage.direction == "resident")
        .values(text=None)
    )
    await session.execute(
        update(SupportTicket)
        .where(SupportTicket.resident_id == resident_id)
        .values(
            address=None,
            state="closed",
            closed_at=func.coalesce(SupportTicket.closed_at, now),
            outcome=func.coalesce(SupportTicket.outcome, "erased"),
        )
    )
    addresses = (
        await session.execute(
            delete(ResidentAddress)
            .where(ResidentAddress.resident_id == resident_id)
            .returning(ResidentAddress.channel, ResidentAddress.address)
        )
    ).all()
    # Where a USSD resident was in the dialogue: the screen shown last may hold their answers.
    phones = [row.address for row in addresses if row.channel == USSD_CHANNEL]
    if phones:
        await session.execute(delete(UssdSession).where(UssdSession.phone.in_(phones)))
    await session.execute(
        update(Resident)
        .where(Resident.id == resident_id)
        .values(erased_at=now, consent_at=None, consent_declined_at=None)
    )
    return ErasureCounts(
        reports=len(submissions),
        messages=messages,
        addresses=tuple((row.channel, row.address) for row in addresses),
    )


async def scrub_resident(db: AsyncSession | AsyncConnection, resident_id: int) -> int:
    """Clear the text and address of every logged message of a resident; returns how many."""
    result = await db.execute(
        update(_log).where(_log.c.resident_id == resident_id).values(text=None, address=None)
    )
    return int(getattr(result, "rowcount", 0))


async def _rows(session: AsyncSession, model: Any, order: Any, resident_id: int) -> list[Any]:
    statement = select(model).where(model.resident_id == resident_id).order_by(order, model.id)
    return list((await session.execute(statement)).scalars().all())


def _report(submission: Submission, tracked: TrackedRequest | None) -> dict[str, Any]:
    return {
        "reference": submission.reference,
        "service": submission.service_code,
        "form": submission.form_id,
        "language": submission.locale,
        "channel": submission.channel,
        "status": submission.status,
        "city_number": submission.service_request_id,
        "city_status": tracked.status if tracked else None,
        "city_status_notes": tracked.status_notes if tracked else None,
        "city_closed_at": _time(tracked.closed_at) if tracked else None,
        "place": submission.address_string,
        "lat": submission.lat,
        "lon": submission.lon,
        "ward": submission.ward,
        "answers": {k: _answer(v) for k, v in submission.answers.items()},
        "personal_answers_removed_at": _time(submission.personal_removed_at),
        "created_at": _time(submission.created_at),
        "updated_at": _time(submission.updated_at),
    }


def _answer(value: Any) -> Any:
    if isinstance(value, dict) and "url" in value:
        return {k: v for k, v in value.items() if k != "url"} | {"photo": True}
    return value


def _time(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None
