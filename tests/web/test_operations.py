"""GET /healthz, /readyz and /metrics, and the JSON answers for routes that do not exist."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from bot.app import SERVICES_KEY, create_app
from bot.config import Settings
from channels.types import InboundMessage
from conversations.message_log import inbound_row


async def test_healthz(client: TestClient[Any, Any]) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_readyz_checks_the_database(client: TestClient[Any, Any]) -> None:
    response = await client.get("/readyz")
    assert response.status == 200
    assert await response.json() == {"status": "ready", "checks": {"database": "ok"}}


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
    assert await response.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "redis": "down"},
    }


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
