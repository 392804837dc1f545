"""A takeover survives ``kill -9`` of ``citybot serve``: the queue keeps its order, the claim
holds, the transcript is whole, and nothing the agent or the resident said is lost or doubled
(the provider's retry of a message from before the crash is recognised)."""

from __future__ import annotations

import asyncio
import itertools
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from staff.accounts import NewAccount, create_account, issue_token
from storage.migrate import upgrade_database
from storage.session import create_engine, create_sessionmaker
from tests.channels.signed import TELEGRAM_SECRET, telegram_update
from tests.e2e.city import TELEGRAM_TOKEN, eventually
from tests.fakes.telegram_api import FakeTelegram
from tests.staff.conftest import FAST_HASHER
from tests.web.serve_process import ServeProcess

_UPDATE_IDS = itertools.count(920000000)


class _Agent:
    def __init__(self, http: aiohttp.ClientSession, server: ServeProcess, token: str) -> None:
        self.http, self.server, self.token = http, server, token

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self.http.request(
            method, self.server.url + "/api/v1" + path, json=body, headers=headers
        ) as response:
            return response.status, await response.json()


async def _tell(
    http: aiohttp.ClientSession, server: ServeProcess, chat_id: int, text: str, update_id: int
) -> None:
    update = telegram_update("update_message_text.json")
    update["update_id"] = update_id
    update["message"]["text"] = text
    update["message"]["from"]["id"] = chat_id
    update["message"]["chat"]["id"] = chat_id
    async with http.post(
        server.url + "/webhooks/telegram",
        json=update,
        headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET},
    ) as response:
        assert response.status == 200, await response.text()


def _received(telegram: FakeTelegram, chat_id: int) -> list[str]:
    return [
        c.form["text"]
        for c in telegram.calls("sendMessage")
        if c.form.get("chat_id") == str(chat_id)
    ]


async def _agent_token(database_url: str) -> str:
    await upgrade_database(database_url)
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            new = NewAccount.checked("thandi@city.gov", roles=["agent"])
            await create_account(session, new, actor="test", hasher=FAST_HASHER)
            issued = await issue_token(
                session, "thandi@city.gov", roles=["agent"], days=1, actor="test"
            )
    finally:
        await engine.dispose()
    return issued.token


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


async def test_a_takeover_survives_kill_9(tmp_path: Path, telegram: FakeTelegram) -> None:
    server = ServeProcess(
        tmp_path,
        {
            "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
            "TELEGRAM_WEBHOOK_SECRET": TELEGRAM_SECRET,
            "TELEGRAM_API_BASE_URL": telegram.url,
            "CITYBOT_OFFICE_HOURS": "always",
            "CITYBOT_QUIET_HOURS": "off",
            "CITYBOT_DISPATCH_IDLE_SECONDS": "0.05",
            "CITYBOT_SESSION_SECRET": "restart-secret",
        },
    )
    token = await _agent_token(server.env["CITYBOT_DATABASE_URL"])
    first, second, third = 5560001, 5560002, 5560003
    await asyncio.to_thread(server.start)
    try:
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http:
            agent = _Agent(http, server, token)
            for chat_id in (first, second, third):
                await _tell(http, server, chat_id, "hello", next(_UPDATE_IDS))
                await _tell(http, server, chat_id, "agent", next(_UPDATE_IDS))
            status, queue = await agent.call("GET", "/support/queue")
            assert status == 200
            order = [t["id"] for t in queue["items"]]
            assert len(order) == 3
            held = order[0]
            assert (await agent.call("POST", f"/support/tickets/{held}/claim"))[0] == 200
            greeting = "Hello, I am Thandi. Which street is it?"
            status, _ = await agent.call(
                "POST", f"/support/tickets/{held}/messages", {"text": greeting}
            )
            assert status == 200
            await eventually(lambda: _async(greeting in _received(telegram, first)))
            before_crash = next(_UPDATE_IDS)
            await _tell(http, server, first, "Lansdowne Road, since Monday", before_crash)

            await asyncio.to_thread(server.kill_hard)
            await asyncio.to_thread(server.start)

            # Telegram retries the last update it sent: recognised, not added again.
            await _tell(http, server, first, "Lansdowne Road, since Monday", before_crash)
            status, queue = await agent.call("GET", "/support/queue?state=open")
            assert [t["id"] for t in queue["items"]] == order
            states = {t["id"]: (t["state"], t["agent_id"]) for t in queue["items"]}
            assert states[held][0] == "held" and states[held][1] is not None
            assert [states[i][0] for i in order[1:]] == ["waiting", "waiting"]

            quiet_before = len(_received(telegram, first))
            await _tell(http, server, first, "are you still there?", next(_UPDATE_IDS))
            later = "Yes. A team is on its way."
            await agent.call("POST", f"/support/tickets/{held}/messages", {"text": later})
            await eventually(lambda: _async(later in _received(telegram, first)))
            status, shown = await agent.call("GET", f"/support/tickets/{held}")
            lines = [(m["direction"], m["text"]) for m in shown["messages"]]
            assert lines.count(("resident", "Lansdowne Road, since Monday")) == 1
            assert lines.count(("resident", "are you still there?")) == 1
            assert lines.count(("agent", greeting)) == 1 and lines.count(("agent", later)) == 1

            status, _ = await agent.call(
                "POST", f"/support/tickets/{held}/handback", {"outcome": "resolved"}
            )
            assert status == 200
            back = "You are talking to the city's assistant again."
            await eventually(
                lambda: _async(any(t.startswith(back) for t in _received(telegram, first)))
            )
            received = _received(telegram, first)
            assert received.count(greeting) == 1 and received.count(later) == 1
            # While the agent had it the bot said nothing: only the agent's words and the handback.
            assert received[quiet_before:] == [later, received[-1]]
    finally:
        server.stop(signal.SIGKILL)


async def _async(value: bool) -> bool:
    return value
