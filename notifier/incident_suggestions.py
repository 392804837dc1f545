"""Suggested incidents: the early-warning worker's cycle, and staff confirming or dismissing.

``EarlyWarning.run_once`` reads the reports stored since the last cycle (by id, in batches, a few
seconds after they are stored so that a turn still committing is not passed over), places each
in its areas (ward, suburb, settlement, a grid square for a pin), feeds them to the pure
detector (``notifier.burst_detector``) with the counters of just the cells they touch, and
writes back the counters, the detector's state and what it found, in one transaction: a crash
repeats the batch from the last stored state, so nothing is counted twice or lost. A burst
becomes an ``IncidentSuggestion`` with the reports behind it; a burst that grows adds its new
reports. The first cycle reads the last eight weeks of reports already stored as history (it suggests
nothing from reports older than a burst's hold, six hours). Demo reports (``citybot demo seed``) are
not residents' and are skipped.

Staff then ``confirm`` it (it is declared an incident with ``notifier.incidents.declare``, so the
area's subscribers are told and later reporters hear it is known; and the residents behind the
reports are told once each, in their language, that the city knows; a report made before the
confirmation but read after it is told too) or ``dismiss`` it with a reason. Neither changes what
the detector learns (its baseline comes from reports only); the next cycle closes a dismissed
suggestion's burst, so a later firing there is suggested anew.

Example::

    warning = EarlyWarning(sessionmaker, default_gazetteer(), DetectorSettings())
    await warning.run_once()        # -> reports read
    await confirm(session, suggestion, draft, actor_id=3, now=now)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from forms_runtime.gazetteer import Gazetteer
from forms_runtime.i18n import N_, tr
from notifier import incidents
from notifier.broadcasts import InvalidBroadcast
from notifier.burst_detector import (
    BurstDetector,
    BurstEvent,
    Cell,
    DetectorSettings,
    DetectorState,
    Report,
    area_keys,
)
from notifier.incidents import IncidentDraft
from notifier.outbox import enqueue
from notifier.ports import ResidentMessage
from storage.models import (
    BurstCounter,
    BurstDetectorState,
    Incident,
    IncidentSuggestion,
    Resident,
    ResidentNotification,
    Submission,
    incident_suggestion_reports,
)

__all__ = [
    "KNOWN_PURPOSE",
    "STATUSES",
    "EarlyWarning",
    "SuggestionNotFound",
    "area_label",
    "confirm",
    "dismiss",
    "get",
    "precision_by_week",
    "reports_behind",
    "standard_texts",
]

log = logging.getLogger("citybot.early_warning")

STATUSES = ("suggested", "confirmed", "dismissed")
# The notification's purpose (WhatsApp picks its template by it outside the 24-hour window).
KNOWN_PURPOSE = "incident_known"
_KNOWN = N_(
    "About your report {reference}: the city knows about this problem in your area and is "
    "working on it. Thank you for telling us."
)
_STANDARD = N_("The city knows about {service} reports in {area} and is working on it.")
_AREA_KINDS = {
    "ward": N_("ward {name}"),
    "suburb": "{name}",
    "settlement": "{name}",
    "grid": N_("the area around {name}"),
}
_MAX_REASON = 500
_STATE_ID = 1
# Reports stored less than this long ago wait for the next cycle: a turn that took its id
# earlier may still be committing, and ids must be read in order.
SETTLE = timedelta(seconds=10)


class SuggestionNotFound(LookupError):
    """No such suggestion."""


def area_label(area: str, locale: str = "en", *, where: str | None = None) -> str:
    """What an area key is called for people: "ward 9", "Khayelitsha", "the area around
    Makhaza" (``where``: a place name for a grid square, its wards otherwise)."""
    kind, _, name = area.partition(":")
    if kind == "grid":
        name = where or name
    return tr(locale, _AREA_KINDS.get(kind, "{name}"), name=name)


