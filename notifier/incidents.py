"""Known incidents: declared, changed and ended, each time told to the area's subscribers.

``declare`` stores the incident and schedules a broadcast of its message to the subscribers of
its wards (on the topic of its services: a water cut reaches those who follow water news and
those who follow everything). ``change`` moves the expected end or ends it (resolved or
cancelled) and tells them again: with the official's own words when given, otherwise with a
standard text in each resident's language. A declaration is itself the official act (and
audited by the caller), so incident notices do not wait for a second person; only an emergency
is sent in quiet hours.

The conversation's side (a resident starting a report an open incident explains) is
``conversations.known_incidents``.

Example::

    incident = await declare(session, IncidentDraft.checked(title="Burst main", services=["no_water"],
                             wards=["9"], texts={"en": "No water in ward 9 until 18:00."}),
                             author_id=3, now=now)
    await change(session, incident, status="resolved", texts={}, now=later)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from forms_runtime.i18n import N_, tr
from notifier.broadcasts import CHANNELS, LOCALES, MAX_TEXT, URGENCIES, InvalidBroadcast
from storage.models import Broadcast, Incident

__all__ = [
    "STATUSES",
    "TOPIC_OF_SERVICE",
    "IncidentDraft",
    "IncidentNotFound",
    "change",
    "declare",
    "get",
]

STATUSES = ("open", "resolved", "cancelled")
# The news topic residents follow for each kind of report.
TOPIC_OF_SERVICE = {
    "no_water": "water",
    "water_leak": "water",
    "sewage": "water",
    "power_outage": "electricity",
    "streetlight": "electricity",
    "pothole": "roads",
    "refuse_missed": "refuse",
    "illegal_dumping": "refuse",
}
_RESOLVED = N_("Resolved: {title}. Thank you for your patience.")
_CANCELLED = N_("Please ignore our earlier message about {title}: it was sent in error.")
_NEW_END = N_("Update on {title}: now expected to be fixed by {end}.")


class IncidentNotFound(LookupError):
    """No such incident."""


@dataclass(frozen=True, slots=True)
class IncidentDraft:
    title: str
    services: tuple[str, ...]
    wards: tuple[str, ...]
    texts: dict[str, str]
    urgency: str
    starts_at: datetime | None
    expected_end_at: datetime | None

    @classmethod
    def checked(
        cls,
        *,
        title: str,
        services: Sequence[str],
        wards: Sequence[str],
        texts: Mapping[str, str | None],
        known_services: Sequence[str],
        urgency: str = "routine",
        starts_at: datetime | None = None,
        expected_end_at: datetime | None = None,
    ) -> IncidentDraft:
        title = title.strip()
        if not title:
            raise InvalidBroadcast("give the incident a title")
        chosen = tuple(dict.fromkeys(s.strip() for s in services if s.strip()))
        unknown = [s for s in chosen if s not in known_services]
        if not chosen or unknown:
            raise InvalidBroadcast(
                f"services are some of {', '.join(sorted(known_services))}"
                + (f" (not {unknown[0]!r})" if unknown else "")
            )
        wards = tuple(dict.fromkeys(w.strip() for w in wards if w.strip()))
        if not wards:
            raise InvalidBroadcast("name the wards the incident affects")
        cleaned = _texts(texts)
        if "en" not in cleaned:
            raise InvalidBroadcast("the English text is required (it stands in for the others)")
        if urgency not in URGENCIES:
            raise InvalidBroadcast(f"urgency is one of {', '.join(URGENCIES)}")
        if starts_at and expected_end_at and expected_end_at <= starts_at:
            raise InvalidBroadcast("it would end before it starts")
        return cls(title[:120], chosen, wards, cleaned, urgency, starts_at, expected_end_at)


def _texts(texts: Mapping[str, str | None]) -> dict[str, str]:
    cleaned = {k: v.strip() for k, v in texts.items() if v and v.strip()}
    for locale, text in cleaned.items():
        if locale not in LOCALES:
            raise InvalidBroadcast(f"no language {locale!r} (languages: {', '.join(LOCALES)})")
        if len(text) > MAX_TEXT:
            raise InvalidBroadcast(f"the {locale} text is longer than {MAX_TEXT} characters")
    return cleaned


def _topic(services: Sequence[str]) -> str:
    topics = {TOPIC_OF_SERVICE.get(s, "general") for s in services}
    return topics.pop() if len(topics) == 1 else "general"


async def declare(
    session: AsyncSession, draft: IncidentDraft, *, author_id: int, now: datetime
) -> Incident:
    incident = Incident(
        author_id=author_id,
        title=draft.title,
        services=list(draft.services),
        topic=_topic(draft.services),
        wards=list(draft.wards),
        texts=draft.texts,
        urgency=draft.urgency,
        status="open",
        starts_at=draft.starts_at or now,
        expected_end_at=draft.expected_end_at,
        created_at=now,
        updated_at=now,
    )
    session.add(incident)
    await session.flush()
    _tell(session, incident, draft.texts, author_id=author_id, now=now)
    return incident


async def get(session: AsyncSession, incident_id: int, *, for_update: bool = False) -> Incident:
    query = select(Incident).where(Incident.id == incident_id)
    if for_update:
        query = query.with_for_update()
    found = await session.scalar(query)
    if found is None:
        raise IncidentNotFound(f"there is no incident {incident_id}")
    return found


async def change(
    session: AsyncSession,
    incident: Incident,
    *,
    actor_id: int,
    now: datetime,
    status: str | None = None,
    expected_end_at: datetime | None = None,
    texts: Mapping[str, str | None] | None = None,
) -> dict[str, object]:
    """Change what is known and tell the subscribers; returns what changed (for the audit)."""
    if incident.status != "open":
        raise InvalidBroadcast(f"incident {incident.id} is {incident.status}: it cannot change")
    if status is not None and status not in STATUSES:
        raise InvalidBroadcast(f"status is one of {', '.join(STATUSES)}")
    own = _texts(texts or {})
    if own and "en" not in own:
        raise InvalidBroadcast("the English text is required (it stands in for the others)")
    changed: dict[str, object] = {}
    if expected_end_at is not None and expected_end_at != incident.expected_end_at:
        changed["expected_end_at"] = expected_end_at.isoformat()
        incident.expected_end_at = expected_end_at
    if status is not None and status != incident.status:
        changed["status"] = status
        incident.status = status
        if status != "open":
            incident.ended_at = now
    if not changed and not own:
        raise InvalidBroadcast("nothing to change: give a status, an expected end or a message")
    incident.updated_at = now
    if incident.status != "open":
        # Nothing still waiting to go out about it may say the old thing.
        await session.execute(
            update(Broadcast)
            .where(
                Broadcast.incident_id == incident.id,
                Broadcast.state.in_(("scheduled", "awaiting_approval")),
            )
            .values(state="cancelled", cancelled_at=now, updated_at=now)
        )
    _tell(session, incident, own or _standard(incident, changed), author_id=actor_id, now=now)
    return changed


def _standard(incident: Incident, changed: Mapping[str, object]) -> dict[str, str]:
    """The standard update in every language (the title is the official's own words)."""
    if incident.status == "resolved":
        template = _RESOLVED
    elif incident.status == "cancelled":
        template = _CANCELLED
    else:
        template = _NEW_END
    end = f"{incident.expected_end_at:%Y-%m-%d %H:%M}" if incident.expected_end_at else ""
    return {locale: tr(locale, template, title=incident.title, end=end) for locale in LOCALES}


def _tell(
    session: AsyncSession,
    incident: Incident,
    texts: Mapping[str, str],
    *,
    author_id: int,
    now: datetime,
) -> None:
    """A broadcast to the incident's wards, scheduled now (the ``broadcasts`` worker sends it)."""
    session.add(
        Broadcast(
            author_id=author_id,
            title=f"Incident: {incident.title}"[:120],
            texts=dict(texts),
            target={"wards": list(incident.wards), "everyone": False},
            topic=incident.topic,
            channels=list(CHANNELS),
            urgency=incident.urgency,
            state="scheduled",
            incident_id=incident.id,
            expires_at=incident.expected_end_at if incident.status == "open" else None,
            created_at=now,
            updated_at=now,
        )
    )
