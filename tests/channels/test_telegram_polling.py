"""Telegram long polling: the real app (``create_app``) polls a local fake Bot API with the real
SDK; updates go through the same turn loop as webhooks, on a SQLite file."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot import telegram_polling
from bot.app import SERVICES_KEY, create_app
from bot.commands import serve
from bot.config import Settings
from bot.telegram_polling import Handle, TelegramPoller
from bot.web.webhooks import run_turns
from channels.base import ChannelRequest
from channels.telegram import PollingError, TelegramChannel
from notifier.replies import ReplySender
from tests.channels.signed import telegram_update
from tests.fakes.telegram_api import FakeTelegram
from tests.web.serve_process import CITYBOT, free_port

TOKEN = "7000000001:AAFakeTokenForTests"
CHAT_ID = 123456789


def text_update(update_id: int, text: str) -> dict[str, Any]:
    update = telegram_update("update_message_text.json", update_id=update_id)
    update["message"]["text"] = text
    return update


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def settings_for(tmp_path: Path, telegram: FakeTelegram) -> Settings:
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/citybot.sqlite3",
        session_secret="test-secret",
        rate_limit_per_second=1000.0,
        rate_limit_burst=1000,
        telegram_bot_token=TOKEN,
        telegram_api_base_url=telegram.url,
        telegram_polling=True,
    )


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # The app's poller waits this long after a failure: short, so the tests are quick.
    monkeypatch.setattr(telegram_polling, "BACKOFF", (0.05,))


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[web.Application]:
    """``citybot serve`` in this process: the app started (so polling runs), then shut down."""
    app = await create_app(settings, workers=False)
    channel = app[SERVICES_KEY].channels["telegram"]
    channel.pacer = type(channel.pacer)(10_000, 10_000)  # type: ignore[attr-defined]
    server = TestServer(app)
    await server.start_server()
    try:
        yield app
    finally:
        await server.close()


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


def sent_texts(telegram: FakeTelegram) -> list[str]:
    return [c.form["text"] for c in telegram.calls("sendMessage")]


def offsets(telegram: FakeTelegram) -> list[int | None]:
    return [
        int(c.form["offset"]) if c.form.get("offset") else None
        for c in telegram.calls("getUpdates")
    ]


async def test_updates_are_answered_and_the_offset_moves_past_them(
    tmp_path: Path, telegram: FakeTelegram
) -> None:
    telegram.push_update(text_update(910000001, "/start"))
    telegram.push_update(text_update(910000002, "pothole"))
    async with running(settings_for(tmp_path, telegram)):
        await eventually(lambda: not telegram.pending_updates)
        await eventually(lambda: len(sent_texts(telegram)) >= 2)
    paths = [r.path.rsplit("/", 1)[-1] for r in telegram.requests]
    # The webhook goes first: Telegram refuses getUpdates while one is set.
    assert paths.index("deleteWebhook") < paths.index("getUpdates")
    assert offsets(telegram)[0] is None
    assert telegram.pending_updates == []  # confirmed, so Telegram will not hand them out again
    chat_ids = {c.form["chat_id"] for c in telegram.calls("sendMessage")}
    assert chat_ids == {str(CHAT_ID)}
    # The menu, then the picker's offer for "pothole", with buttons to answer it.
    offer = telegram.calls("sendMessage")[-1].form
    assert offer["text"].endswith("?") and "inline_keyboard" in offer["reply_markup"]


async def test_a_redelivered_update_after_a_restart_is_processed_once(
    tmp_path: Path, telegram: FakeTelegram
) -> None:
    settings = settings_for(tmp_path, telegram)
    telegram.push_update(text_update(910000011, "/start"))
    async with running(settings):
        await eventually(lambda: len(sent_texts(telegram)) == 1)
    menu = sent_texts(telegram)[0]
    # Telegram hands the same update out again (its confirmation was lost with the process).
    telegram.push_update(text_update(910000011, "/start"))
    telegram.push_update(text_update(910000012, "help"))
    async with running(settings) as app:
        await eventually(lambda: not telegram.pending_updates)
        await eventually(lambda: len(sent_texts(telegram)) >= 2)
        await app[SERVICES_KEY].replies.sender.drain(5)
        duplicates = app[SERVICES_KEY].metrics.duplicates.labels(channel="telegram")._value.get()
    texts = sent_texts(telegram)
    assert texts.count(menu) == 1, texts
    assert len(texts) == 2
    assert duplicates == 1


async def test_429_waits_the_retry_after_then_polls_again(
    tmp_path: Path, telegram: FakeTelegram
) -> None:
    body = {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }
    telegram.fail_method("getUpdates", 429, body)
    telegram.push_update(text_update(910000021, "/start"))
    async with running(settings_for(tmp_path, telegram)):
        await eventually(lambda: len(sent_texts(telegram)) == 1)
    polls = [
        r for r in telegram.requests if r.path.endswith("/getUpdates") and r.status in (200, 429)
    ]
    assert [p.status for p in polls[:2]] == [429, 200]
    assert len(sent_texts(telegram)) == 1


async def test_network_errors_back_off_and_polling_resumes(
    tmp_path: Path, telegram: FakeTelegram
) -> None:
    down = {"ok": False, "error_code": 502, "description": "Bad Gateway"}
    telegram.fail_method("getUpdates", 502, down, times=3)
    telegram.fail_method("deleteWebhook", 502, down)
    telegram.push_update(text_update(910000031, "/start"))
    async with running(settings_for(tmp_path, telegram)):
        await eventually(lambda: len(sent_texts(telegram)) == 1)
    statuses = [r.status for r in telegram.requests if r.path.endswith("/getUpdates")]
    assert statuses[:4] == [502, 502, 502, 200]
    assert len(telegram.calls("deleteWebhook")) == 1


async def test_a_crash_before_confirmation_rereads_the_update_and_answers_once(
    tmp_path: Path, telegram: FakeTelegram
) -> None:
    """The process dies after committing update 41 but before confirming it (and during 42)."""

    class Crash(BaseException):
        pass

    telegram.push_update(text_update(910000041, "/start"))
    telegram.push_update(text_update(910000042, "help"))
    async with running(without_polling(settings_for(tmp_path, telegram))) as app:
        channel, handle, sender = pipeline(app)

        async def crash_on_42(request: ChannelRequest) -> None:
            if b"910000042" in request.body:
                raise Crash
            await handle(request)

        first = TelegramPoller(channel, crash_on_42, timeout=0)
        with pytest.raises(Crash):
            await first.run_once()
        assert first.offset is None  # 41 committed, but the batch is not confirmed
        await sender.drain(5)
        assert len(sent_texts(telegram)) == 1

        second = TelegramPoller(channel, handle, timeout=0)  # a fresh process: no offset
        assert await second.run_once() == 2
        await sender.drain(5)
        assert second.offset == 910000043
        assert len(sent_texts(telegram)) == 2  # 41 answered once, 42 once


async def test_a_store_outage_retries_the_same_update_until_it_commits(
    tmp_path: Path, telegram: FakeTelegram
) -> None:
    outages = [ConnectionRefusedError("database down"), ConnectionRefusedError("still down")]
    telegram.push_update(text_update(910000051, "/start"))
    async with running(without_polling(settings_for(tmp_path, telegram))) as app:
        channel, handle, sender = pipeline(app)

        async def outage_first(request: ChannelRequest) -> None:
            if outages:
                raise outages.pop(0)
            await handle(request)

        poller = TelegramPoller(
            channel, outage_first, timeout=0, backoff=(0.01,), attempts_per_update=1
        )
        assert await poller.run_once() == 1
        await sender.drain(5)
    # Never skipped however often the store failed (attempts_per_update counts other errors).
    assert outages == [] and poller.offset == 910000052
    assert len(sent_texts(telegram)) == 1


async def test_an_update_that_keeps_failing_is_skipped_after_its_attempts(
    tmp_path: Path, telegram: FakeTelegram
) -> None:
    telegram.push_update(text_update(910000071, "/start"))
    telegram.push_update(text_update(910000072, "help"))
    async with running(without_polling(settings_for(tmp_path, telegram))) as app:
        channel, handle, sender = pipeline(app)
        tries: list[bytes] = []

        async def poisoned_71(request: ChannelRequest) -> None:
            if b"910000071" in request.body:
                tries.append(request.body)
                raise ValueError("a bug this update triggers")
            await handle(request)

        poller = TelegramPoller(
            channel, poisoned_71, timeout=0, backoff=(0.01,), attempts_per_update=3
        )
        assert await poller.run_once() == 2
        await sender.drain(5)
    assert len(tries) == 3 and poller.offset == 910000073
    assert len(sent_texts(telegram)) == 1  # the next resident's message was not held up


def pipeline(app: web.Application) -> tuple[TelegramChannel, Handle, ReplySender]:
    """What ``bot.telegram_polling.telegram_polling`` gives the poller: the webhook's path."""
    services = app[SERVICES_KEY]
    sender = app[SERVICES_KEY].replies.sender
    channel = services.channels["telegram"]
    assert isinstance(channel, TelegramChannel)

    async def handle(request: ChannelRequest) -> None:
        await run_turns(services, sender, channel, request, channel.parse(request))

    return channel, handle, sender