class EarlyWarning:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        gazetteer: Gazetteer,
        settings: DetectorSettings,
        *,
        batch_size: int = 2000,
        idle_seconds: float = 15.0,
        history: timedelta = timedelta(weeks=8),
        registry: CollectorRegistry | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.sessionmaker = sessionmaker
        self.gazetteer = gazetteer
        self.settings = settings
        self.batch_size = batch_size
        self.idle_seconds = idle_seconds
        self.history = history
        self.clock = clock
        self.suggestions = Counter(
            "citybot_incident_suggestions",
            "Incidents the early warning suggested, and staff's decisions on them, by outcome "
            "(suggested, confirmed, dismissed)",
            ["outcome"],
            registry=registry or CollectorRegistry(),
        )
        for outcome in STATUSES:
            self.suggestions.labels(outcome=outcome)

    async def run_once(self) -> int:
        """Read the next batch of reports; how many were read (0: nothing new)."""
        now = self.clock()
        async with self.sessionmaker() as session, session.begin():
            stored = await session.get(BurstDetectorState, _STATE_ID, with_for_update=True)
            fresh = stored is None
            if stored is None:
                stored = BurstDetectorState(id=_STATE_ID, state={}, updated_at=now)
                session.add(stored)
            detector = BurstDetector(self.settings, DetectorState.from_json(stored.state))
            await _set_aside_dismissed(session, detector)
            if fresh:
                # The first start learns from the last ``history`` only (a millisecond or so a
                # report: eight weeks of a large city's reports take minutes, not hours).
                first = await session.scalar(
                    select(func.min(Submission.id)).where(
                        Submission.created_at >= now - self.history
                    )
                )
                detector.state.last_report = (first or 1) - 1
            rows = (
                await session.execute(
                    select(
                        Submission.id,
                        Submission.resident_id,
                        Submission.form_id,
                        Submission.created_at,
                        Submission.ward,
                        Submission.suburb,
                        Submission.area_type,
                        Submission.precision,
                        Submission.lat,
                        Submission.lon,
                        Submission.answers,
                        Submission.demo,
                    )
                    .where(
                        Submission.id > detector.state.last_report,
                        Submission.created_at <= now - SETTLE,
                    )
                    .order_by(Submission.id)
                    .limit(self.batch_size)
                )
            ).all()
            if not rows:
                return 0
            placed = [self._placed(row) for row in rows if not row.demo]
            keys = sorted({k for report in placed for k in detector.keys_of(report)})
            counters = await _counters(session, keys)
            cells = {key: Cell.from_json(row.state) for key, row in counters.items()}
            # A burst while the worker was down is still suggested when it starts again (within
            # a burst's hold); older reports, and the first cycle's history, only teach.
            live_after = now - self.settings.hold
            events: list[BurstEvent] = []
            for report in placed:
                events += detector.observe(report, cells, live=report.at >= live_after)
            detector.state.last_report = max(detector.state.last_report, rows[-1].id)
            for key, cell in cells.items():
                row = counters.get(key)
                if row is None:
                    if not cell.level and not cell.recent:
                        continue  # a pin's neighbouring square, looked at and still empty
                    session.add(BurstCounter(key=key, state=cell.to_json(), updated_at=now))
                else:
                    row.state = cell.to_json()
                    row.updated_at = now
            stored.state = detector.state.to_json()
            stored.updated_at = now
            suggested = [
                found
                for event in events
                if (found := await self._record(session, event, now=now)) is not None
            ]
        # Counted and logged once stored: a cycle that does not commit is repeated, and would
        # count its suggestions again.
        self.suggestions.labels(outcome="suggested").inc(len(suggested))
        for found in suggested:
            log.info("incident suggested", extra={"suggestion": found.id, "service": found.service})
        return len(rows)

    def _placed(self, row: Any) -> Report:
        at = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
        pinned = row.precision in ("pin", "point") and row.lat is not None and row.lon is not None
        settlement = None
        if pinned:
            settlement = self.gazetteer.locate(row.lat, row.lon).settlement
        elif row.area_type == "informal_settlement":
            settlement = _named_place(row.answers)
        areas = area_keys(
            ward=row.ward,
            suburb=row.suburb,
            settlement=settlement,
            lat=row.lat if pinned else None,
            lon=row.lon if pinned else None,
            grid_metres=self.settings.grid_metres,
        )
        return Report(row.id, row.resident_id, row.form_id, at, areas)

    async def _record(
        self, session: AsyncSession, event: BurstEvent, *, now: datetime
    ) -> IncidentSuggestion | None:
        """Store what ``event`` found or grew; the suggestion if it is a new one."""
        joined = list(event.joined)
        facts = (
            await session.execute(
                select(Submission.id, Submission.ward, Submission.created_at).where(
                    Submission.id.in_(joined)
                )
            )
        ).all()
        if not facts:
            return None  # erased in between: nothing behind it to show
        wards = {f.ward for f in facts if f.ward}
        times = [f.created_at for f in facts]
        suggestion = await session.scalar(
            select(IncidentSuggestion).where(IncidentSuggestion.serial == event.burst.serial)
        )
        created = None
        if suggestion is None:
            if not event.found:
                return None  # grew from a burst found before this database knew it
            suggestion = IncidentSuggestion(
                serial=event.burst.serial,
                service=event.burst.service,
                area=event.burst.area[:160],
                wards=sorted(wards),
                status="suggested",
                window_count=event.count,
                expected=event.expected,
                p_value=event.p_value,
                report_count=0,
                first_report_at=min(times),
                latest_report_at=max(times),
                created_at=now,
                updated_at=now,
            )
            session.add(suggestion)
            await session.flush()
            created = suggestion
        else:
            suggestion.wards = sorted(set(suggestion.wards) | wards)
            suggestion.first_report_at = min(suggestion.first_report_at, *times)
            suggestion.latest_report_at = max(suggestion.latest_report_at, *times)
            suggestion.updated_at = now
        linked = set(
            (
                await session.scalars(
                    select(incident_suggestion_reports.c.submission_id).where(
                        incident_suggestion_reports.c.suggestion_id == suggestion.id
                    )
                )
            ).all()
        )
        new = [f.id for f in facts if f.id not in linked]
        if new:
            await session.execute(
                insert(incident_suggestion_reports),
                [{"suggestion_id": suggestion.id, "submission_id": i} for i in new],
            )
        suggestion.report_count = len(linked) + len(new)
        if new and suggestion.status == "confirmed" and suggestion.decided_at is not None:
            # Reports made before the confirmation but read after it (the worker's lag, or a
            # later firing whose window reaches back) are behind the incident too: their
            # residents are told like the others. A report made after it gets no message here:
            # the incident was already declared when it was made, and a resident starting a
            # report in its wards hears that it is known (conversations.known_incidents).
            decided = suggestion.decided_at
            late = [
                r
                for r in await reports_behind(session, suggestion.id)
                if r.id in new and r.created_at <= decided
            ]
            await _tell_behind(session, suggestion.id, late, now=now)
        return created


