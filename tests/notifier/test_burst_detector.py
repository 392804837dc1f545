"""The early-warning detector on streams with known answers: synthetic city traffic over the
real wards with outages mixed in (tests/notifier/burst_streams.py), and small hand-made streams
for what it must and must not call a burst. bench/early_warning.py runs the month."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta

import pytest

from forms_runtime.gazetteer import default_gazetteer
from notifier.burst_detector import (
    BurstDetector,
    BurstEvent,
    Cell,
    DetectorSettings,
    DetectorState,
    Report,
    area_keys,
)
from tests.notifier.burst_streams import START, city_stream, replay


def test_outages_found_within_30_minutes_and_few_false_suggestions() -> None:
    """Across 40 real wards at a large city's density (3,000 reports a day there), a week of
    history and a week scored, two seeds: at least 90% of the outages suggested within 30
    minutes of their start, at most one false suggestion a day, at the default setting."""
    found = total = 0
    for seed in (1, 2):
        stream = city_stream(days=14, reports_per_day=3000, outages_per_day=8, seed=seed, wards=40)
        outcome = replay(stream, DetectorSettings(), evaluate_after=timedelta(days=7))
        assert len(outcome.outages) >= 40
        assert outcome.false_per_day <= 1.0, outcome.false_suggestions
        found += round(outcome.recall(timedelta(minutes=30)) * len(outcome.outages))
        total += len(outcome.outages)
    assert found / total >= 0.9, (found, total)


@pytest.mark.slow
def test_across_the_whole_city_at_ten_thousand_reports_a_day() -> None:
    """The issue's targets where it sets them: every real ward at once, about 10,000 reports a
    day, a week of history and a week scored, two seeds (some 100 outages): at least 90%
    suggested within 30 minutes of their start, at most one false suggestion a day across the
    city, at the default setting. (The 40-ward test above has more outages per ward; this one
    has the city's full number of places tested at once, which is what the false-alarm rate is
    shared over.)"""
    found = total = 0
    for seed in (1, 2):
        stream = city_stream(days=14, reports_per_day=10_000, outages_per_day=8, seed=seed)
        assert 9_000 <= len(stream.reports) / stream.days <= 11_000
        outcome = replay(stream, DetectorSettings(), evaluate_after=timedelta(days=7))
        assert outcome.false_per_day <= 1.0, outcome.false_suggestions
        found += round(outcome.recall(timedelta(minutes=30)) * len(outcome.outages))
        total += len(outcome.outages)
    assert total >= 90
    assert found / total >= 0.9, (found, total)


@pytest.mark.slow
def test_twelve_no_water_reports_from_one_ward_in_forty_minutes_are_suggested() -> None:
    """The issue's own example, in every real ward in turn, over the whole city's ordinary
    traffic (about 10,000 reports a day, a week of history first): twelve residents of a ward,
    each naming one of its places (no pins, so only the ward sees them all), one every three
    and a half minutes, a ward every two hours. At least 90% are suggested within their forty
    minutes, each as its ward's own suggestion, and other suggestions stay within the issue's
    bound of one false suggestion a day (a small suburb's handful of ordinary reports). (The few
    missed are the busiest wards, with 17 to 50 "no water" reports on an ordinary day: twelve in
    forty minutes stands out less there; docs/early-warning.md says so.)"""
    gazetteer = default_gazetteer()
    wards = sorted({p.wards[0] for p in gazetteer.places if p.wards})
    assert len(wards) >= 60
    stream = city_stream(days=13, reports_per_day=10_000, outages_per_day=0, seed=1)
    bursts: dict[int, tuple[str, datetime]] = {}  # report id -> its ward and the burst's start
    for k, ward in enumerate(wards):
        start = START + timedelta(days=7, hours=2 * k)
        places = [p.name for p in gazetteer.places if p.wards and p.wards[0] == ward]
        for i in range(12):
            number = 10_000_000 + 12 * k + i
            bursts[number] = (ward, start)
            stream.reports.append(
                Report(
                    number,
                    number,
                    "no_water",
                    start + timedelta(minutes=40) * i / 11,
                    area_keys(
                        ward=ward,
                        suburb=places[i % len(places)],
                        settlement=None,
                        lat=None,
                        lon=None,
                    ),
                )
            )
    detector = BurstDetector(DetectorSettings(), DetectorState())
    cells: dict[str, Cell] = {}
    delays: dict[str, timedelta] = {}
    others: list[BurstEvent] = []
    for report in sorted(stream.reports, key=lambda r: r.at):
        for event in detector.observe(report, cells):
            if not event.found or report.at < START + timedelta(days=7):
                continue
            behind = Counter(bursts[r] for r in event.joined if r in bursts)
            if not behind or behind.most_common(1)[0][1] < 3:
                others.append(event)
                continue
            (ward, start), _ = behind.most_common(1)[0]
            assert event.burst.area in (f"ward:{ward}", *report.areas)
            delays.setdefault(ward, report.at - start)
    evaluated_days = 13 - 7
    assert len(others) <= evaluated_days, others
    found = [w for w, delay in delays.items() if delay <= timedelta(minutes=40)]
    assert len(found) >= 0.9 * len(wards), sorted(set(wards) - set(found))


@pytest.mark.slow
def test_the_citys_setting_bounds_the_false_suggestions_a_day() -> None:
    """CITYBOT_EARLY_WARNING_FALSE_ALARMS_PER_DAY is what the city reads: over 40 wards at the
    city's density, at each setting the false suggestions a day stay under it, and a laxer
    setting makes more of them (the detector is cautious, never lax: its tests overlap)."""
    stream = city_stream(days=11, reports_per_day=3000, outages_per_day=3, seed=7, wards=40)
    false = []
    for rate in (1.0, 10.0, 50.0):
        outcome = replay(
            stream, DetectorSettings(false_alarms_per_day=rate), evaluate_after=timedelta(days=7)
        )
        assert outcome.false_per_day <= rate, (rate, outcome.false_per_day)
        false.append(len(outcome.false_suggestions))
    assert false[0] < false[1] < false[2], false


@pytest.mark.slow
def test_the_usual_rate_is_the_places_for_the_hour_of_the_week() -> None:
    """A seasonal baseline: in the ward with the most "no water" reports of a week of the whole
    city's traffic, five more residents in twelve minutes at 09:00 on a Tuesday, the city's
    busy morning, are usual there; the same five at 03:00 on a Wednesday, when the city sleeps,
    are a burst."""
    stream = city_stream(days=9, reports_per_day=10_000, outages_per_day=0, seed=1)
    wards = Counter(
        area
        for r in stream.reports
        if r.service == "no_water" and r.at < START + timedelta(days=7)
        for area in r.areas
        if area.startswith("ward:")
    )
    busiest = wards.most_common(1)[0][0]
    ward = busiest.removeprefix("ward:")
    suburbs = [p.name for p in default_gazetteer().places if p.wards and p.wards[0] == ward]

    def five(first: int, start: datetime) -> list[Report]:
        return [
            Report(
                first + i,
                first + i,
                "no_water",
                start + timedelta(minutes=3 * i),
                area_keys(
                    ward=ward, suburb=suburbs[i % len(suburbs)], settlement=None, lat=None, lon=None
                ),
            )
            for i in range(5)
        ]

    # UTC; Cape Town is two hours ahead.
    morning = five(10_000_000, START + timedelta(days=8, hours=7))
    night = five(10_000_100, START + timedelta(days=9, hours=1))
    assert (morning[0].at + timedelta(hours=2)).strftime("%a %H") == "Tue 09"
    assert (night[0].at + timedelta(hours=2)).strftime("%a %H") == "Wed 03"
    detector = BurstDetector(DetectorSettings(), DetectorState())
    cells: dict[str, Cell] = {}
    events = [
        event
        for report in sorted([*stream.reports, *morning, *night], key=lambda r: r.at)
        for event in detector.observe(report, cells)
    ]
    with_morning = [e for e in events if {r.id for r in morning} & set(e.joined)]
    with_night = [e for e in events if e.found and {r.id for r in night} & set(e.joined)]
    assert with_morning == []
    assert len(with_night) == 1 and with_night[0].burst.area == busiest


def _quiet_history(detector: BurstDetector, cells: dict[str, Cell], days: int) -> int:
    """One report a day in each of three wards, for ``days`` days; the next report number."""
    number = 1
    for day in range(days):
        for ward in ("1", "2", "3"):
            at = START + timedelta(days=day, hours=10 + int(ward))
            detector.observe(Report(number, number, "no_water", at, (f"ward:{ward}",)), cells)
            number += 1
    return number


def _burst(first: int, start_days: float, residents: list[int]) -> list[Report]:
    start = START + timedelta(days=start_days)
    return [
        Report(first + i, who, "no_water", start + timedelta(minutes=3 * i), ("ward:2",))
        for i, who in enumerate(residents)
    ]


def test_a_burst_is_one_suggestion_that_grows() -> None:
    detector = BurstDetector(DetectorSettings(), DetectorState())
    cells: dict[str, Cell] = {}
    number = _quiet_history(detector, cells, days=14)
    events: list[BurstEvent] = []
    for report in _burst(number, 14.5, list(range(1000, 1008))):
        events += detector.observe(report, cells)
    found = [e for e in events if e.found]
    assert len(found) == 1
    assert found[0].burst.area == "ward:2"
    assert found[0].count >= 3 and found[0].expected < 0.1
    # Later reports of the same burst join the same suggestion.
    assert all(e.burst.serial == found[0].burst.serial for e in events)
    assert sum(len(e.joined) for e in events) == 8


def test_a_burst_set_aside_grows_no_more_and_teaches_the_same() -> None:
    """Staff dismissed it: the next firing there is a new burst (found again), and the baseline
    is what it would have been without the dismissal."""
    runs = []
    for dismiss in (False, True):
        detector = BurstDetector(DetectorSettings(), DetectorState())
        cells: dict[str, Cell] = {}
        number = _quiet_history(detector, cells, days=14)
        first = [
            e
            for r in _burst(number, 14.5, list(range(1000, 1006)))
            for e in detector.observe(r, cells)
        ]
        if dismiss:
            detector.set_aside({first[0].burst.serial})
        second = [
            e
            for r in _burst(number + 6, 14.6, list(range(2000, 2006)))
            for e in detector.observe(r, cells)
        ]
        runs.append((second, {k: c.level for k, c in cells.items()}, detector.state.profiles))
    (kept, kept_levels, kept_profiles), (aside, aside_levels, aside_profiles) = runs
    assert not any(e.found for e in kept)  # without a dismissal: more of the same burst
    assert [e.found for e in aside][:1] == [True] and aside[0].burst.serial == 2
    assert (aside_levels, aside_profiles) == (kept_levels, kept_profiles)


def test_one_residents_many_reports_are_not_a_burst() -> None:
    detector = BurstDetector(DetectorSettings(), DetectorState())
    cells: dict[str, Cell] = {}
    number = _quiet_history(detector, cells, days=14)
    events = [
        e for r in _burst(number, 14.5, [77, 77, 77, 77, 78]) for e in detector.observe(r, cells)
    ]
    assert events == []


def test_history_only_teaches_until_the_warm_up_is_over() -> None:
    detector = BurstDetector(DetectorSettings(warm_up=timedelta(days=7)), DetectorState())
    cells: dict[str, Cell] = {}
    number = _quiet_history(detector, cells, days=3)
    events = [e for r in _burst(number, 3.5, list(range(8))) for e in detector.observe(r, cells)]
    assert events == []
    # And a report older than the window (``live=False``) never suggests either.
    detector = BurstDetector(DetectorSettings(), DetectorState())
    cells = {}
    number = _quiet_history(detector, cells, days=14)
    quiet = [
        e
        for r in _burst(number, 14.5, list(range(8)))
        for e in detector.observe(r, cells, live=False)
    ]
    assert quiet == []


def test_a_restart_from_stored_state_finds_the_same_bursts() -> None:
    """The worker stores the state and the cells as JSON between batches: cutting the stream
    anywhere and going on from what was stored gives the same suggestions as one run."""
    stream = city_stream(days=9, reports_per_day=1500, outages_per_day=6, seed=3, wards=20)
    settings = DetectorSettings()

    whole = BurstDetector(settings, DetectorState())
    cells: dict[str, Cell] = {}
    expected = [
        (r.id, e.found, e.burst.serial, e.joined)
        for r in stream.reports
        for e in whole.observe(r, cells)
    ]
    assert any(found for _, found, _, _ in expected)

    state_json = json.dumps(DetectorState().to_json())
    cells_json: dict[str, str] = {}
    got = []
    for start in range(0, len(stream.reports), 997):
        detector = BurstDetector(settings, DetectorState.from_json(json.loads(state_json)))
        batch = stream.reports[start : start + 997]
        keys = {k for r in batch for k in detector.keys_of(r)}
        loaded = {k: Cell.from_json(json.loads(cells_json[k])) for k in keys if k in cells_json}
        for report in batch:
            got += [
                (report.id, e.found, e.burst.serial, e.joined)
                for e in detector.observe(report, loaded)
            ]
        assert set(loaded) <= keys  # the detector touches only the cells it said it would
        state_json = json.dumps(detector.state.to_json())
        cells_json.update({k: json.dumps(c.to_json()) for k, c in loaded.items()})
    assert got == expected
