"""The aiohttp transport under python-telegram-bot: real Bot calls against small local servers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from telegram import Bot
from telegram.error import Forbidden, NetworkError, TimedOut

from channels.http_session import ProviderSession
from channels.telegram_http import AiohttpRequest

TOKEN = "7000000001:AAFakeTokenForTests"


def ok(result: object) -> web.Response:
    return web.json_response({"ok": True, "result": result})


MESSAGE = {"message_id": 7, "date": 0, "chat": {"id": 123456789, "type": "private"}}


@pytest.fixture
async def seen() -> AsyncIterator[list[tuple[str, dict[str, str], str]]]:
    yield []


@pytest.fixture
async def server(seen: list[tuple[str, dict[str, str], str]]) -> AsyncIterator[TestServer]:
    async def api(request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if method == "slowMessage":
            await asyncio.sleep(2)
        posted = await request.post()
        fields = {k: v if isinstance(v, str) else f"file:{v.filename}" for k, v in posted.items()}
        seen.append((method, fields, request.headers.get("User-Agent", "")))
        if fields.get("chat_id") == "666":
            return web.json_response(
                {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked"},
                status=403,
            )
        return ok(MESSAGE)

    app = web.Application()
    app.router.add_post("/bot{token}/{method}", api)
    async with TestServer(app, host="127.0.0.1") as running:
        yield running


def bot_for(url: str, request: AiohttpRequest) -> Bot:
    return Bot(TOKEN, base_url=f"{url}/bot", request=request)


async def test_the_sdk_builds_the_call_and_the_session_sends_it(server, seen):
    request = AiohttpRequest(ProviderSession())
    try:
        sent = await bot_for(str(server.make_url("")).rstrip("/"), request).send_message(
            chat_id=123456789, text="Hello"
        )
    finally:
        await request.shutdown()
    assert sent.message_id == 7
    [(method, fields, agent)] = seen
    assert method == "sendMessage"
    assert fields == {"chat_id": "123456789", "text": "Hello"}
    assert agent.startswith("python-telegram-bot")


async def test_the_sdk_still_raises_its_own_errors_from_the_answer(server):
    request = AiohttpRequest(ProviderSession())
    try:
        with pytest.raises(Forbidden):
            await bot_for(str(server.make_url("")).rstrip("/"), request).send_message(
                chat_id=666, text="Hello"
            )
    finally:
        await request.shutdown()


async def test_files_go_as_multipart_with_the_other_fields(server, seen):
    request = AiohttpRequest(ProviderSession())
    try:
        await bot_for(str(server.make_url("")).rstrip("/"), request).send_document(
            chat_id=123456789, document=b"%PDF-1.4", filename="report.pdf", caption="Your report"
        )
    finally:
        await request.shutdown()
    [(method, fields, _)] = seen
    assert method == "sendDocument"
    assert fields["document"] == "file:report.pdf"
    assert fields["caption"] == "Your report"


async def test_a_refused_connection_is_a_network_error():
    request = AiohttpRequest(ProviderSession(), connect_timeout=1.0)
    try:
        with pytest.raises(NetworkError) as raised:
            await bot_for("http://127.0.0.1:9", request).send_message(chat_id=1, text="Hello")
    finally:
        await request.shutdown()
    assert not isinstance(raised.value, TimedOut)


async def test_a_provider_that_does_not_answer_in_time_is_timed_out(server):
    request = AiohttpRequest(ProviderSession(), read_timeout=0.2, write_timeout=0.2)
    url = str(server.make_url("")).rstrip("/")
    try:
        with pytest.raises(TimedOut):
            await request.post(f"{url}/bot{TOKEN}/slowMessage")
    finally:
        await request.shutdown()


async def test_a_shut_down_transport_opens_a_new_session_when_used_again(server, seen):
    request = AiohttpRequest(ProviderSession())
    bot = bot_for(str(server.make_url("")).rstrip("/"), request)
    await request.initialize()
    await request.shutdown()
    try:
        await bot.send_message(chat_id=123456789, text=json.dumps({"again": True}))
    finally:
        await request.shutdown()
    assert len(seen) == 1
