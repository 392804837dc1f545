"""The statistics behind early warning, pure: a Poisson tail, a seasonal profile, decayed counts.

A place's usual rate of one kind of report is modelled as its own weekly level times the
service's shape over the week (the city-wide share of that service's reports falling in each
hour of the week): a ward that gets 40 "no water" reports a week, at a time of the week that
carries 1% of the city's "no water" reports per hour, expects 0.4 an hour then. The level is
learned per place (small places learn it slowly, so a prior floor keeps an unseen place from
expecting nothing); the shape per service, from every place at once. Both are counts that decay
with a half-life, so the baseline follows a city that changes, and both are updated one report
at a time (no rescans).

A window's count is then tested against its expectation with the Poisson upper tail
``P(X >= k)``: the chance of seeing at least that many in a usual hour. scipy is not needed for
it: the tail is a short sum, computed from its first term so that tiny probabilities (1e-12)
keep their precision.

Example::

    poisson_tail(12, 0.8)                       # 2.7e-10: twelve where under one is usual
    decayed(40.0, days=56.0, half_life_days=56.0)   # 20.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

__all__ = [
    "HOURS_IN_WEEK",
    "decayed",
    "exposure_weeks",
    "hour_of_week",
    "poisson_tail",
    "window_share",
]

HOURS_IN_WEEK = 168


def poisson_tail(k: int, expected: float) -> float:
    """``P(X >= k)`` for ``X ~ Poisson(expected)``."""
    if k <= 0:
        return 1.0
    if expected <= 0.0:
        return 0.0
    if k <= expected:
        # Near the middle the complement is the short sum and the tail is not small.
        below = sum(_term(i, expected) for i in range(k))
        return max(0.0, 1.0 - below)
    # Above the mean the terms fall away: sum from the k-th until they stop counting.
    term = _term(k, expected)
    total = term
    i = k
    while term > total * 1e-17:
        i += 1
        term *= expected / i
        total += term
    return min(1.0, total)


def _term(i: int, expected: float) -> float:
    return math.exp(-expected + i * math.log(expected) - math.lgamma(i + 1))


def decayed(value: float, *, days: float, half_life_days: float) -> float:
    """A count ``days`` later, fading by half every ``half_life_days``."""
    if days <= 0:
        return value
    return value * float(0.5 ** (days / half_life_days))


def exposure_weeks(history_days: float, *, half_life_days: float) -> float:
    """How many weeks of history a decayed count holds after ``history_days``: the integral of
    the decay over the history, so that ``decayed count / exposure`` is a weekly rate."""
    tau = half_life_days / math.log(2)
    return tau * (1.0 - math.exp(-max(history_days, 0.0) / tau)) / 7.0


def hour_of_week(at: datetime) -> int:
    """0 for Monday 00:00-01:00 (in ``at``'s own zone) to 167 for Sunday 23:00-24:00."""
    return at.weekday() * 24 + at.hour


def window_share(profile: Sequence[float], end: datetime, window: timedelta) -> float:
    """The share of a week's reports that usually falls in ``window`` before ``end``, from a
    profile of counts by hour of week (each hour smoothed by one report, so an hour with no
    history yet is unusual, not impossible)."""
    total = sum(profile) + HOURS_IN_WEEK
    share = 0.0
    start = end - window
    at = start
    while at < end:
        hour_end = at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        piece = min(hour_end, end) - at
        share += (profile[hour_of_week(at)] + 1.0) * piece.total_seconds() / 3600.0
        at += piece
    return share / total
