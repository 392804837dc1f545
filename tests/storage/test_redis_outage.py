"""storage.redis.RedisOutage: one line when Redis goes, a count now and then, one when it is back
(the loops that report to it are tested against a Redis taken away in
tests/web/test_redis_outage.py)."""

from __future__ import annotations

import logging

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from storage.redis import RedisOutage, connect_redis, outage_of


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_outage_is_one_line_a_summary_a_minute_and_one_line_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="citybot.redis")
    clock = Clock()
    outage = RedisOutage(summary_seconds=60, clock=clock)
    outage.recovered()  # nothing was wrong: nothing to say
    refused = RedisConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
    for _ in range(50):  # three loops, once a second each, for 50 s
        for _ in range(3):
            outage.failed("reading the reply stream", refused)
        clock.now += 1
    assert outage.down and outage.failures == 150
    assert [r.getMessage() for r in caplog.records] == [
        "Redis unavailable (reading the reply stream): further failures are counted, not logged, "
        "until it is back"
    ]
    for _ in range(20):  # past the minute: one summary with the count
        for _ in range(3):
            outage.failed("reading the reply stream", refused)
        clock.now += 1
    outage.recovered()
    outage.recovered()
    said = [(r.getMessage(), getattr(r, "failures", None)) for r in caplog.records]
    assert said[1:] == [("Redis still unavailable", 181), ("Redis is back", 210)]
    assert caplog.records[-1].down_seconds == 70.0  # type: ignore[attr-defined]
    assert not any(r.exc_info for r in caplog.records)
    assert not outage.down and outage.failures == 0


async def test_every_loop_of_a_process_reports_to_its_clients_one_account() -> None:
    redis, other = connect_redis("redis://127.0.0.1:1/0"), connect_redis("redis://127.0.0.1:1/0")
    assert outage_of(redis) is outage_of(redis)
    assert outage_of(redis) is not outage_of(other)
    await redis.aclose()
    await other.aclose()
