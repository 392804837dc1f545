"""Scripts of many turns share pipelines; each caller still gets its own reply or error."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from conversations.redis_pipeline import ScriptPipeline
from tests.conversations.stores import redis_client
from tests.storage.databases import redis_url_or_skip

_INCR = "return redis.call('INCRBY', KEYS[1], ARGV[1])"
_FAIL = "return redis.error_reply('refused ' .. ARGV[1])"


async def test_concurrent_calls_share_pipelines_and_each_gets_its_reply() -> None:
    async with redis_client() as (client, prefix):
        pipeline = ScriptPipeline(client)
        incr = pipeline.script(_INCR)
        replies = await asyncio.gather(
            *(pipeline.run(incr, [f"{prefix}n{i % 10}"], [i]) for i in range(300))
        )
        # Each key's running total: the calls ran once each, in the order they were made.
        totals: dict[int, int] = {}
        for i, reply in enumerate(replies):
            totals[i % 10] = totals.get(i % 10, 0) + i
            assert reply == totals[i % 10]
        assert pipeline.batches < 30  # not one round trip per call
        alone = await pipeline.run(incr, [f"{prefix}alone"], [5])
        assert alone == 5  # a lone call goes out at once
        await pipeline.close()


async def test_an_error_fails_only_its_own_call() -> None:
    async with redis_client() as (client, prefix):
        pipeline = ScriptPipeline(client)
        incr, fail = pipeline.script(_INCR), pipeline.script(_FAIL)
        results = await asyncio.gather(
            pipeline.run(incr, [f"{prefix}a"], [1]),
            pipeline.run(fail, [f"{prefix}b"], ["this one"]),
            pipeline.run(incr, [f"{prefix}a"], [1]),
            return_exceptions=True,
        )
        assert results[0] == 1 and results[2] == 2
        assert isinstance(results[1], ResponseError) and "refused this one" in str(results[1])
        await pipeline.close()


async def test_a_script_redis_does_not_know_is_loaded_and_sent_again() -> None:
    async with redis_client() as (client, prefix):
        pipeline = ScriptPipeline(client)
        # A script no Redis has seen, while the pipeline believes it loaded (as after a restart).
        fresh = pipeline.script(f"-- {uuid.uuid4().hex}\n{_INCR}")
        pipeline._loaded = True
        assert await pipeline.run(fresh, [f"{prefix}c"], [3]) == 3
        assert await pipeline.run(fresh, [f"{prefix}c"], [3]) == 6
        await pipeline.close()


async def test_a_closed_pipeline_refuses_calls() -> None:
    async with redis_client() as (client, prefix):
        pipeline = ScriptPipeline(client)
        incr = pipeline.script(_INCR)
        assert await pipeline.run(incr, [f"{prefix}d"], [1]) == 1
        await pipeline.close()
        with pytest.raises(RedisConnectionError):
            await pipeline.run(incr, [f"{prefix}d"], [1])


async def test_a_dropped_connection_fails_its_batch_and_the_next_call_reconnects() -> None:
    async with redis_client() as (client, prefix):
        # The pipeline on a client of its own, named so that its connections can be found.
        name = f"pipeline-test-{uuid.uuid4().hex[:10]}"
        own = Redis.from_url(redis_url_or_skip(), client_name=name)
        pipeline = ScriptPipeline(own)
        incr = pipeline.script(_INCR)
        try:
            assert await pipeline.run(incr, [f"{prefix}e"], [1]) == 1
            killed = 0
            for connection in await client.client_list():
                if connection.get("name") == name:
                    killed += await client.client_kill_filter(_id=connection["id"])
            assert killed >= 1
            failed = 0
            for _ in range(2):
                try:
                    assert await pipeline.run(incr, [f"{prefix}e"], [1]) == 2
                    break
                except RedisConnectionError:
                    failed += 1  # the batch that met the dropped connection
            assert failed <= 1
            assert int(await client.get(f"{prefix}e") or 0) == 2
        finally:
            await pipeline.close()
            await own.aclose()
