"""A report the city already knows about: before the form starts, the resident hears that it is
known (the official's message, in their language) and may take updates instead of filing.

When a resident chooses a service and an open incident (declared through the admin API,
``storage.models.Incident``) covers that service in an area the bot knows for them (the wards of
their latest report and of their subscriptions), the form waits behind one YES/NO question: YES
subscribes them to the incident's wards and counts a duplicate avoided; NO opens the form as
usual (they can always file). Each incident is offered once per resident's form opening.

Open incidents are few and change rarely, so they are read at most every ``ttl`` per process
(one query however many turns ask: ``conversations.periodic_read``): a service with no incident
costs a form opening no query at all.

Example::

    incidents = KnownIncidents()
    incident = await incidents.explaining(turn, "no_water")
    if incident is not None:
        incidents.ask(turn, incident, "no_water")
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from conversations.consent import yes_no_question
from conversations.periodic_read import PeriodicRead
from conversations.subscriptions import add_wards, latest_wards
from conversations.turn_context import Turn
from forms_runtime.effects import Ask, Notice
from forms_runtime.i18n import N_, tr
from storage.models import Incident, Subscription

__all__ = ["INCIDENT", "KnownIncidents", "OpenIncident"]

# The bot's own question, kept in the state envelope under "pending".
INCIDENT = "incident"
_QUESTION = N_(
    "The city already knows about this. Would you like updates instead of making a report? Reply YES for updates, or NO to report it anyway."
)
_EXPECTED = N_("Expected to be fixed by {end}.")
_SUBSCRIBED = N_("You will get updates about it. Send STOP to stop all messages.")


@dataclass(frozen=True, slots=True)
class OpenIncident:
    id: int
    services: frozenset[str]
    wards: frozenset[str]
    texts: dict[str, str]
    expected_end_at: datetime | None


class KnownIncidents:
    def __init__(self, ttl: timedelta = timedelta(seconds=30)) -> None:
        self._open: PeriodicRead[list[OpenIncident]] = PeriodicRead(every=ttl, initial=[])

    async def _current(self, turn: Turn) -> list[OpenIncident]:
        now = turn.now
        return await turn.refreshed(self._open, lambda session: _open_incidents(session, now))

    async def explaining(self, turn: Turn, service: str) -> OpenIncident | None:
        """The open incident that explains a ``service`` report in the resident's area."""
        candidates = [i for i in await self._current(turn) if service in i.services]
        if not candidates:
            return None
        session = await turn.sql()
        wards = set(await latest_wards(session, turn.resident_id))
        wards |= set(
            (
                await session.scalars(
                    select(Subscription.ward).where(Subscription.resident_id == turn.resident_id)
                )
            ).all()
        )
        found = [i for i in candidates if i.wards & wards]
        return max(found, key=lambda i: i.id) if found else None

    def ask(self, turn: Turn, incident: OpenIncident, form_id: str) -> None:
        locale = turn.locale
        told = incident.texts.get(locale) or incident.texts.get("en", "")
        if incident.expected_end_at is not None:
            end = f"{incident.expected_end_at:%Y-%m-%d %H:%M}"
            told = f"{told} {tr(locale, _EXPECTED, end=end)}".strip()
        turn.envelope["pending"] = {
            "kind": INCIDENT,
            "incident": incident.id,
            "form_id": form_id,
            "wards": sorted(incident.wards),
        }
        turn.say(Notice(told), question(locale))

    async def answer(self, turn: Turn, agreed: bool, pending: dict[str, Any]) -> str | None:
        """YES: updates instead of a report (a duplicate avoided); returns None. NO: returns
        the form to open."""
        if not agreed:
            return str(pending.get("form_id"))
        await add_wards(turn, tuple(str(w) for w in pending.get("wards", [])))
        session = await turn.sql()
        await session.execute(
            update(Incident)
            .where(Incident.id == int(pending.get("incident", 0)))
            .values(duplicates_avoided=Incident.duplicates_avoided + 1)
        )
        turn.say(Notice(tr(turn.locale, _SUBSCRIBED)))
        return None


def question(locale: str) -> Ask:
    return yes_no_question(locale, INCIDENT, _QUESTION)


async def _open_incidents(session: AsyncSession, now: datetime) -> list[OpenIncident]:
    rows = (
        await session.scalars(
            select(Incident).where(Incident.status == "open", Incident.starts_at <= now)
        )
    ).all()
    return [
        OpenIncident(
            i.id, frozenset(i.services), frozenset(i.wards), dict(i.texts), i.expected_end_at
        )
        for i in rows
    ]
