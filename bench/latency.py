"""How the benches measure: residents in a closed loop, and percentiles of what they waited.

In a closed loop each resident sends its next message as soon as the last is answered, so the
number of residents is the concurrency and the rate is the most the system sustains. Percentiles
are nearest-rank on the sorted latencies, reported in milliseconds.

Example::

    await closed_loop([functools.partial(r.say, stats) for r in residents], seconds=10)
    print(LatencySummary.of(stats.latencies))   # p50 1.92 ms, p99 7.40 ms, mean 2.31 ms, max 31.04 ms
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

__all__ = ["LatencySummary", "closed_loop"]


async def closed_loop(speakers: Sequence[Callable[[], Awaitable[object]]], seconds: float) -> None:
    """Call each speaker again as soon as its last call returns, until ``seconds`` have passed."""
    deadline = time.perf_counter() + seconds

    async def run(say: Callable[[], Awaitable[object]]) -> None:
        while time.perf_counter() < deadline:
            await say()

    await asyncio.gather(*(run(say) for say in speakers))


@dataclass(frozen=True, slots=True)
class LatencySummary:
    """Latencies in milliseconds; all zero when nothing was measured."""

    count: int
    p50: float
    p99: float
    mean: float
    worst: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> LatencySummary:
        if not seconds:
            return cls(0, 0.0, 0.0, 0.0, 0.0)
        ordered = sorted(seconds)
        n = len(ordered)
        return cls(
            count=n,
            p50=ordered[int(0.50 * (n - 1))] * 1000,
            p99=ordered[int(0.99 * (n - 1))] * 1000,
            mean=statistics.fmean(ordered) * 1000,
            worst=ordered[-1] * 1000,
        )

    def __str__(self) -> str:
        return (
            f"p50 {self.p50:.2f} ms, p99 {self.p99:.2f} ms, mean {self.mean:.2f} ms, "
            f"max {self.worst:.2f} ms"
        )
