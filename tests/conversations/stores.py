"""Real backends for the contract tests: SQLite (temp file), PostgreSQL, Redis and a Redis
Cluster.

Redis is shared with teammates' tests, so nothing here flushes it: every test uses its own key
prefix and deletes its keys afterwards. The cluster is the test run's own (``redis_cluster_url``),
and its layout has four shards, so a test's conversations land on every primary.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.redis import connect_redis
from storage.redis_layout import RedisLayout
from storage.session import create_engine, create_sessionmaker
from tests.storage.databases import postgres_database, redis_url_or_skip, sqlite_database


@asynccontextmanager
async def sql_sessionmaker(
    kind: str, folder: Path
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    database = sqlite_database(folder) if kind == "sqlite" else postgres_database()
    async with database as url:
        engine = create_engine(url)
        try:
            yield create_sessionmaker(engine)
        finally:
            await engine.dispose()


@asynccontextmanager
async def redis_client() -> AsyncIterator[tuple[Redis, str]]:
    """A client and a key prefix of its own; the prefix's keys are deleted afterwards."""
    client = Redis.from_url(redis_url_or_skip())
    prefix = f"citybot-test:{uuid.uuid4().hex[:10]}:"
    try:
        yield client, prefix
    finally:
        keys = [key async for key in client.scan_iter(match=prefix + "*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


REDIS_KINDS = ["redis", "redis-cluster"]


@asynccontextmanager
async def redis_store_client(
    request: pytest.FixtureRequest, kind: str
) -> AsyncIterator[tuple[Redis, RedisLayout]]:
    """A client and a layout of its own on one Redis (``kind`` "redis") or on the cluster."""
    if kind == "redis-cluster":
        client = connect_redis(request.getfixturevalue("redis_cluster_url"))
        try:
            yield client, RedisLayout(prefix=f"citybot-test:{uuid.uuid4().hex[:10]}:", shards=4)
        finally:
            await client.aclose()
        return
    async with redis_client() as (client, prefix):
        yield client, RedisLayout(prefix=prefix)
