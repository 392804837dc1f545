"""The early-warning detector, pure: reports go in one at a time, bursts come out.

Every report counts in each of its areas (``ward:9``, ``suburb:Khayelitsha``,
``settlement:Makhaza``, and for a pin ``grid:-13968:5577``, a square of ``grid_metres``) for its
service. In each of those cells the distinct residents of the last ``window`` are tested against
the cell's usual rate for that time of the week (``notifier.burst_statistics``): a Poisson tail
under ``alpha`` is a burst. ``alpha`` is the city's ``false_alarms_per_day`` shared out over the
tests the detector makes in a day (a Bonferroni split: correlated tests make it cautious, never
lax), so the city sets how many false suggestions a day it will read, not a p-value.

A burst stays open ``hold`` after its latest firing, unless staff dismiss its suggestion
(``set_aside``). A later firing of the same service joins it
when it fires where the burst's reports are (a grid square its pins are in, the settlement they
named, their ward or suburb), or when most of the window's reports are already the burst's: a
ward, its settlement and a pin's squares firing together, or one after the other as an outage
goes on, are one burst, so one outage is one suggestion, which grows by the reports of each
firing. (Two outages of one service in one ward within ``hold`` are then one suggestion: staff
read its reports.)

A pin is tested in its square with the eight around it (pins of one outage scatter over a few
squares). The test is of the other residents in the window, ``count - 1``: the window ends at a
report, so that one is certain.

The baseline learns from every report, after the report's own test, whatever staff later decide
about a suggestion: a dismissal changes nothing here (the detector learns nothing wrong from it),
and a burst that was real fades from the baseline with the half-life like any other week.

Counts are weighted ``2 ** (days since history began / half_life)`` instead of decaying every
count at every report: ratios (the seasonal shape) need no decay at all, and a level is brought
to "now" once, when it is read. Each report costs a few dictionary look-ups, so the worker keeps
the counters of the cells it touches and never rescans. The state is plain JSON-able data, so the
worker stores it and a restarted worker goes on where it stopped.

The first ``warm_up`` of history only learns: a city with no history gets no suggestions until
the detector knows what is usual.

Example::

    detector = BurstDetector(DetectorSettings(), DetectorState())
    cells: dict[str, Cell] = {}
    for report in reports:                       # oldest first
        for event in detector.observe(report, cells):
            print(event.found, event.burst.area, event.count, event.expected)
"""

from __future__ import annotations

import math
from collections.abc import Collection, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from notifier.burst_statistics import (
    HOURS_IN_WEEK,
    exposure_weeks,
    hour_of_week,
    poisson_tail,
    window_share,
)

__all__ = [
    "AREA_KINDS",
    "BurstDetector",
    "BurstEvent",
    "Cell",
    "DetectorSettings",
    "DetectorState",
    "OpenBurst",
    "Report",
    "area_keys",
    "cell_key",
]

AREA_KINDS = ("ward", "suburb", "settlement", "grid")
# Metres in a degree of latitude; a grid square's east-west side uses the city's latitude (Cape
# Town's, about 34 degrees south: the squares are a few metres out at the city's far edges).
_METRES_PER_DEGREE = 111_320.0
_CITY_LATITUDE = -34.0


@dataclass(frozen=True, slots=True)
class DetectorSettings:
    window: timedelta = timedelta(minutes=20)
    # How many false suggestions a day the city accepts, across the city (the default: one).
    false_alarms_per_day: float = 1.0
    half_life_days: float = 56.0
    # Fewer distinct residents than this in the window is never a burst (one person's five
    # reports are one).
    min_residents: int = 3
    # An unseen place is taken to get this many reports of a service a week (a floor, so a
    # square of 300 m with no history expects little, not nothing).
    prior_per_week: float = 0.2
    hold: timedelta = timedelta(hours=6)
    warm_up: timedelta = timedelta(days=7)
    grid_metres: float = 250.0

    def __post_init__(self) -> None:
        if self.false_alarms_per_day <= 0:
            raise ValueError("false_alarms_per_day must be above 0")
        if self.window <= timedelta(0) or self.half_life_days <= 0 or self.min_residents < 1:
            raise ValueError("window, half-life and min_residents must be positive")


@dataclass(frozen=True, slots=True)
class Report:
    id: int
    resident: int | None
    service: str
    at: datetime
    areas: tuple[str, ...]


