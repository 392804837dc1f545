"""The shared provider session: a request waiting for a free connection does not use up its timeout."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from telegram import Bot

from channels.http_session import ProviderSession
from channels.telegram_http import AiohttpRequest
from channels.twilio_http import TwilioHttpClient
from tests.fakes.twilio_api import ACCOUNT_SID

# Each answer takes this long; three requests on one connection take three times as long, more
# than the timeout each has, which one exchange alone stays well within.
ANSWER_SECONDS = 0.3
TIMEOUT = 0.6


@pytest.fixture
async def slow_server() -> AsyncIterator[TestServer]:
    async def answer(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(ANSWER_SECONDS)
        if request.path.startswith("/bot"):
            return web.json_response({"ok": True, "result": True})
        return web.json_response({"sid": "SM1"}, status=201)

    app = web.Application()
    app.router.add_post("/{tail:.*}", answer)
    async with TestServer(app, host="127.0.0.1") as running:
        yield running


async def test_twilio_sends_queued_for_the_one_connection_each_get_their_whole_timeout(
    slow_server: TestServer,
) -> None:
    http = ProviderSession(limit=1)
    client = TwilioHttpClient(http, str(slow_server.make_url("")), timeout=TIMEOUT)
    url = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    try:
        answers = await asyncio.gather(
            *(client.request("POST", url, data={"Body": f"Hi {i}"}) for i in range(3))
        )
    finally:
        await http.close()
    assert [a.status_code for a in answers] == [201, 201, 201]


async def test_telegram_calls_queued_for_the_one_connection_each_get_their_whole_timeout(
    slow_server: TestServer,
) -> None:
    http = ProviderSession(limit=1)
    request = AiohttpRequest(http, read_timeout=TIMEOUT / 2, write_timeout=TIMEOUT / 2)
    bot = Bot("7000000001:AAFake", base_url=str(slow_server.make_url("/bot")), request=request)
    try:
        results = await asyncio.gather(*(bot.delete_webhook() for _ in range(3)))
    finally:
        await http.close()
    assert results == [True, True, True]
