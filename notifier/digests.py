"""The daily digest of reports: what happened in an area since yesterday's digest, as FixMyStreet's
local alerts give it.

A digest covers one local day up to the digest time (``DigestSchedule``: 18:00 in the city's
time zone by default, so the digest of 4 December is what was reported or changed from 18:00 on
the 3rd to 18:00 on the 4th). Its content is the area's **new reports** (counted per service)
and **status changes** (counted per status), with their reference numbers as far as they fit:

* a ward alert ("Khayelitsha", "ward 94") takes the reports whose main ward is one of its wards;
* a pin alert takes the reports whose point lies within its radius (reports without a point,
  typed as a street or suburb, are not placed closely enough for it).

Residents read it in their language within their channel's budget (on SMS three segments, as a
broadcast: the counts always, the references while they fit, then "and N more"), with the line
saying why they got it and how to stop it. Ward councillors' offices read the same digest for a
ward through the admin API (``GET /api/v1/digests``). Neither carries personal data: services,
statuses, counts and reference numbers only.

Sending, once per (alert, day), is ``notifier.digest_sending``.

Example::

    schedule = DigestSchedule(at=time(18), zone="Africa/Johannesburg")
    day = schedule.due_day(now)                      # the latest digest time that has passed
    async with sessionmaker() as session:
        events = await day_events(session, *schedule.window(day))
    digest = Digest.of(events, day=day, place="ward 94", wards=("94",))
    render(digest, "zu", "sms", titles)              # "Imibiko e-ward 94, 4 Dis: ..."
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_date
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from forms_runtime.gazetteer.geometry import METRES_PER_DEGREE, metres_between
from forms_runtime.i18n import N_, tr
from forms_runtime.sms import segments, to_gsm7
from notifier.broadcasts import MAX_TEXT, SMS_BUDGET, digest_footer
from storage.models import RequestStatusChange, Submission

__all__ = [
    "Digest",
    "DigestSchedule",
    "Event",
    "EventIndex",
    "day_events",
    "render",
    "shown_place",
]

_HEAD = N_("Reports in {place}, {date}:")
_NEW = N_("New reports: {count}{services}.")
_CHANGED = N_("Status changes: {count} ({statuses}).")
_REFERENCES = N_("Ref: {references}")
_MORE = N_("and {count} more")
_PIN = N_("your pin")
_STATUSES = {"open": N_("open"), "closed": N_("closed")}


@dataclass(frozen=True, slots=True)
class DigestSchedule:
    """When the day's digest is due: ``at`` local time in ``zone``."""

    at: time = time(18, 0)
    zone: str = "Africa/Johannesburg"

    def moment(self, day: date) -> datetime:
        """The digest time of ``day`` (aware, in the city's zone)."""
        return datetime.combine(day, self.at, tzinfo=ZoneInfo(self.zone))

    def due_day(self, now: datetime) -> date:
        """The day of the latest digest time at or before ``now``."""
        local = now.astimezone(ZoneInfo(self.zone))
        today = local.date()
        return today if local >= self.moment(today) else today - timedelta(days=1)

    def window(self, day: date) -> tuple[datetime, datetime]:
        """What the digest of ``day`` covers: from the day before's digest time to its own."""
        return self.moment(day - timedelta(days=1)), self.moment(day)


@dataclass(frozen=True, slots=True)
class Event:
    """A report that was made (``status`` None) or changed status in the window."""

    reference: str
    service: str
    status: str | None
    ward: str | None
    lat: float | None
    lon: float | None


async def day_events(
    session: AsyncSession, start: datetime, end: datetime, *, ward: str | None = None
) -> list[Event]:
    """The new reports and status changes from ``start`` up to ``end`` (of one ward, if given),
    oldest first. The first sighting of a report at the city is not a change (it is the report
    being filed, which "new" covers)."""
    made = select(
        Submission.reference,
        Submission.form_id,
        Submission.ward,
        Submission.lat,
        Submission.lon,
    ).where(Submission.created_at >= start, Submission.created_at < end)
    changed = (
        select(
            Submission.reference,
            Submission.form_id,
            RequestStatusChange.status,
            Submission.ward,
            Submission.lat,
            Submission.lon,
        )
        .join(Submission, Submission.id == RequestStatusChange.submission_id)
        .where(
            RequestStatusChange.observed_at >= start,
            RequestStatusChange.observed_at < end,
            RequestStatusChange.notify_state != "acknowledged",
        )
    )
    if ward is not None:
        made, changed = made.where(Submission.ward == ward), changed.where(Submission.ward == ward)
    events = [
        Event(ref, service, None, w, lat, lon)
        for ref, service, w, lat, lon in await session.execute(made.order_by(Submission.id))
    ]
    events.extend(
        Event(ref, service, status, w, lat, lon)
        for ref, service, status, w, lat, lon in await session.execute(
            changed.order_by(RequestStatusChange.id)
        )
    )
    return events


