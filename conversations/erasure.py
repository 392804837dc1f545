""" "Delete my data": a resident's personal data goes; anonymous facts stay.

Removed: the resident's channel addresses, subscriptions, consent times, the text and address of
every logged message, and the personal answers (steps marked ``personal``) of their reports. Kept:
the reports themselves (what, where, when: the city still has to fix the pothole), the resident
row with ``erased_at`` (so counts stay right) and an audit row with the counts. The database
work is ``storage.resident_data.erase_personal_data``, which an admin's erasure shares.

In the conversation, DELETE MY DATA asks first (``ask_erasure``); a YES erases
(``confirm_erasure``) and the turn loop forgets the resident's state.

Example::

    counts = await erase_resident(session, forms, resident_id=7, now=now)
    counts.reports   # 2
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from conversations.consent import yes_no_question
from conversations.turn_context import Turn
from forms_runtime.effects import Ask, Notice
from forms_runtime.i18n import N_, tr
from forms_runtime.model import Form, personal_steps
from storage.models import AuditLog
from storage.resident_data import ErasureCounts, erase_personal_data

__all__ = ["ERASE", "ErasureCounts", "answer_erasure", "ask_erasure", "erase_resident"]

# The bot's own question, kept in the state envelope under "pending".
ERASE = "erase"
_QUESTION = N_(
    "This deletes your contact details, your messages and the personal answers in your "
    "reports. Do you want to delete your data?"
)


async def erase_resident(
    session: AsyncSession, forms: Mapping[str, Form], *, resident_id: int, now: datetime
) -> ErasureCounts:
    """Erase inside the caller's transaction; the caller commits (or rolls back) all of it."""
    counts = await erase_personal_data(
        session, resident_id, personal_steps=personal_steps(forms), now=now
    )
    session.add(
        AuditLog(
            at=now,
            actor=f"resident:{resident_id}",
            action="erase",
            subject=f"resident:{resident_id}",
            details={"reports": counts.reports, "messages": counts.messages},
        )
    )
    return counts


def ask_erasure(turn: Turn) -> None:
    turn.envelope["pending"] = {"kind": ERASE}
    turn.say(erasure_question(turn.locale))


def erasure_question(locale: str) -> Ask:
    return yes_no_question(locale, ERASE, _QUESTION)


async def answer_erasure(turn: Turn, agreed: bool, forms: Mapping[str, Form]) -> None:
    """YES erases the resident's personal data; the turn loop then forgets their state."""
    if not agreed:
        turn.say(Notice(tr(turn.locale, N_("Nothing was deleted."))))
        return
    session = await turn.sql()
    counts = await erase_resident(session, forms, resident_id=turn.resident_id, now=turn.now)
    turn.forget_resident = True
    turn.envelope.clear()
    text = N_(
        "Your personal data is deleted: your contact details, your messages and the personal answers in your {reports} reports. We kept the reports without your details, and anonymous counts of messages and reports."
    )
    turn.say(Notice(tr(turn.locale, text, reports=counts.reports)))
