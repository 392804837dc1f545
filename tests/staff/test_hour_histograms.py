"""Hours as histograms: percentiles within their bucket's width of the exact figure, and the
bootstrap interval of a ratio of medians: repeatable, around the truth, narrowing with more data."""

from __future__ import annotations

import itertools
import random
import statistics

import pytest

from staff.hour_histograms import EDGES, bucket_of, histogram, percentile, ratio_interval


def test_buckets_cover_every_time() -> None:
    assert bucket_of(-3) == 0 and bucket_of(0) == 0 and bucket_of(0.2) == 0
    assert bucket_of(24 * 365 * 5) == len(EDGES) - 1
    widths = [b / a for a, b in itertools.pairwise(EDGES[1:])]
    assert max(widths) < 1.26  # each bucket about a quarter wider than the one before


def test_percentiles_close_to_the_exact_ones() -> None:
    rng = random.Random(3)
    hours = [rng.lognormvariate(3, 1.2) for _ in range(5000)]
    counts = histogram(hours)
    exact = statistics.quantiles(hours, n=10)
    assert percentile(counts, 0.5) == pytest.approx(statistics.median(hours), rel=0.05)
    assert percentile(counts, 0.9) == pytest.approx(exact[8], rel=0.05)
    assert percentile([0] * len(EDGES), 0.5) is None


def _sample(rng: random.Random, n: int, median: float) -> list[int]:
    return histogram(rng.lognormvariate(0, 0.8) * median for _ in range(n))


def test_bootstrap_interval_is_seeded_and_holds_the_truth() -> None:
    rng = random.Random(7)
    informal, formal = _sample(rng, 2000, 60), _sample(rng, 2000, 30)
    found = ratio_interval(informal, formal, seed="a")
    assert found is not None
    ratio, low, high = found
    assert low < ratio < high
    assert low < 2.0 < high and high - low < 0.4
    assert ratio_interval(informal, formal, seed="a") == found
    assert ratio_interval(informal, formal, seed="b") != found


def test_fewer_requests_a_wider_interval() -> None:
    rng = random.Random(11)
    widths = []
    for n in (8, 60, 2000):
        found = ratio_interval(_sample(rng, n, 60), _sample(rng, n, 30), seed="w")
        assert found is not None
        widths.append(found[2] - found[1])
    assert widths[0] > widths[1] > widths[2]


def test_coverage_near_ninety_five_per_cent() -> None:
    # Over many samples of 60 from a true ratio of 2, about 95% of intervals hold 2.
    rng = random.Random(5)
    held = 0
    trials = 120
    for i in range(trials):
        found = ratio_interval(
            _sample(rng, 60, 40), _sample(rng, 60, 20), seed=str(i), resamples=400
        )
        assert found is not None
        held += found[1] <= 2.0 <= found[2]
    assert 0.85 <= held / trials <= 1.0


def test_no_interval_without_both_sides() -> None:
    assert ratio_interval(histogram([5.0]), [0] * len(EDGES), seed="x") is None
