"""Per-resident token buckets: a flood from one resident never slows anyone else down.

Each conversation has a bucket of ``burst`` tokens refilled at ``rate`` per second; a message
takes one. The first message over the limit gets ``WARN`` (the turn loop answers politely once);
the rest get ``DROP`` and are not processed, until the bucket has a token again.

Example::

    limiter = InProcessRateLimiter(rate=1.0, burst=10)
    await limiter.hit(ConversationKey("sms", "+27831234567"))   # RateDecision.ALLOW
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from redis.asyncio import Redis

from conversations.keys import ConversationKey
from storage.redis_layout import UNKEYED, RedisLayout

__all__ = [
    "BaseRateLimiter",
    "InProcessRateLimiter",
    "RateDecision",
    "RedisRateLimiter",
    "token_bucket_lua",
]


class RateDecision(StrEnum):
    ALLOW = "allow"
    WARN = "warn"  # over the limit for the first time: tell the resident once
    DROP = "drop"  # still over the limit: ignore silently


class BaseRateLimiter(ABC):
    def __init__(
        self, rate: float = 1.0, burst: int = 12, clock: Callable[[], float] = time.time
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock

    @abstractmethod
    async def hit(self, key: ConversationKey) -> RateDecision: ...

    def now(self) -> float:
        """The limiter's clock, in seconds."""
        return self._clock()

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections the limiter opened itself."""


@dataclass
class _Bucket:
    tokens: float
    at: float
    warned: bool = False


class InProcessRateLimiter(BaseRateLimiter):
    # Past this many buckets, full ones (residents who went quiet) are dropped.
    MAX_BUCKETS = 50_000

    def __init__(
        self, rate: float = 1.0, burst: int = 12, clock: Callable[[], float] = time.time
    ) -> None:
        super().__init__(rate, burst, clock)
        self._buckets: dict[str, _Bucket] = {}

    async def hit(self, key: ConversationKey) -> RateDecision:
        now = self._clock()
        name = key.storage_key
        bucket = self._buckets.get(name)
        if bucket is None:
            if len(self._buckets) >= self.MAX_BUCKETS:
                self._forget_full(now)
            bucket = self._buckets[name] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + max(0.0, now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            bucket.warned = False
            return RateDecision.ALLOW
        if not bucket.warned:
            bucket.warned = True
            return RateDecision.WARN
        return RateDecision.DROP

    def _forget_full(self, now: float) -> None:
        full = [
            name
            for name, b in self._buckets.items()
            if b.tokens + (now - b.at) * self.rate >= self.burst
        ]
        for name in full:
            del self._buckets[name]


def token_bucket_lua(*, key: str, cap: str, rate: str, now: str, expiry_ms: str, into: str) -> str:
    """Lua that takes one token from the bucket hash at ``key``: the one rate-limit rule, shared by
    ``RedisRateLimiter`` and the Redis turn scripts (``conversations.redis_turns``).

    The arguments are Lua expressions (``"KEYS[1]"``, ``"ARGV[2]"``); the local variable named by
    ``into`` gets 0 (allowed), 1 (over the limit, warn this once) or 2 (over, stay silent).
    """
    return f"""
local cap = tonumber({cap})
local rate = tonumber({rate})
local now = tonumber({now})
local bucket = redis.call('HMGET', {key}, 't', 'ts', 'w')
local tokens = tonumber(bucket[1]) or cap
local at = tonumber(bucket[2]) or now
local warned = tonumber(bucket[3]) or 0
tokens = math.min(cap, tokens + math.max(0, now - at) * rate)
local {into} = 2
if tokens >= 1 then
  tokens = tokens - 1
  warned = 0
  {into} = 0
elseif warned == 0 then
  warned = 1
  {into} = 1
end
redis.call('HSET', {key}, 't', tostring(tokens), 'ts', tostring(now), 'w', warned)
redis.call('PEXPIRE', {key}, {expiry_ms})
"""


_TAKE = (
    token_bucket_lua(
        key="KEYS[1]",
        cap="ARGV[1]",
        rate="ARGV[2]",
        now="ARGV[3]",
        expiry_ms="ARGV[4]",
        into="result",
    )
    + "return result\n"
)

_DECISIONS = (RateDecision.ALLOW, RateDecision.WARN, RateDecision.DROP)


class RedisRateLimiter(BaseRateLimiter):
    """The same bucket in Redis (one Lua script, atomic), shared by every process."""

    def __init__(
        self,
        redis: Redis,
        rate: float = 1.0,
        burst: int = 12,
        clock: Callable[[], float] = time.time,
        *,
        layout: RedisLayout = UNKEYED,
    ) -> None:
        super().__init__(rate, burst, clock)
        self._layout = layout
        self.redis = redis
        self._take = redis.register_script(_TAKE)
        # A bucket refills completely in burst/rate seconds; after that it need not exist.
        self.expire_ms = int((burst / rate + 1) * 1000)

    @property
    def layout(self) -> RedisLayout:
        return self._layout

    def name(self, key: ConversationKey) -> str:
        """The Redis key of a resident's bucket."""
        return self._layout.conversation(key.channel, key.address).rate

    async def hit(self, key: ConversationKey) -> RateDecision:
        result = await self._take(
            keys=[self.name(key)],
            args=[self.burst, self.rate, repr(self._clock()), self.expire_ms],
        )
        return _DECISIONS[int(result)]