class EventIndex:
    """A day's events found by area without a pass over all of them: by ward, and by latitude
    band for pins (the fan-out asks once per distinct area, and a city has many pins)."""

    def __init__(self, events: Sequence[Event]) -> None:
        self._by_ward: dict[str | None, list[int]] = {}
        for position, event in enumerate(events):
            self._by_ward.setdefault(event.ward, []).append(position)
        placed = sorted((e.lat, position) for position, e in enumerate(events) if e.lat is not None)
        self._lats = [lat for lat, _ in placed]
        self._placed = [position for _, position in placed]
        self._events = list(events)

    def in_wards(self, wards: Sequence[str]) -> list[Event]:
        chosen = sorted({p for w in set(wards) for p in self._by_ward.get(w, ())})
        return [self._events[p] for p in chosen]

    def near(self, lat: float, radius_m: float) -> list[Event]:
        """The events whose latitude is within ``radius_m`` of ``lat`` (``Digest.of`` then
        measures the distance)."""
        band = radius_m / METRES_PER_DEGREE
        low, high = bisect_left(self._lats, lat - band), bisect_right(self._lats, lat + band)
        return [self._events[p] for p in sorted(self._placed[low:high])]

    def of_area(self, wards: Sequence[str], pin: tuple[float, float, float] | None) -> list[Event]:
        return self.near(pin[0], pin[2]) if pin is not None else self.in_wards(wards)


@dataclass(frozen=True, slots=True)
class Digest:
    """One area's digest of one day."""

    place: str
    day: date
    new: tuple[Event, ...]
    changed: tuple[Event, ...]

    @classmethod
    def of(
        cls,
        events: Sequence[Event],
        *,
        day: date,
        place: str,
        wards: Sequence[str] = (),
        pin: tuple[float, float, float] | None = None,
    ) -> Digest:
        """The events of an area: its ``wards``, or within a ``pin``'s (lat, lon, radius_m)."""
        if pin is not None:
            lat, lon, radius = pin

            def inside(e: Event) -> bool:
                return (
                    e.lat is not None
                    and e.lon is not None
                    and metres_between(lat, lon, e.lat, e.lon) <= radius
                )
        else:
            chosen = frozenset(wards)

            def inside(e: Event) -> bool:
                return e.ward in chosen

        ours = [e for e in events if inside(e)]
        return cls(
            place=place,
            day=day,
            new=tuple(e for e in ours if e.status is None),
            changed=tuple(e for e in ours if e.status is not None),
        )

    @property
    def empty(self) -> bool:
        return not self.new and not self.changed

    def new_by_service(self) -> list[tuple[str, int]]:
        """(service, count), the most reported first."""
        return Counter(e.service for e in self.new).most_common()

    def changes_by_status(self) -> list[tuple[str, int]]:
        return Counter(e.status or "" for e in self.changed).most_common()

    def references(self) -> list[str]:
        """Each reference once: the new reports first, then the changed ones."""
        return list(dict.fromkeys(e.reference for e in (*self.new, *self.changed)))


def shown_place(label: str, locale: str) -> str:
    """An alert's label as the resident reads it ("your pin" for a pin's coordinates)."""
    return tr(locale, _PIN) if label.startswith("pin ") else label


def fits(channel: str) -> Callable[[str], bool]:
    """The channel's budget for one message: three SMS segments, or ``MAX_TEXT`` characters."""
    if channel == "sms":
        return lambda text: segments(to_gsm7(text)) <= SMS_BUDGET
    return lambda text: len(text) <= MAX_TEXT


def render(digest: Digest, locale: str, channel: str, titles: Mapping[str, str]) -> str:
    """The digest as the resident reads it: the counts always, then as many services and
    references as the channel's budget allows, each list ending "and N more" when cut."""
    within = fits(channel)
    services = [
        f"{count} {tr(locale, titles.get(service, service))}"
        for service, count in digest.new_by_service()
    ]
    references = digest.references()
    place = shown_place(digest.place, locale)
    head = tr(locale, _HEAD, place=place, date=format_date(digest.day, "d MMM", locale=locale))

    def compose(shown_services: int, shown_references: int) -> str:
        lines = [head]
        if digest.new:
            listed = _listed(locale, services, shown_services)
            lines.append(
                tr(
                    locale,
                    _NEW,
                    count=len(digest.new),
                    services=f" ({listed})" if listed else "",
                )
            )
        if digest.changed:
            statuses = ", ".join(
                f"{n} {tr(locale, _STATUSES[s]) if s in _STATUSES else s}"
                for s, n in digest.changes_by_status()
            )
            lines.append(tr(locale, _CHANGED, count=len(digest.changed), statuses=statuses))
        if shown_references:
            listed = _listed(locale, references, shown_references)
            lines.append(tr(locale, _REFERENCES, references=listed))
        lines.append(digest_footer(locale, place))
        return "\n".join(lines)

    chosen_services = _most(lambda k: within(compose(k, 0)), len(services))
    chosen_references = _most(lambda k: within(compose(chosen_services, k)), len(references))
    return compose(chosen_services, chosen_references)


def _listed(locale: str, items: Sequence[str], shown: int) -> str:
    listed = ", ".join(items[:shown])
    hidden = len(items) - shown
    if shown and hidden:
        listed += " " + tr(locale, _MORE, count=hidden)
    return listed


def _most(ok: Callable[[int], bool], available: int) -> int:
    """A k up to ``available`` for which ``ok(k)`` holds (0 when none does), found by binary
    search: the largest one, as the text grows with k (an "and N more" a little longer than the
    item it stands for can make it not quite the largest; it still fits). The fan-out renders
    thousands of areas, so each render tries a few lengths, not all."""
    low, high = 0, available
    while low < high:
        middle = (low + high + 1) // 2
        if ok(middle):
            low = middle
        else:
            high = middle - 1
    return low
