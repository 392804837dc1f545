"""Early warning on a month of synthetic city traffic: how fast outages are found, how many,
and how many false suggestions a day.

Run: .venv/bin/python bench/early_warning.py [--days 30] [--per-day 10000] [--outages-per-day 3]
     [--false-alarms-per-day 1] [--seed 1] [--wards N]

The traffic (tests/notifier/burst_streams.py) is about 10,000 reports a day over the city's real
wards, suburbs and informal settlements, with the city's day and week, and outages mixed in
(18 to 45 reports an hour from their start, fading over one to three hours, half pinned). A week
of history comes first (the detector's warm-up: it only learns); then ``--days`` are scored. It
prints, at the city's false-alarm setting:

- recall: the share of outages suggested within 30 minutes of their start (and at all);
- detection delay: from an outage's start to its suggestion (median, 90th percentile);
- false suggestions per day (a suggestion most of whose reports are ordinary traffic);
- suggestions per outage found, and the detector's time per report.

docs/early-warning.md keeps the figures; tests/notifier/test_burst_detector.py asserts the
targets on a bounded stream (40 wards, a week scored) so CI guards them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

from notifier.burst_detector import DetectorSettings

# tests/ is not installed; the bench replays the same synthetic city the detector's tests do.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.notifier.burst_streams import city_stream, replay

__all__: list[str] = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30, help="days scored (after a week)")
    parser.add_argument("--per-day", type=float, default=10_000.0)
    parser.add_argument("--outages-per-day", type=float, default=3.0)
    parser.add_argument("--false-alarms-per-day", type=float, default=1.0)
    parser.add_argument("--wards", type=int, default=None, help="only this many wards")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    started = time.perf_counter()
    stream = city_stream(
        days=args.days + 7,
        reports_per_day=args.per_day,
        outages_per_day=args.outages_per_day,
        seed=args.seed,
        wards=args.wards,
    )
    made = time.perf_counter() - started
    settings = DetectorSettings(false_alarms_per_day=args.false_alarms_per_day)
    started = time.perf_counter()
    outcome = replay(stream, settings, evaluate_after=timedelta(days=7))
    took = time.perf_counter() - started

    delays = sorted(d.total_seconds() / 60 for d in outcome.delays.values())
    print(
        f"traffic: {len(stream.reports):,} reports over {stream.days} days "
        f"({len(stream.reports) / stream.days:,.0f} a day), {len(outcome.outages)} outages "
        f"scored over {outcome.days:g} days (made in {made:.1f} s)"
    )
    print(f"setting: {args.false_alarms_per_day:g} false suggestion(s) a day accepted")
    print(
        f"recall: {outcome.recall(timedelta(minutes=30)):.1%} within 30 minutes, "
        f"{outcome.recall(timedelta(days=1)):.1%} within a day"
    )
    if delays:
        p90 = delays[min(len(delays) - 1, int(0.9 * len(delays)))]
        print(
            f"detection delay: median {statistics.median(delays):.1f} min, "
            f"90th percentile {p90:.1f} min, longest {delays[-1]:.1f} min"
        )
    print(
        f"false suggestions: {len(outcome.false_suggestions)} ({outcome.false_per_day:.2f} a day)"
    )
    found = len(outcome.delays)
    if found:
        print(
            f"suggestions: {outcome.suggestions} ({outcome.suggestions / max(found, 1):.2f} per outage found)"
        )
    print(f"detector: {took / len(stream.reports) * 1e6:.0f} us a report ({took:.1f} s)")


if __name__ == "__main__":
    main()
