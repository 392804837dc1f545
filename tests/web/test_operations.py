"""GET /healthz, /readyz and /metrics, and the JSON answers for routes that do not exist."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.app import SERVICES_KEY, create_app
from bot.config import Settings
from bot.version import VERSION
from channels.types import InboundMessage
from conversations.message_log import inbound_row


async def test_healthz(client: TestClient[Any, Any]) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "version": VERSION}
    assert version("citybot") == VERSION  # the installed package's, from pyproject.toml
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_readyz_checks_the_database(client: TestClient[Any, Any]) -> None:
    response = await client.get("/readyz")
    assert response.status == 200
    answer = await response.json()
    assert answer["status"] == "ready"
    assert answer["checks"]["database"] == "ok"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_readyz_names_a_redis_that_is_down(
    aiohttp_client: Callable[..., Any], tmp_path: Path
) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3",
        redis_url=f"redis://127.0.0.1:{_closed_port()}/0",
        session_secret="x",
    )
    client = await aiohttp_client(await create_app(settings, workers=False))
    response = await client.get("/readyz")
    assert response.status == 503
    answer = await response.json()
    assert answer["status"] == "unavailable"
    assert {k: answer["checks"][k] for k in ("database", "redis")} == {
        "database": "ok",
        "redis": "down",
    }


class _DownCity:
    """A city back end that answers every request 503, and counts them (real HTTP)."""

    def __init__(self) -> None:
        self.asked = 0

    async def answer(self, request: web.Request) -> web.Response:
        self.asked += 1
        return web.json_response([{"code": 503, "description": "maintenance"}], status=503)


async def test_readyz_says_the_city_is_down_and_stays_ready(
    aiohttp_client: Callable[..., Any], aiohttp_server: Callable[..., Any], tmp_path: Path
) -> None:
    city = _DownCity()
    city_app = web.Application()
    city_app.router.add_route("*", "/{tail:.*}", city.answer)
    city_server = await aiohttp_server(city_app)
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3",
        session_secret="x",
        open311_endpoint=str(city_server.make_url("/open311/v2")),
    )
    client = await aiohttp_client(await create_app(settings, workers=False))
    for _ in range(3):  # probes every second or so: the city is asked once
        response = await client.get("/readyz")
        assert response.status == 200
        answer = await response.json()
        assert answer["status"] == "ready"
        assert answer["checks"]["city"]["ok"] is False
        assert "/open311/v2 cannot be used" in answer["checks"]["city"]["reason"]
    assert city.asked == 1


async def test_readyz_says_the_city_answers(
    aiohttp_client: Callable[..., Any], tmp_path: Path
) -> None:
    # One process serves the built-in Open311 server; another files with it.
    builtin = await aiohttp_client(
        await create_app(
            Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/a.sqlite3", session_secret="x"),
            workers=False,
        )
    )
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/b.sqlite3",
        session_secret="x",
        open311_endpoint=str(builtin.make_url("/open311/v2")),
    )
    client = await aiohttp_client(await create_app(settings, workers=False))
    response = await client.get("/readyz")
    assert response.status == 200
    assert (await response.json())["checks"]["city"] == {"ok": True}


async def test_metrics_count_messages_and_turns(client: TestClient[Any, Any]) -> None:
    body = {"client_message_id": "m-1", "text": "pothole"}
    assert (await client.post("/webchat/messages", json=body)).status == 200
    assert (await client.post("/webchat/messages", json=body)).status == 200  # a retry
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    text = await response.text()
    assert 'citybot_messages_in_total{channel="webchat"} 2.0' in text
    assert 'citybot_duplicates_total{channel="webchat"} 1.0' in text
    assert 'citybot_turn_seconds_count{channel="webchat"} 2.0' in text
    assert 'citybot_messages_out_total{channel="webchat"}' in text
    assert "# TYPE citybot_turn_seconds histogram" in text


async def test_metrics_show_the_process_cpu_and_memory(client: TestClient[Any, Any]) -> None:
    text = await (await client.get("/metrics")).text()
    values = {
        line.split(" ")[0]: float(line.split(" ")[1])
        for line in text.splitlines()
        if line.startswith("process_")
    }
    assert values["process_cpu_seconds_total"] > 0
    assert values["process_resident_memory_bytes"] > 10_000_000  # a Python process, at least
    assert abs(values["process_start_time_seconds"] - time.time()) < 24 * 3600


async def test_unknown_paths_and_methods_answer_json(client: TestClient[Any, Any]) -> None:
    missing = await client.get("/nothing-here")
    assert missing.status == 404 and (await missing.json())["error"]
    wrong = await client.put("/webchat/messages")
    assert wrong.status == 405 and "POST" in wrong.headers["Allow"]
    assert (await wrong.json())["error"]


async def test_metrics_show_the_log_writers_backlog_and_rows_set_aside(
    aiohttp_client: Callable[..., Any], tmp_path: Path
) -> None:
    """With Redis state the message log is written behind the turns: its backlog and the rows
    the database refused are on /metrics (Redis itself is not needed for that, so it is down)."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/db.sqlite3",
        redis_url=f"redis://127.0.0.1:{_closed_port()}/0",
        session_secret="x",
    )
    app = await create_app(settings, workers=False)
    client = await aiohttp_client(app)
    writer = app[SERVICES_KEY].turn_loop.message_log
    assert writer is not None
    message = InboundMessage("webchat", "s-1", "m-1", text="pothole")
    writer.add(
        {**inbound_row(message, None, datetime.now(UTC)), "text": {}},  # refused by SQLite
        *(inbound_row(message, None, datetime.now(UTC)) for _ in range(2)),
    )
    text = await (await client.get("/metrics")).text()
    # 3.0 unless the writer's own task (every 50 ms) got there first.
    assert 'citybot_log_writer_backlog{writer="messages"}' in text
    assert 'citybot_log_writer_backlog{writer="deliveries"} 0.0' in text
    await writer.flush()
    text = await (await client.get("/metrics")).text()
    assert 'citybot_log_writer_backlog{writer="messages"} 0.0' in text
    assert 'citybot_log_rows_set_aside_total{writer="messages"} 1.0' in text
