"""Support over real HTTP, the parts that came after the takeover itself: transfer to a team or
another agent (the resident told, in their language), the queue by team, the supervisor's
figures (and /metrics), and the timeouts worker telling a resident on Telegram."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.workers import WORKERS
from tests.e2e.city import City, TelegramResident, eventually, running_city
from tests.fakes.telegram_api import FakeTelegram
from tests.notifier.test_broadcasts import Official, official

ALWAYS_OPEN = {"CITYBOT_OFFICE_HOURS": "always", "CITYBOT_SUPPORT_TEAMS": "electricity,water,zu"}


@pytest.fixture
async def city(tmp_path: Path) -> AsyncIterator[City]:
    async with (
        FakeTelegram() as telegram,
        running_city(tmp_path, telegram=telegram, env=ALWAYS_OPEN) as c,
    ):
        yield c


async def _resident_waiting(city: City, chat_id: int) -> TelegramResident:
    resident = TelegramResident(city, chat_id)
    await resident.say(("text", "hello", 0))
    await resident.say(("text", "agent", 0))
    return resident


async def _queue(agent: Official, query: str = "") -> list[dict[str, Any]]:
    status, answer = await agent.call("GET", "/api/v1/support/queue" + query)
    assert status == 200, answer
    return list(answer["items"])


async def test_transfer_to_a_team_then_to_an_agent(city: City) -> None:
    resident = await _resident_waiting(city, 5551001)
    first = await official(city, "a1@city.gov", ["agent"])
    second = await official(city, "a2@city.gov", ["agent"])
    supervisor = await official(city, "s@city.gov", ["supervisor"])
    (ticket,) = await _queue(first)
    path = f"/api/v1/support/tickets/{ticket['id']}"
    await first.call("POST", path + "/claim")

    status, refused = await second.call("POST", path + "/transfer", {"team": "water"})
    assert (status, refused["error"]["code"]) == (409, "conflict")
    status, refused = await first.call("POST", path + "/transfer", {"team": "roads"})
    assert status == 400 and "electricity" in refused["error"]["message"]
    status, moved = await first.call("POST", path + "/transfer", {"team": "electricity"})
    assert (status, moved["state"], moved["team"], moved["agent_id"]) == (
        200,
        "waiting",
        "electricity",
        None,
    )
    await eventually(lambda: _said(resident, "Another member of staff will carry on"))
    assert [t["id"] for t in await _queue(second, "?team=electricity")] == [ticket["id"]]
    assert await _queue(second, "?team=water") == []

    status, given = await supervisor.call(
        "POST", path + "/transfer", {"account_id": second.account_id}
    )
    assert (status, given["state"], given["agent_id"]) == (200, "held", second.account_id)
    status, shown = await supervisor.call("GET", path)
    assert [m["text"] for m in shown["messages"] if m["direction"] == "system"][-2:] == [
        "transferred to team electricity",
        f"transferred to agent {second.account_id}",
    ]


async def _said(resident: TelegramResident, start: str) -> bool:
    return any(t.startswith(start) for t in resident.received())


async def test_the_supervisors_figures_and_the_metrics(city: City) -> None:
    for n in range(3):
        await _resident_waiting(city, 5552000 + n)
    agent = await official(city, "a1@city.gov", ["agent"])
    supervisor = await official(city, "s@city.gov", ["supervisor"])
    waiting = await _queue(agent)
    await agent.call("POST", f"/api/v1/support/tickets/{waiting[0]['id']}/claim")
    await agent.call(
        "POST", f"/api/v1/support/tickets/{waiting[0]['id']}/messages", {"text": "Hello"}
    )
    await agent.call(
        "POST", f"/api/v1/support/tickets/{waiting[0]['id']}/handback", {"outcome": "resolved"}
    )
    await agent.call("POST", f"/api/v1/support/tickets/{waiting[1]['id']}/claim")

    status, refused = await agent.call("GET", "/api/v1/support/stats")
    assert (status, refused["error"]["code"]) == (403, "forbidden")
    status, stats = await supervisor.call("GET", "/api/v1/support/stats?hours=2")
    assert status == 200, stats
    assert (stats["window_hours"], stats["waiting"], stats["held"]) == (2, 1, 1)
    assert stats["waiting_by_team"] == {"": 1}
    assert stats["agents"] == [{"agent_id": agent.account_id, "name": "a1@city.gov", "held": 1}]
    assert stats["agent_limit"] == 5
    assert stats["outcomes"] == {"resolved": 1}
    assert stats["wait"]["count"] == 2 and stats["wait"]["p50_seconds"] is not None
    assert stats["first_response"]["count"] == 1 and stats["handle"]["count"] == 1

    async with city.http.get(city.url + "/metrics") as response:
        metrics = await response.text()
    assert 'citybot_support_waiting{team=""} 1.0' in metrics
    assert "citybot_support_held 1.0" in metrics
    assert f'citybot_support_agent_held{{agent_id="{agent.account_id}"}} 1.0' in metrics
    assert 'citybot_support_outcomes{outcome="resolved"} 1.0' in metrics
    assert 'citybot_support_wait_seconds{quantile="0.9"}' in metrics
    status, document = await supervisor.call("GET", "/api/v1/openapi.json")
    assert (
        "/api/v1/support/stats" in document["paths"]
        and "/api/v1/support/tickets/{id}/transfer" in document["paths"]
    )


async def test_the_timeouts_worker_tells_the_resident(tmp_path: Path) -> None:
    env = {**ALWAYS_OPEN, "CITYBOT_SUPPORT_UNCLAIMED_MINUTES": "0.005"}  # 0.3 s
    async with (
        FakeTelegram() as telegram,
        running_city(tmp_path, telegram=telegram, env=env, workers=False) as city,
    ):
        assert city.settings.support_unclaimed_minutes == 0.005
        resident = await _resident_waiting(city, 5553001)
        services = city.services
        sweeper = asyncio.create_task(WORKERS["support_timeouts"](services, asyncio.Event()))
        sender = asyncio.create_task(WORKERS["dispatcher"](services, asyncio.Event()))
        try:
            await eventually(lambda: _said(resident, "Everyone is still busy"), timeout=10)
        finally:
            sweeper.cancel()
            sender.cancel()
            await asyncio.gather(sweeper, sender, return_exceptions=True)
        told = [t for t in resident.received() if t.startswith("Everyone is still busy")]
        assert len(told) == 1
