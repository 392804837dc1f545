"""The statistics of early warning against values worked out by hand and by summing."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from notifier.burst_statistics import (
    HOURS_IN_WEEK,
    decayed,
    exposure_weeks,
    hour_of_week,
    poisson_tail,
    window_share,
)


def _tail_by_complement(k: int, mean: float) -> float:
    return 1.0 - sum(math.exp(-mean) * mean**i / math.factorial(i) for i in range(k))


@pytest.mark.parametrize(("k", "mean"), [(1, 0.5), (3, 2.0), (5, 5.0), (8, 3.0), (2, 10.0)])
def test_poisson_tail_agrees_with_the_complement(k: int, mean: float) -> None:
    assert poisson_tail(k, mean) == pytest.approx(_tail_by_complement(k, mean), rel=1e-9)


def test_poisson_tail_keeps_tiny_probabilities() -> None:
    # P(X >= 12 | 0.8): the first term dominates, e^-0.8 0.8^12 / 12! ~ 2.7e-10.
    first = math.exp(-0.8) * 0.8**12 / math.factorial(12)
    assert poisson_tail(12, 0.8) == pytest.approx(first * 1.0656, rel=1e-3)
    assert 0.0 < poisson_tail(40, 0.01) < 1e-100


def test_poisson_tail_edges() -> None:
    assert poisson_tail(0, 3.0) == 1.0
    assert poisson_tail(1, 0.0) == 0.0
    assert poisson_tail(1, 2.0) == pytest.approx(1 - math.exp(-2.0))


def test_decay_and_exposure() -> None:
    assert decayed(40.0, days=56.0, half_life_days=56.0) == pytest.approx(20.0)
    assert decayed(40.0, days=0.0, half_life_days=56.0) == 40.0
    # A week of history with a long half-life is close to a week; forever tends to tau.
    assert exposure_weeks(7.0, half_life_days=5600.0) == pytest.approx(1.0, rel=1e-3)
    tau_weeks = 56.0 / math.log(2) / 7
    assert exposure_weeks(1e6, half_life_days=56.0) == pytest.approx(tau_weeks)


def test_hour_of_week_and_window_share() -> None:
    monday = datetime(2026, 9, 7, tzinfo=UTC)
    assert hour_of_week(monday) == 0
    assert hour_of_week(monday + timedelta(days=6, hours=23, minutes=59)) == 167
    flat = [0.0] * HOURS_IN_WEEK
    # With no history every hour is alike: an hour is 1/168 of the week.
    assert window_share(flat, monday + timedelta(hours=5), timedelta(hours=1)) == pytest.approx(
        1 / 168
    )
    busy = [0.0] * HOURS_IN_WEEK
    busy[8] = 167.0 * 3  # Monday 08:00-09:00 carries as much as three ordinary weeks
    share = window_share(busy, monday + timedelta(hours=8, minutes=30), timedelta(minutes=30))
    assert share == pytest.approx(0.5 * (501 + 1) / (501 + 168))
    # A window across two hours takes its part of each.
    across = window_share(busy, monday + timedelta(hours=9, minutes=15), timedelta(minutes=30))
    assert across == pytest.approx((0.25 * 502 + 0.25 * 1) / 669)