def area_keys(
    *,
    ward: str | None,
    suburb: str | None,
    settlement: str | None,
    lat: float | None,
    lon: float | None,
    grid_metres: float = 250.0,
) -> tuple[str, ...]:
    """The areas a report counts in (only a located point has a grid square)."""
    keys = []
    if ward:
        keys.append(f"ward:{ward}")
    if suburb:
        keys.append(f"suburb:{suburb}")
    if settlement:
        keys.append(f"settlement:{settlement}")
    if lat is not None and lon is not None:
        row = math.floor(lat * _METRES_PER_DEGREE / grid_metres)
        east = _METRES_PER_DEGREE * math.cos(math.radians(_CITY_LATITUDE))
        col = math.floor(lon * east / grid_metres)
        keys.append(f"grid:{row}:{col}")
    return tuple(keys)


def cell_key(service: str, area: str) -> str:
    return f"{service}|{area}"


def _neighbours(area: str) -> list[str]:
    """A grid square is tested with the eight around it (pins near an outage scatter over a
    few squares); other areas alone."""
    if not area.startswith("grid:"):
        return []
    _, row, col = area.split(":")
    r, c = int(row), int(col)
    return [f"grid:{r + dr}:{c + dc}" for dr in (-1, 0, 1) for dc in (-1, 0, 1) if dr or dc]


@dataclass(slots=True)
class Cell:
    """One service in one area: its weighted count of reports (the level) and the last
    window's reports as ``[seconds since epoch, resident or -report id, report id]``."""

    level: float = 0.0
    recent: list[list[float]] = field(default_factory=list)
    tested_until: float = 0.0  # seconds since epoch: a report before then is the same test

    def to_json(self) -> dict[str, Any]:
        return {"level": self.level, "recent": self.recent, "tested_until": self.tested_until}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Cell:
        return cls(
            float(data.get("level", 0.0)),
            [list(r) for r in data.get("recent", [])],
            float(data.get("tested_until", 0.0)),
        )


