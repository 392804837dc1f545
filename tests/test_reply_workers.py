"""The ``replies`` worker: a worker-only process sends the replies the turns queued on Redis, and
stands aside in a process whose webhook routes read the streams already."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bot.app import build_services, close_services, registered_workers, run_workers
from channels.types import OutboundMessage
from notifier.replies import encode_reply
from tests.e2e.city import city_settings, free_port, running_city
from tests.e2e.test_report_loop import fresh_redis_keys
from tests.fakes.twilio_api import FakeTwilio

pytestmark = pytest.mark.redis


def test_the_replies_worker_is_registered() -> None:
    assert "replies" in registered_workers()


async def test_a_worker_only_process_sends_queued_replies(tmp_path: Path, redis_url: str) -> None:
    async with fresh_redis_keys(redis_url), FakeTwilio() as twilio:
        env = {"CITYBOT_REDIS_URL": redis_url}
        settings = city_settings(tmp_path, free_port(), twilio=twilio, env=env)
        services = await build_services(settings)
        try:
            assert services.redis is not None
            entry = encode_reply(
                [OutboundMessage(channel="sms", address="+27831230001", text="queued by a turn")]
            )
            assert entry is not None
            await services.redis.xadd("citybot:replies:sms", {"reply": entry})
            async with run_workers(services):
                deadline = time.monotonic() + 10
                while not twilio.messages():
                    assert time.monotonic() < deadline, "the worker sent nothing"
                    await asyncio.sleep(0.05)
                assert services.reads_replies
            [sent] = twilio.messages()
            assert (sent.form["To"], sent.form["Body"]) == ("+27831230001", "queued by a turn")
            assert await services.redis.xlen("citybot:replies:sms") == 0
        finally:
            await close_services(services)


async def test_a_web_process_reads_the_streams_once(tmp_path: Path, redis_url: str) -> None:
    async with (
        fresh_redis_keys(redis_url),
        FakeTwilio() as twilio,
        running_city(tmp_path, twilio=twilio, env={"CITYBOT_REDIS_URL": redis_url}) as city,
    ):
        assert city.services.reads_replies
        await asyncio.sleep(0.3)  # the routes' readers and the workers are all running
        readers = [t for t in asyncio.all_tasks() if t.get_name() == "reply-stream-read"]
        assert len(readers) == 2, "one reader per stream (sms, whatsapp) in one process"
