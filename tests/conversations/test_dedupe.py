"""One contract for the processed-once markers, on SQLite, PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from conversations.dedupe import BaseDedupe, RedisDedupe, SqlDedupe
from storage.redis_layout import RedisLayout
from storage.types import utc_now
from tests.conversations.stores import (
    REDIS_KINDS,
    redis_client,
    redis_store_client,
    sql_sessionmaker,
)


@pytest.fixture(params=["sqlite", "postgres", *REDIS_KINDS])
async def dedupe(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BaseDedupe]:
    if request.param in REDIS_KINDS:
        async with redis_store_client(request, request.param) as (client, layout):
            yield RedisDedupe(client, layout=layout)
    else:
        async with sql_sessionmaker(request.param, tmp_path) as sessionmaker:
            yield SqlDedupe(sessionmaker)


class TestDedupeContract:
    async def test_first_mark_wins_and_is_seen(self, dedupe: BaseDedupe) -> None:
        assert not await dedupe.seen("sms", "SM1")
        assert await dedupe.mark("sms", "SM1")
        assert await dedupe.seen("sms", "SM1")
        assert not await dedupe.mark("sms", "SM1")

    async def test_channels_do_not_collide(self, dedupe: BaseDedupe) -> None:
        assert await dedupe.mark("telegram", "100")
        assert not await dedupe.seen("webchat", "100")
        assert await dedupe.mark("webchat", "100")

    async def test_concurrent_marks_have_one_winner(self, dedupe: BaseDedupe) -> None:
        results = await asyncio.gather(*(dedupe.mark("sms", "SMrace") for _ in range(10)))
        assert results.count(True) == 1


async def test_redis_marker_lives_at_least_a_day(tmp_path: Path) -> None:
    async with redis_client() as (client, prefix):
        dedupe = RedisDedupe(client, ttl=timedelta(minutes=5), layout=RedisLayout(prefix=prefix))
        await dedupe.mark("sms", "SMttl", "+27831234567")
        assert await client.ttl(dedupe.name("sms", "SMttl", "+27831234567")) >= 24 * 3600 - 5


async def test_sql_purge_keeps_a_day(tmp_path: Path) -> None:
    async with sql_sessionmaker("sqlite", tmp_path) as sessionmaker:
        dedupe = SqlDedupe(sessionmaker)
        await dedupe.mark("sms", "old")
        assert await dedupe.purge(now=utc_now() + timedelta(hours=23), keep=timedelta(0)) == 0
        assert await dedupe.purge(now=utc_now() + timedelta(hours=25)) == 1
        assert not await dedupe.seen("sms", "old")