def without_polling(settings: Settings) -> Settings:
    # These tests drive their own pollers; the app's would race them for the same updates.
    return dataclasses.replace(settings, telegram_polling=False)


async def test_poll_hands_back_the_update_as_a_webhook_request(telegram: FakeTelegram) -> None:
    channel = TelegramChannel(TOKEN, None, api_base_url=telegram.url)
    try:
        telegram.push_update(text_update(910000061, "hello"))
        [polled] = await channel.poll(None, 0)
        [inbound] = channel.parse(polled.request)
        assert polled.update_id == 910000061
        assert inbound.message_id == "tg:910000061" and inbound.text == "hello"
        assert inbound.address == str(CHAT_ID)
        # A long poll with nothing to hand out returns empty after its timeout.
        assert await channel.poll(910000062, 1) == []
        conflict = "Conflict: can't use getUpdates method while webhook is active"
        telegram.fail_method("getUpdates", 409, {"ok": False, "description": conflict})
        with pytest.raises(PollingError) as caught:
            await channel.poll(None, 0)
        assert caught.value.conflict
    finally:
        await channel.close()


def test_serve_refuses_polling_without_a_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CITYBOT_SESSION_SECRET", "test")
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    args = argparse.Namespace(host=None, port=None, telegram_polling=True, no_workers=False)
    assert serve.run(args) == 2
    assert "TELEGRAM_BOT_TOKEN" in capsys.readouterr().err


def test_polling_can_be_switched_on_from_the_environment() -> None:
    env = {"CITYBOT_SESSION_SECRET": "test"}
    assert Settings.from_env({**env, "CITYBOT_TELEGRAM_POLLING": "1"}).telegram_polling
    assert not Settings.from_env(env).telegram_polling


async def test_citybot_serve_with_the_flag_polls_and_stops_cleanly(
    tmp_path: Path, telegram: FakeTelegram
) -> None:
    """The real command in a subprocess: ``citybot serve --telegram-polling``, then SIGTERM."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CITYBOT_", "TELEGRAM_"))},
        "CITYBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/citybot.sqlite3",
        "CITYBOT_PORT": str(free_port()),
        "CITYBOT_LOG_LEVEL": "WARNING",
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": telegram.url,
    }
    telegram.push_update(text_update(910000081, "/start"))
    process = await asyncio.create_subprocess_exec(
        str(CITYBOT),
        "serve",
        "--telegram-polling",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        assert b"citybot is running" in line
        await eventually(lambda: len(sent_texts(telegram)) == 1, timeout=30)
        await eventually(lambda: not telegram.pending_updates)
        process.send_signal(signal.SIGTERM)
        # The long poll in flight is abandoned at once, not waited out.
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