async def _set_aside_dismissed(session: AsyncSession, detector: BurstDetector) -> None:
    """A dismissed suggestion's burst grows no more: a new outage of the same service there
    within its hold would otherwise join a suggestion staff no longer look at."""
    serials = [b.serial for b in detector.state.open]
    if serials:
        dismissed = await session.scalars(
            select(IncidentSuggestion.serial).where(
                IncidentSuggestion.serial.in_(serials), IncidentSuggestion.status == "dismissed"
            )
        )
        detector.set_aside(set(dismissed.all()))


def _named_place(answers: Mapping[str, Any] | None) -> str | None:
    """The place a resident picked or typed (the location answer's ``place``), if any."""
    for value in (answers or {}).values():
        if isinstance(value, Mapping) and value.get("source") == "place" and value.get("place"):
            return str(value["place"])
    return None


async def _counters(session: AsyncSession, keys: Sequence[str]) -> dict[str, BurstCounter]:
    found: dict[str, BurstCounter] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        rows = await session.scalars(select(BurstCounter).where(BurstCounter.key.in_(chunk)))
        found.update({row.key: row for row in rows})
    return found


async def get(
    session: AsyncSession, suggestion_id: int, *, for_update: bool = False
) -> IncidentSuggestion:
    query = select(IncidentSuggestion).where(IncidentSuggestion.id == suggestion_id)
    if for_update:
        query = query.with_for_update()
    found = await session.scalar(query)
    if found is None:
        raise SuggestionNotFound(f"there is no suggestion {suggestion_id}")
    return found


async def reports_behind(session: AsyncSession, suggestion_id: int) -> list[Submission]:
    """The reports behind a suggestion, oldest first."""
    return list(
        (
            await session.scalars(
                select(Submission)
                .join(
                    incident_suggestion_reports,
                    incident_suggestion_reports.c.submission_id == Submission.id,
                )
                .where(incident_suggestion_reports.c.suggestion_id == suggestion_id)
                .order_by(Submission.created_at, Submission.id)
            )
        ).all()
    )


def standard_texts(
    service_title: str, area: str, locales: Iterable[str], *, where: str | None = None
) -> dict[str, str]:
    """What subscribers are told when staff confirm without their own words."""
    return {
        locale: tr(
            locale, _STANDARD, service=service_title, area=area_label(area, locale, where=where)
        )
        for locale in locales
    }


async def confirm(
    session: AsyncSession,
    suggestion: IncidentSuggestion,
    draft: IncidentDraft,
    *,
    actor_id: int,
    now: datetime,
) -> tuple[Incident, int]:
    """Declare the incident (everything a declaration does) and tell each resident behind the
    reports, once, in their language; the incident and how many residents will be told."""
    _still_open(suggestion)
    incident = await incidents.declare(session, draft, author_id=actor_id, now=now)
    suggestion.status = "confirmed"
    suggestion.incident_id = incident.id
    suggestion.decided_at = now
    suggestion.decided_by = actor_id
    suggestion.updated_at = now
    told = await _tell_behind(
        session, suggestion.id, await reports_behind(session, suggestion.id), now=now
    )
    return incident, told


