"""Hours as histograms: the buckets, percentiles read off them, and a bootstrap of a ratio of medians.

The published figures (median and 90th percentile hours to acknowledge and to close) are read
from histograms so that they can be pre-aggregated and summed over any grouping
(``storage.models.open_data``). The buckets grow geometrically: the first holds under a quarter
of an hour, each next one is about 25% wider than the one before, and the last holds a year and
more. A percentile is interpolated within its bucket, so it is within a few per cent of the
exact figure (at worst the bucket's width, about a quarter of the value).

The disparity ratio's 95% interval is a percentile bootstrap. Resampling n requests with
replacement and taking their median is the same as drawing the median's rank from its Beta
distribution and reading the value at that rank (an order statistic of uniform draws is
Beta-distributed), so each of the ``resamples`` costs two draws, not 2n: fast enough to run for
every ward and service. It is seeded, so the same data gives the same interval.

Example::

    counts = histogram([2.0, 5.5, 30.0, 31.0, 48.0])
    percentile(counts, 0.5)                         # about 30 (hours)
    ratio_interval(informal, formal, seed="2026-11:all")   # (1.7, 1.4, 2.0)
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Iterable, Sequence

from storage.models.open_data import HISTOGRAM_BUCKETS

__all__ = [
    "EDGES",
    "bucket_of",
    "histogram",
    "percentile",
    "percentiles",
    "ratio_interval",
]

_FIRST = 0.25  # hours: the first bucket is [0, a quarter of an hour)
_LAST = 24 * 365  # hours: the last bucket is a year and more
_GROWTH = (_LAST / _FIRST) ** (1 / (HISTOGRAM_BUCKETS - 2))
# EDGES[i] is the lower edge of bucket i, in hours; the last bucket has no upper edge.
EDGES: tuple[float, ...] = (0.0, *tuple(_FIRST * _GROWTH**i for i in range(HISTOGRAM_BUCKETS - 1)))
_NORMAL_FROM = 10
# Below a minute, a ratio of times says nothing (and would divide by nought).
_SMALLEST = 1 / 60


def bucket_of(hours: float) -> int:
    """The bucket holding ``hours`` (a negative time, a clock's slip, counts as nought)."""
    return max(0, bisect.bisect_right(EDGES, hours) - 1)


def histogram(hours: Iterable[float]) -> list[int]:
    counts = [0] * HISTOGRAM_BUCKETS
    for value in hours:
        counts[bucket_of(value)] += 1
    return counts


def _value_at(counts: Sequence[int], cumulative: Sequence[int], rank: float) -> float:
    """The value at ``rank`` (0 to n), uniform within its bucket."""
    if rank <= 0:
        return EDGES[next(i for i, c in enumerate(counts) if c)]
    # The first bucket whose running total reaches the rank (so it holds something).
    i = min(bisect.bisect_left(cumulative, rank), len(counts) - 1)
    low = EDGES[i]
    if i + 1 == len(EDGES):
        return low
    share = min(1.0, (rank - (cumulative[i] - counts[i])) / counts[i])
    return low + (EDGES[i + 1] - low) * share


def _cumulative(counts: Sequence[int]) -> list[int]:
    total, out = 0, []
    for c in counts:
        total += c
        out.append(total)
    return out


def percentile(counts: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (0.5: the median) of the hours counted, None when there are none."""
    cumulative = _cumulative(counts)
    n = cumulative[-1] if cumulative else 0
    if n == 0:
        return None
    return _value_at(counts, cumulative, q * n)


def _median_rank(rng: random.Random, n: int) -> float:
    """Where (0 to 1) the median of n draws falls in the distribution: Beta((n+1)/2, (n+1)/2),
    which from 10 draws on is close enough to normal (and ten times faster to draw)."""
    if n < _NORMAL_FROM:
        a = (n + 1) / 2
        return rng.betavariate(a, a)
    return min(1.0, max(0.0, rng.gauss(0.5, 0.5 / math.sqrt(n + 2))))


def percentiles(counts: Sequence[int], qs: Sequence[float]) -> list[float | None]:
    """Several quantiles of one histogram, its running total worked out once."""
    cumulative = _cumulative(counts)
    n = cumulative[-1] if cumulative else 0
    if n == 0:
        return [None] * len(qs)
    return [_value_at(counts, cumulative, q * n) for q in qs]


def ratio_interval(
    numerator: Sequence[int],
    denominator: Sequence[int],
    *,
    seed: str,
    resamples: int = 1000,
    level: float = 0.95,
) -> tuple[float, float, float] | None:
    """The ratio of the two histograms' medians and its bootstrap interval at ``level``.

    None when either side is empty. Each resample draws both medians afresh (the two groups are
    resampled independently, as they are independent requests).
    """
    n_num, n_den = sum(numerator), sum(denominator)
    if n_num == 0 or n_den == 0:
        return None
    num_med = percentile(numerator, 0.5) or 0.0
    den_med = percentile(denominator, 0.5) or 0.0
    ratio = max(num_med, _SMALLEST) / max(den_med, _SMALLEST)
    rng = random.Random(seed)
    num_cum, den_cum = _cumulative(numerator), _cumulative(denominator)
    draws = sorted(
        max(_value_at(numerator, num_cum, _median_rank(rng, n_num) * n_num), _SMALLEST)
        / max(_value_at(denominator, den_cum, _median_rank(rng, n_den) * n_den), _SMALLEST)
        for _ in range(resamples)
    )
    tail = (1 - level) / 2
    low = draws[max(0, math.floor(tail * resamples))]
    high = draws[min(resamples - 1, math.ceil((1 - tail) * resamples) - 1)]
    return ratio, low, high
