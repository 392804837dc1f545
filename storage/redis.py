"""The Redis client every part of citybot shares, made from ``CITYBOT_REDIS_URL``.

Example::

    redis = connect_redis("redis://127.0.0.1:6379/0")
    await redis.ping()
    await redis.aclose()
"""

from __future__ import annotations

from redis.asyncio import Redis

__all__ = ["connect_redis"]


def connect_redis(url: str) -> Redis:
    """A client for ``url`` (``redis://``, ``rediss://`` or ``unix://``); connects on first use."""
    return Redis.from_url(url)