async def _tell_behind(
    session: AsyncSession, suggestion_id: int, reports: Sequence[Submission], *, now: datetime
) -> int:
    """Tell each resident behind ``reports`` that the city knows, once per suggestion: a
    resident already told about one of its reports is not told again. How many were told."""
    seen = set(
        (
            await session.scalars(
                select(ResidentNotification.resident_id)
                .join(
                    incident_suggestion_reports,
                    incident_suggestion_reports.c.submission_id
                    == ResidentNotification.submission_id,
                )
                .where(
                    incident_suggestion_reports.c.suggestion_id == suggestion_id,
                    ResidentNotification.purpose == KNOWN_PURPOSE,
                )
            )
        ).all()
    )
    told = 0
    for report in reports:
        if report.resident_id is None or report.resident_id in seen or not report.channel:
            continue
        seen.add(report.resident_id)
        resident = await session.get(Resident, report.resident_id)
        if resident is None or resident.opted_out_at or resident.erased_at:
            continue
        locale = resident.locale or report.locale
        message = ResidentMessage(
            resident_id=report.resident_id,
            channel=report.channel,
            locale=locale,
            text=tr(locale, _KNOWN, reference=report.reference),
            purpose=KNOWN_PURPOSE,
            reference=report.reference,
            template_variables={"1": report.reference},
        )
        await enqueue(session, message, submission_id=report.id, now=now)
        told += 1
    return told


async def dismiss(
    session: AsyncSession,
    suggestion: IncidentSuggestion,
    *,
    reason: str,
    actor_id: int,
    now: datetime,
) -> None:
    """Set it aside with staff's reason. A dismissal teaches the detector nothing (its baseline
    comes from reports alone); the worker's next cycle only closes its burst."""
    _still_open(suggestion)
    reason = reason.strip()
    if not reason:
        raise InvalidBroadcast("say why it is dismissed (the reason is audited)")
    if len(reason) > _MAX_REASON:
        raise InvalidBroadcast(f"the reason is longer than {_MAX_REASON} characters")
    suggestion.status = "dismissed"
    suggestion.reason = reason
    suggestion.decided_at = now
    suggestion.decided_by = actor_id
    suggestion.updated_at = now


def _still_open(suggestion: IncidentSuggestion) -> None:
    if suggestion.status != "suggested":
        raise InvalidBroadcast(
            f"suggestion {suggestion.id} is already {suggestion.status}: it cannot change"
        )


async def precision_by_week(
    session: AsyncSession,
    *,
    now: datetime,
    weeks: int = 12,
    wards: frozenset[str] | None = None,
) -> list[dict[str, Any]]:
    """For each of the last ``weeks`` weeks (Monday first, UTC), the suggestions made, confirmed
    and dismissed, and the detector's precision: confirmed / suggested (None in a week with no
    suggestion; a suggestion not yet decided counts against it until it is confirmed). With
    ``wards``, only suggestions all in those wards (a ward-scoped reader's)."""
    start = (now - timedelta(days=now.weekday())).replace(
        hour=0, minute=0, second=0, microsecond=0
    ) - timedelta(weeks=weeks - 1)
    rows = (
        await session.execute(
            select(
                IncidentSuggestion.created_at, IncidentSuggestion.status, IncidentSuggestion.wards
            ).where(IncidentSuggestion.created_at >= start)
        )
    ).all()
    counts = [{"suggested": 0, "confirmed": 0, "dismissed": 0} for _ in range(weeks)]
    for created_at, status, in_wards in rows:
        if wards is not None and not set(in_wards) <= wards:
            continue
        at = created_at if created_at.tzinfo else created_at.replace(tzinfo=UTC)
        index = int((at - start).total_seconds() // (7 * 86400))
        if 0 <= index < weeks:
            counts[index]["suggested"] += 1
            if status in ("confirmed", "dismissed"):
                counts[index][status] += 1
    weekly: list[dict[str, Any]] = []
    for i, week in enumerate(counts):
        made = week["suggested"]
        weekly.append(
            {
                "week": (start + timedelta(weeks=i)).date().isoformat(),
                **week,
                "precision": round(week["confirmed"] / made, 3) if made else None,
            }
        )
    return weekly
