"""SUBSCRIBE and a place (or a ward number): news for the wards the resident lives in.

A place is looked up in the gazetteer and the resident is subscribed to every ward it reaches
(Khayelitsha spans ten); "SUBSCRIBE WARD 94" or "SUBSCRIBE 94" names one ward; with nothing
after SUBSCRIBE, the wards of the resident's latest report are used. Subscribing twice to the
same ward keeps one subscription. A place the gazetteer knows but cannot place in a ward (its
data has no shape for most formal suburbs) gets an answer that says so and what to send instead.

Example::

    await subscribe(turn, "Khayelitsha", gazetteer)
    turn.effects   # [Notice("You will get news for Khayelitsha (wards 93, 87, ...). ...")]
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.turn_context import Turn
from forms_runtime.effects import Notice
from forms_runtime.gazetteer import Gazetteer
from forms_runtime.i18n import N_, tr
from storage.models import Submission, Subscription

__all__ = ["WARD_COUNT", "add_wards", "latest_wards", "subscribe"]

# Cape Town's electoral wards (2021 boundaries) are numbered 1 to 116.
WARD_COUNT = 116
_WARD_NUMBER = re.compile(r"^(?:ward|wyk|iwadi|iwodi)?\s*(\d{1,3})$", re.IGNORECASE)

_UNKNOWN_PLACE = N_(
    "I do not know that place. Send SUBSCRIBE and the name of your suburb, for example SUBSCRIBE Khayelitsha."
)
_NO_PLACE = N_("Send SUBSCRIBE and the name of your suburb, for example SUBSCRIBE Khayelitsha.")
_NO_WARD = N_(
    "I know {place}, but not which ward it is in. Send SUBSCRIBE and your ward number, for example SUBSCRIBE WARD 57."
)
_ONE_WARD = N_("You will get news for ward {ward}. Send STOP to stop all messages.")
_SEVERAL_WARDS = N_(
    "You will get news for {place} (wards {wards}). Send STOP to stop all messages."
)


async def subscribe(turn: Turn, argument: str | None, gazetteer: Gazetteer | None) -> None:
    place = (argument or "").strip()
    wards: tuple[str, ...]
    number = _WARD_NUMBER.match(place)
    if number is not None and 1 <= int(number.group(1)) <= WARD_COUNT:
        wards, place = (str(int(number.group(1))),), ""
    elif place:
        match = gazetteer.match_place(place) if gazetteer is not None else None
        found = match.best if match is not None else None
        if found is None:
            turn.say(Notice(tr(turn.locale, _UNKNOWN_PLACE)))
            return
        place, wards = found.name, tuple(found.wards)
        if not wards:
            turn.say(Notice(tr(turn.locale, _NO_WARD, place=place)))
            return
    else:
        wards = await latest_wards(await turn.sql(), turn.resident_id)
        if not wards:
            turn.say(Notice(tr(turn.locale, _NO_PLACE)))
            return
    await add_wards(turn, wards)
    if len(wards) == 1:
        turn.say(Notice(tr(turn.locale, _ONE_WARD, ward=wards[0])))
    else:
        shown = ", ".join(wards)
        turn.say(Notice(tr(turn.locale, _SEVERAL_WARDS, place=place or shown, wards=shown)))


async def add_wards(turn: Turn, wards: tuple[str, ...]) -> None:
    """Follow ``wards`` (those not followed already), in the turn's transaction."""
    session = await turn.sql()
    have = set(
        (
            await session.scalars(
                select(Subscription.ward).where(
                    Subscription.resident_id == turn.resident_id, Subscription.ward.in_(wards)
                )
            )
        ).all()
    )
    for ward in wards:
        if ward not in have:
            session.add(Subscription(resident_id=turn.resident_id, ward=ward, created_at=turn.now))


async def latest_wards(session: AsyncSession, resident_id: int) -> tuple[str, ...]:
    """The wards of the resident's latest report that has one (main ward first)."""
    row = (
        await session.execute(
            select(Submission.ward, Submission.wards)
            .where(Submission.resident_id == resident_id, Submission.ward.is_not(None))
            .order_by(Submission.id.desc())
            .limit(1)
        )
    ).first()
    if row is None:
        return ()
    ward, wards = row
    listed = [str(w) for w in (wards or []) if w]
    return tuple(dict.fromkeys([str(ward), *listed]))
