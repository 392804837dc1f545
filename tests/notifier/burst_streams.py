"""Synthetic city traffic with known outages, over the real wards, and its replay through the
early-warning detector (the CI tests and bench/early_warning.py share them).

Background reports come as a Poisson process with the city's day (quiet at night, busy in the
morning and late afternoon, quieter at weekends), spread over the gazetteer's suburbs, towns and
informal settlements (some places far busier than others), in the demo data's mix of services.
Residents pin 60% of them (scattered around the place, placed by the gazetteer like a real pin)
and name the place for the rest. An outage is a service failing at one place: from its start,
reports come at 18 to 45 an hour (the issue's example, twelve in forty minutes, is the
slowest), fading over one to three hours, half of them pinned near it.

``replay`` runs a stream through ``BurstDetector`` as the worker does and scores it: an outage is
found by the first suggestion holding three of its reports (or made mostly of them), and a
suggestion holding no outage that way is false. Outages start with the day (residents notice
and report them when awake), anywhere in the chosen wards.

Example::

    stream = city_stream(days=14, reports_per_day=10_000, outages_per_day=3, seed=1)
    outcome = replay(stream, DetectorSettings(), evaluate_after=timedelta(days=7))
    outcome.recall(within=timedelta(minutes=30)), outcome.false_per_day
"""

from __future__ import annotations

import math
import random
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from forms_runtime.gazetteer import Gazetteer, default_gazetteer
from forms_runtime.gazetteer.places import Place
from notifier.burst_detector import (
    BurstDetector,
    Cell,
    DetectorSettings,
    DetectorState,
    Report,
    area_keys,
)

__all__ = ["Outage", "Outcome", "Stream", "city_stream", "replay"]

# Reports by local hour (Cape Town, UTC+2 all year), relative.
_DAY = (
    0.15, 0.1, 0.08, 0.08, 0.12, 0.3, 0.7, 1.2, 1.5, 1.5, 1.4, 1.3,
    1.2, 1.2, 1.2, 1.2, 1.3, 1.4, 1.4, 1.2, 1.0, 0.7, 0.45, 0.25,
)  # fmt: skip
_WEEKEND = 0.8
_LOCAL = timedelta(hours=2)
_SERVICES = (
    ("pothole", 20),
    ("water_leak", 16),
    ("no_water", 10),
    ("sewage", 12),
    ("power_outage", 12),
    ("streetlight", 10),
    ("refuse_missed", 10),
    ("illegal_dumping", 8),
)
_OUTAGE_SERVICES = ("no_water", "power_outage", "sewage", "water_leak")
START = datetime(2026, 9, 7, tzinfo=UTC)  # a Monday


@dataclass
class Outage:
    service: str
    place: str
    start: datetime
    reports: set[int] = field(default_factory=set)


@dataclass
class Stream:
    reports: list[Report]
    outages: list[Outage]
    days: int


def _hour_rate(at: datetime, per_day: float) -> float:
    local = at + _LOCAL
    shape = _DAY[local.hour] / (sum(_DAY) / 24)
    week = _WEEKEND if local.weekday() >= 5 else 1.0
    return per_day / 24 * shape * week


def _poisson(rng: random.Random, mean: float) -> int:
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    # Knuth's method, for small means.
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


class _City:
    def __init__(self, gazetteer: Gazetteer, rng: random.Random, wards: int | None) -> None:
        self.gazetteer = gazetteer
        places = [p for p in gazetteer.places if p.lat is not None and p.wards]
        if wards is not None:
            chosen = set(rng.sample(sorted({p.wards[0] for p in places}), wards))
            places = [p for p in places if p.wards[0] in chosen]
        self.places = places
        # Some places are far busier than others.
        self.weights = [rng.lognormvariate(0, 1) for _ in places]

    def report(
        self,
        rng: random.Random,
        number: int,
        service: str,
        at: datetime,
        place: Place,
        *,
        pin_share: float,
        scatter: float,
    ) -> Report:
        assert place.lat is not None and place.lon is not None
        suburb = place.town or place.name if place.kind == "informal_settlement" else place.name
        if rng.random() < pin_share:
            lat = place.lat + rng.gauss(0, scatter) / 111_320
            lon = place.lon + rng.gauss(0, scatter) / (111_320 * math.cos(math.radians(place.lat)))
            found = self.gazetteer.locate(lat, lon)
            if found.ward is not None:
                areas = area_keys(
                    ward=found.ward,
                    suburb=suburb,
                    settlement=found.settlement,
                    lat=lat,
                    lon=lon,
                )
                return Report(number, number, service, at, areas)
        settlement = place.name if place.kind == "informal_settlement" else None
        areas = area_keys(
            ward=place.wards[0], suburb=suburb, settlement=settlement, lat=None, lon=None
        )
        return Report(number, number, service, at, areas)


