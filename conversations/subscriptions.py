"""SUBSCRIBE and a place: news for the resident's ward.

The place is looked up in the gazetteer; with no place, the ward of the resident's latest report
is used. Subscribing twice to the same ward keeps one subscription.

Example::

    await subscribe(turn, "Khayelitsha", gazetteer)
    turn.effects   # [Notice("You will get news for ward 93. Send STOP to stop all messages.")]
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.turn_context import Turn
from forms_runtime.effects import Notice
from forms_runtime.gazetteer import Gazetteer
from forms_runtime.i18n import N_, tr
from storage.models import Submission, Subscription

__all__ = ["latest_ward", "subscribe"]


async def subscribe(turn: Turn, place: str | None, gazetteer: Gazetteer | None) -> None:
    if place:
        ward = _ward_of_place(place, gazetteer)
    else:
        ward = await latest_ward(await turn.sql(), turn.resident_id)
    if ward is None:
        if place:
            text = N_(
                "I do not know that place. Send SUBSCRIBE and the name of your suburb, for example SUBSCRIBE Khayelitsha."
            )
        else:
            text = N_(
                "Send SUBSCRIBE and the name of your suburb, for example SUBSCRIBE Khayelitsha."
            )
        turn.say(Notice(tr(turn.locale, text)))
        return
    session = await turn.sql()
    exists = await session.execute(
        select(Subscription.id).where(
            Subscription.resident_id == turn.resident_id, Subscription.ward == ward
        )
    )
    if exists.first() is None:
        session.add(Subscription(resident_id=turn.resident_id, ward=ward, created_at=turn.now))
    text = N_("You will get news for ward {ward}. Send STOP to stop all messages.")
    turn.say(Notice(tr(turn.locale, text, ward=ward)))


def _ward_of_place(place: str, gazetteer: Gazetteer | None) -> str | None:
    if gazetteer is None:
        return None
    match = gazetteer.match_place(place)
    return match.best.ward if match.best is not None else None


async def latest_ward(session: AsyncSession, resident_id: int) -> str | None:
    """The ward of the resident's latest report that has one."""
    ward: str | None = await session.scalar(
        select(Submission.ward)
        .where(Submission.resident_id == resident_id, Submission.ward.is_not(None))
        .order_by(Submission.id.desc())
        .limit(1)
    )
    return ward
