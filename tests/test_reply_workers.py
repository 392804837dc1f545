"""The ``replies`` worker: a worker-only process sends the replies the turns queued on Redis; a
web process reads the streams itself (once), or leaves them to workers (``--no-replies``)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlencode

import pytest
from twilio.request_validator import RequestValidator

from bot.bootstrap import build_services, close_services
from bot.workers import WORKERS, run_workers
from channels.types import OutboundMessage
from notifier.reply_queue import encode
from tests.channels.signed import twilio_form
from tests.e2e.city import City, city_settings, free_port, running_city
from tests.e2e.test_report_loop import fresh_redis_keys
from tests.fakes.twilio_api import AUTH_TOKEN, FakeTwilio

pytestmark = pytest.mark.redis


@asynccontextmanager
async def web_process_without_replies(
    tmp_path: Path, redis_url: str
) -> AsyncIterator[tuple[City, FakeTwilio]]:
    """A web process as ``serve --no-workers --no-replies`` runs it, with a fake Twilio."""
    async with (
        fresh_redis_keys(redis_url),
        FakeTwilio() as twilio,
        running_city(
            tmp_path,
            twilio=twilio,
            env={"CITYBOT_REDIS_URL": redis_url, "CITYBOT_SEND_REPLIES": "0"},
            workers=False,
        ) as city,
    ):
        yield city, twilio


def stream_readers() -> list[asyncio.Task[object]]:
    """The reply stream readers running in this (test) process."""
    return [t for t in asyncio.all_tasks() if t.get_name() == "reply-stream-read"]


def test_the_replies_worker_is_named() -> None:
    assert "replies" in WORKERS


async def test_a_worker_only_process_sends_queued_replies(tmp_path: Path, redis_url: str) -> None:
    async with fresh_redis_keys(redis_url), FakeTwilio() as twilio:
        env = {"CITYBOT_REDIS_URL": redis_url}
        settings = city_settings(tmp_path, free_port(), twilio=twilio, env=env)
        services = await build_services(settings)
        try:
            assert services.redis is not None
            entry = encode(
                [OutboundMessage(channel="sms", address="+27831230001", text="queued by a turn")]
            )
            assert entry is not None
            await services.redis.xadd("citybot:{s0}:replies:sms", {"reply": entry})
            async with run_workers(services):
                deadline = time.monotonic() + 10
                while not twilio.messages():
                    assert time.monotonic() < deadline, "the worker sent nothing"
                    await asyncio.sleep(0.05)
                assert len(stream_readers()) == 2
            [sent] = twilio.messages()
            assert (sent.form["To"], sent.form["Body"]) == ("+27831230001", "queued by a turn")
            assert await services.redis.xlen("citybot:{s0}:replies:sms") == 0
        finally:
            await close_services(services)


async def test_a_web_process_reads_the_streams_once(tmp_path: Path, redis_url: str) -> None:
    async with (
        fresh_redis_keys(redis_url),
        FakeTwilio() as twilio,
        running_city(tmp_path, twilio=twilio, env={"CITYBOT_REDIS_URL": redis_url}),
    ):
        await asyncio.sleep(0.3)  # the app's readers and the workers are all running
        readers = stream_readers()
        assert len(readers) == 2, "one reader per stream (sms, whatsapp) in one process"


async def test_a_web_process_told_not_to_send_leaves_replies_to_a_worker(
    tmp_path: Path, redis_url: str
) -> None:
    """``serve --no-replies``: the webhook's turn queues the reply and answers Twilio, nothing
    in the web process sends it; a ``worker --only replies`` beside it does."""
    async with web_process_without_replies(tmp_path, redis_url) as (city, twilio):
        assert not city.settings.send_replies
        form = twilio_form(
            "inbound_sms.json", Body="pothole", From="+27831230002", MessageSid="SM" + "7" * 32
        )
        url = city.settings.public_url + "/webhooks/twilio/sms"
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        }
        async with city.http.post(url, data=urlencode(form), headers=headers) as response:
            assert response.status == 200
        await asyncio.sleep(0.5)
        assert not twilio.messages(), "the web process sent a reply it was told to leave"
        assert not stream_readers()
        assert city.services.redis is not None
        assert await city.services.redis.xlen("citybot:{s0}:replies:sms") == 1

        worker_settings = dataclasses.replace(city.settings, send_replies=True)
        services = await build_services(worker_settings)
        try:
            async with run_workers(services, only={"replies"}) as names:
                assert names == ["replies"]
                deadline = time.monotonic() + 10
                while not twilio.messages():
                    assert time.monotonic() < deadline, "the worker sent nothing"
                    await asyncio.sleep(0.05)
        finally:
            await close_services(services)
        [sent] = twilio.messages()
        assert sent.form["To"] == "+27831230002"
        assert "service" in sent.form["Body"].lower()


async def test_a_worker_told_not_to_send_stands_aside(tmp_path: Path, redis_url: str) -> None:
    async with fresh_redis_keys(redis_url), FakeTwilio() as twilio:
        env = {"CITYBOT_REDIS_URL": redis_url, "CITYBOT_SEND_REPLIES": "off"}
        services = await build_services(
            city_settings(tmp_path, free_port(), twilio=twilio, env=env)
        )
        try:
            async with run_workers(services, only={"replies"}):
                await asyncio.sleep(0.3)
                assert not stream_readers()
        finally:
            await close_services(services)


async def test_metrics_show_replies_left_waiting(tmp_path: Path, redis_url: str) -> None:
    """With no process sending (serve --no-replies and no worker), /metrics shows the backlog
    growing old, which is what an operator's alert looks at."""
    async with web_process_without_replies(tmp_path, redis_url) as (city, _):
        assert city.services.redis is not None
        for number in ("+27831230003", "+27831230004"):
            entry = encode([OutboundMessage(channel="sms", address=number, text="hi")])
            assert entry is not None
            await city.services.redis.xadd("citybot:{s0}:replies:sms", {"reply": entry})
        await asyncio.sleep(1.1)
        async with city.http.get(city.url + "/metrics") as response:
            text = await response.text()
    lines = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("citybot_replies_")
    }
    assert lines['citybot_replies_waiting{channel="sms"}'] == 2
    assert lines['citybot_replies_waiting{channel="whatsapp"}'] == 0
    assert 1.0 <= lines['citybot_replies_oldest_seconds{channel="sms"}'] < 30
    assert lines['citybot_replies_oldest_seconds{channel="whatsapp"}'] == 0