def city_stream(
    *,
    days: int,
    reports_per_day: float,
    outages_per_day: float,
    seed: int,
    wards: int | None = None,
    gazetteer: Gazetteer | None = None,
) -> Stream:
    """``days`` of traffic from START, over every ward (or ``wards`` of them, chosen at random,
    with ``reports_per_day`` meant for them)."""
    rng = random.Random(seed)
    city = _City(gazetteer or default_gazetteer(), rng, wards)
    services, service_weights = zip(*_SERVICES, strict=True)
    timed: list[tuple[datetime, str, Place, bool]] = []
    for hour in range(days * 24):
        begins = START + timedelta(hours=hour)
        for _ in range(_poisson(rng, _hour_rate(begins, reports_per_day))):
            at = begins + timedelta(seconds=rng.uniform(0, 3600))
            place = rng.choices(city.places, weights=city.weights)[0]
            timed.append((at, rng.choices(services, weights=service_weights)[0], place, False))
    outages: list[Outage] = []
    for hour in range(days * 24):
        begins = START + timedelta(hours=hour)
        # An outage starts, as far as anyone can know, when residents notice it: with the day
        # (a main that bursts at 3 a.m. is reported when people wake and find no water).
        local_hour = (begins + _LOCAL).hour
        if rng.random() < outages_per_day / 24 * _DAY[local_hour] / (sum(_DAY) / 24):
            start = begins + timedelta(seconds=rng.uniform(0, 3600))
            place = rng.choice(city.places)
            outage = Outage(rng.choice(_OUTAGE_SERVICES), place.name, start)
            outages.append(outage)
            peak, fade = rng.uniform(18, 45), rng.uniform(1, 3)
            at = start
            while at < start + timedelta(hours=fade * 3):
                elapsed = (at - start).total_seconds() / 3600
                rate = peak * math.exp(-elapsed / fade)
                at += timedelta(hours=rng.expovariate(rate))
                timed.append((at, outage.service, place, True))
    timed.sort(key=lambda t: t[0])
    reports: list[Report] = []
    for number, (at, service, place, outage_report) in enumerate(timed, start=1):
        if outage_report:
            # Pins where the affected residents live: in the settlement, or a suburb's streets.
            scatter = 150 if place.kind == "informal_settlement" else 400
            report = city.report(rng, number, service, at, place, pin_share=0.5, scatter=scatter)
            owner = next(
                o
                for o in reversed(outages)
                if o.place == place.name and o.service == service and o.start <= at
            )
            owner.reports.add(number)
        else:
            scatter = 150 if place.kind == "informal_settlement" else 1500
            report = city.report(rng, number, service, at, place, pin_share=0.6, scatter=scatter)
        reports.append(report)
    return Stream(reports, outages, days)


@dataclass
class Outcome:
    outages: list[Outage]
    delays: dict[int, timedelta]  # outage index -> from its start to its suggestion
    false_suggestions: list[tuple[datetime, str]]
    days: float
    suggestions: int

    def recall(self, within: timedelta) -> float:
        if not self.outages:
            return 1.0
        found = sum(1 for d in self.delays.values() if d <= within)
        return found / len(self.outages)

    @property
    def false_per_day(self) -> float:
        return len(self.false_suggestions) / self.days

    @property
    def median_delay(self) -> timedelta | None:
        if not self.delays:
            return None
        return timedelta(seconds=statistics.median(d.total_seconds() for d in self.delays.values()))


def replay(stream: Stream, settings: DetectorSettings, *, evaluate_after: timedelta) -> Outcome:
    """Run the stream through the detector; score the outages and suggestions after
    ``evaluate_after`` (the history before it only teaches the baseline)."""
    detector = BurstDetector(settings, DetectorState())
    cells: dict[str, Cell] = {}
    owner = {r: i for i, o in enumerate(stream.outages) for r in o.reports}
    begins = START + evaluate_after
    scored = [i for i, o in enumerate(stream.outages) if o.start >= begins]
    delays: dict[int, timedelta] = {}
    false: list[tuple[datetime, str]] = []
    suggestions = 0
    for report in stream.reports:
        for event in detector.observe(report, cells):
            if not event.found or report.at < begins:
                continue
            suggestions += 1
            ours = Counter(owner[r] for r in event.joined if r in owner)
            # Staff reading it would see the outage: most of its reports, or three residents.
            behind = {i for i, n in ours.items() if n >= 3 or n * 2 >= len(event.joined)}
            if not behind:
                false.append((report.at, event.burst.area))
            for index in behind:
                if index in scored and index not in delays:
                    delays[index] = report.at - stream.outages[index].start
    days = stream.days - evaluate_after.total_seconds() / 86400
    return Outcome(
        [stream.outages[i] for i in scored],
        {scored.index(i): d for i, d in delays.items()},
        false,
        days,
        suggestions,
    )