@dataclass(slots=True)
class OpenBurst:
    serial: int
    service: str
    area: str  # the area that fired first: the suggestion's name
    areas: list[str]  # the areas that fired
    reports: list[int]
    latest: float  # seconds since epoch of its latest firing
    places: list[str] = field(default_factory=list)  # every area of its reports

    def to_json(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "service": self.service,
            "area": self.area,
            "areas": self.areas,
            "reports": self.reports,
            "latest": self.latest,
            "places": self.places,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OpenBurst:
        return cls(
            int(data["serial"]),
            str(data["service"]),
            str(data["area"]),
            [str(a) for a in data["areas"]],
            [int(r) for r in data["reports"]],
            float(data["latest"]),
            [str(a) for a in data.get("places", [])],
        )


@dataclass(slots=True)
class DetectorState:
    """Everything but the cells: where history began, the seasonal shapes, the tests made,
    the open bursts and the last report seen."""

    started: float | None = None  # seconds since epoch of the first report
    profiles: dict[str, list[float]] = field(default_factory=dict)
    tests: float = 0.0
    scale_days: float = 0.0  # weights are 2 ** ((day - scale_days) / half-life)
    next_serial: int = 1
    open: list[OpenBurst] = field(default_factory=list)
    last_report: int = 0
    # The last window's reports, city-wide, as [seconds since epoch, id, areas...]: what a
    # burst's reports' areas are when it is found.
    window: list[list[Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "profiles": self.profiles,
            "tests": self.tests,
            "scale_days": self.scale_days,
            "next_serial": self.next_serial,
            "open": [b.to_json() for b in self.open],
            "last_report": self.last_report,
            "window": self.window,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DetectorState:
        return cls(
            started=data.get("started"),
            profiles={k: [float(x) for x in v] for k, v in data.get("profiles", {}).items()},
            tests=float(data.get("tests", 0.0)),
            scale_days=float(data.get("scale_days", 0.0)),
            next_serial=int(data.get("next_serial", 1)),
            open=[OpenBurst.from_json(b) for b in data.get("open", [])],
            last_report=int(data.get("last_report", 0)),
            window=[list(w) for w in data.get("window", [])],
        )


@dataclass(frozen=True, slots=True)
class BurstEvent:
    """A burst found (``found``) or grown: the reports that joined it now, and at a firing the
    count against its expectation."""

    found: bool
    burst: OpenBurst
    joined: tuple[int, ...]
    count: int = 0
    expected: float = 0.0
    p_value: float = 1.0


class BurstDetector:
    def __init__(self, settings: DetectorSettings, state: DetectorState) -> None:
        self.settings = settings
        self.state = state

    def set_aside(self, serials: Collection[int]) -> None:
        """Close these open bursts (staff dismissed their suggestions): a later firing there is
        a new burst, shown to staff again, not more reports quietly added to one they have set
        aside. Nothing else changes: the baseline learns from reports alone."""
        self.state.open = [b for b in self.state.open if b.serial not in serials]

    def keys_of(self, report: Report) -> list[str]:
        """The cells ``observe`` reads and writes for ``report`` (to load them first)."""
        return [
            cell_key(report.service, a) for area in report.areas for a in (area, *_neighbours(area))
        ]

    def observe(
        self, report: Report, cells: MutableMapping[str, Cell], *, live: bool = True
    ) -> list[BurstEvent]:
        """Count ``report`` (given oldest first) in its cells; the bursts it makes or grows.
        ``live=False`` learns without suggesting (history older than a window)."""
        s, state = self.settings, self.state
        now = report.at.timestamp()
        if state.started is None:
            state.started = now
            state.scale_days = now / 86400.0
        state.last_report = max(state.last_report, report.id)
        weight = self._weight(now)
        history_days = (now - state.started) / 86400.0
        warm = live and history_days >= s.warm_up.total_seconds() / 86400.0
        horizon = now - s.window.total_seconds()
        profile = state.profiles.setdefault(report.service, [0.0] * HOURS_IN_WEEK)
        state.open = [b for b in state.open if b.latest >= now - s.hold.total_seconds()]
        state.window = [w for w in state.window if w[0] > horizon]
        state.window.append([now, report.id, *report.areas])
        events: list[BurstEvent] = []
        who = report.resident if report.resident is not None else -report.id
        for area in report.areas:
            cell = cells.setdefault(cell_key(report.service, area), Cell())
            cell.recent.append([now, float(who), float(report.id)])
            tested = [area, *_neighbours(area)]
            block = [cells.setdefault(cell_key(report.service, a), Cell()) for a in tested]
            for member in block:
                member.recent = [r for r in member.recent if r[0] > horizon]
            # Tests are counted through the warm-up too, so the first live day's alpha is
            # shared over a day's real number of tests.
            fired = self._test(report, tested, block, profile, history_days, weight, live=warm)
            if fired is not None:
                events.append(fired)
            cell.level += weight
        profile[hour_of_week(report.at)] += weight
        return events

    def _weight(self, now: float) -> float:
        # Grows without end, but a float holds 2 ** 1000: some 150 years of a 56-day half-life.
        days = now / 86400.0 - self.state.scale_days
        return float(2.0 ** (days / self.settings.half_life_days))

    def _places(self, ids: list[int]) -> list[str]:
        wanted = set(ids)
        places: dict[str, None] = {}
        for entry in self.state.window:
            if entry[1] in wanted:
                places.update(dict.fromkeys(str(a) for a in entry[2:]))
        return list(places)

    def _test(
        self,
        report: Report,
        tested: list[str],
        block: list[Cell],
        profile: list[float],
        history_days: float,
        weight: float,
        *,
        live: bool,
    ) -> BurstEvent | None:
        s, state = self.settings, self.state
        # The city's false alarms are shared over the tests of a day. A cell's reports within
        # one window test nearly the same count, so they count as one test: what is counted is
        # the windows in which a cell had a report at all.
        now = report.at.timestamp()
        if now >= block[0].tested_until:
            state.tests += weight
            block[0].tested_until = now + s.window.total_seconds()
        recent = [r for cell in block for r in cell.recent]
        count = len({r[1] for r in recent})
        if not live or count < s.min_residents:
            return None
        area = tested[0]
        exposure = max(exposure_weeks(history_days, half_life_days=s.half_life_days), 1.0)
        level = sum(cell.level for cell in block) / weight  # the weighted count, brought to now
        expected = (
            (level + s.prior_per_week)
            / exposure
            * window_share(profile, report.at.astimezone(UTC), s.window)
        )
        tests_per_day = max(state.tests / weight / (exposure * 7.0), 1.0)
        alpha = s.false_alarms_per_day / tests_per_day
        # The window ends at a report, so one report is certain: the test is whether the
        # others, ``count - 1``, are unusual (testing ``count`` would find a burst wherever
        # three reports meet in a quiet place).
        p_value = poisson_tail(count - 1, expected)
        if p_value >= alpha:
            return None
        ids = sorted({int(r[2]) for r in recent})
        places = self._places(ids)
        for burst in state.open:
            # The same outage: it fires where its reports are (a square its pins are in, the
            # settlement they named, their ward), or most of this window is already its own.
            shared = len(set(burst.reports) & set(ids))
            if burst.service == report.service and (area in burst.places or shared * 2 >= len(ids)):
                new = [i for i in ids if i not in burst.reports]
                if not new:
                    return None
                burst.reports.extend(new)
                burst.areas.extend(a for a in tested if a not in burst.areas)
                burst.places.extend(a for a in places if a not in burst.places)
                burst.latest = now
                return BurstEvent(False, burst, tuple(new), count, expected, p_value)
        burst = OpenBurst(state.next_serial, report.service, area, list(tested), ids, now, places)
        state.next_serial += 1
        state.open.append(burst)
        return BurstEvent(True, burst, tuple(ids), count, expected, p_value)
