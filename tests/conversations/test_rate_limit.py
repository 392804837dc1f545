"""Token buckets per resident: warn once, then drop; other residents unaffected."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conversations.keys import ConversationKey
from conversations.rate_limit import (
    BaseRateLimiter,
    InProcessRateLimiter,
    RateDecision,
    RedisRateLimiter,
)
from tests.conversations.stores import REDIS_KINDS, redis_store_client

FLOODER = ConversationKey("sms", "+27831111111")
NEIGHBOUR = ConversationKey("sms", "+27832222222")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", *REDIS_KINDS])
async def limiter(
    request: pytest.FixtureRequest, clock: FakeClock, tmp_path: Path
) -> AsyncIterator[BaseRateLimiter]:
    if request.param == "memory":
        yield InProcessRateLimiter(rate=2.0, burst=5, clock=clock)
    else:
        async with redis_store_client(request, request.param) as (client, layout):
            yield RedisRateLimiter(client, rate=2.0, burst=5, clock=clock, layout=layout)


class TestRateLimitContract:
    async def test_burst_then_warn_once_then_drop(self, limiter: BaseRateLimiter) -> None:
        decisions = [await limiter.hit(FLOODER) for _ in range(100)]
        assert decisions[:5] == [RateDecision.ALLOW] * 5
        assert decisions[5] == RateDecision.WARN
        assert set(decisions[6:]) == {RateDecision.DROP}
        assert await limiter.hit(NEIGHBOUR) == RateDecision.ALLOW

    async def test_tokens_refill_and_warning_resets(
        self, limiter: BaseRateLimiter, clock: FakeClock
    ) -> None:
        for _ in range(7):
            await limiter.hit(FLOODER)
        clock.now += 0.5  # one token at 2 per second
        assert await limiter.hit(FLOODER) == RateDecision.ALLOW
        assert await limiter.hit(FLOODER) == RateDecision.WARN
        clock.now += 10
        assert [await limiter.hit(FLOODER) for _ in range(5)] == [RateDecision.ALLOW] * 5


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        InProcessRateLimiter(rate=0)
