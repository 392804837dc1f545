"""STATUS and a reference: what became of a report.

The resident's reference (CT-7KQ4XM) finds any report; the city's own number finds only the
resident's own reports (city numbers are short and guessable). The answer is the local status at
once; when the report is with the city, the turn loop then asks the city (``turn.city_query``) and
replaces the answer with the city's word if it comes in time.

Example::

    await answer_status(turn, "CT-7KQ4XM", forms)
    turn.effects   # [Notice("Report CT-7KQ4XM (Pothole) is sent to the city. ...")]
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.turn_context import Turn
from forms_runtime.effects import Notice
from forms_runtime.i18n import N_, tr
from forms_runtime.model import Form
from storage.models import Submission

__all__ = ["STATUS_TEXTS", "answer_status", "find_report"]

STATUS_TEXTS: dict[str, str] = {
    "pending": N_("received and waiting to be sent to the city"),
    "filed": N_("sent to the city"),
    "open": N_("open: the city is working on it"),
    "acknowledged": N_("acknowledged by the city"),
    "closed": N_("closed by the city"),
    "failed": N_("delayed: we are still trying to send it to the city"),
}


async def find_report(session: AsyncSession, reference: str, resident_id: int) -> Submission | None:
    found = await session.scalar(select(Submission).where(Submission.reference == reference))
    if found is None:
        found = await session.scalar(
            select(Submission)
            .where(
                Submission.service_request_id == reference,
                Submission.resident_id == resident_id,
            )
            .limit(1)
        )
    return found


async def answer_status(turn: Turn, reference: str, forms: Mapping[str, Form]) -> None:
    found = await find_report(await turn.sql(), reference, turn.resident_id) if reference else None
    locale = turn.locale
    if found is None:
        text = N_("I cannot find a report with that reference. References look like CT-7KQ4XM.")
        turn.say(Notice(tr(locale, text)))
        return
    form = forms.get(found.form_id)
    title = tr(locale, form.title) if form else found.service_code
    status = (
        tr(locale, STATUS_TEXTS[found.status]) if found.status in STATUS_TEXTS else found.status
    )
    if found.service_request_id:
        text = N_("Report {reference} ({title}) is {status}. The city's number for it is {number}.")
        said = tr(
            locale,
            text,
            reference=found.reference,
            title=title,
            status=status,
            number=found.service_request_id,
        )
        turn.say(Notice(said))
        if found.status != "pending":
            turn.city_query = (
                len(turn.effects) - 1,
                found.reference,
                found.service_request_id,
                found.service_code,
            )
    else:
        text = N_("Report {reference} ({title}) is {status}.")
        said = tr(locale, text, reference=found.reference, title=title, status=status)
        turn.say(Notice(said))
