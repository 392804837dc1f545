"""The early-warning detector on streams with known answers: synthetic city traffic over the
real wards with outages mixed in (tests/notifier/burst_streams.py), and small hand-made streams
for what it must and must not call a burst. bench/early_warning.py runs the month."""

from __future__ import annotations

import json
from datetime import timedelta

from notifier.burst_detector import (
    BurstDetector,
    BurstEvent,
    Cell,
    DetectorSettings,
    DetectorState,
    Report,
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
