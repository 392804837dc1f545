"""kill -9 the server mid-form, start it again: the resident carries on where they were."""

from __future__ import annotations

import random
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.web.serve_process import ServeProcess
from tests.web.webchat_residents import answer_for


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[Any]:
    started: list[ServeProcess] = []

    def make(env: dict[str, str] | None = None) -> ServeProcess:
        server = ServeProcess(tmp_path, env)
        started.append(server)
        return server

    yield make
    for server in started:
        if server.process is not None and server.process.poll() is None:
            server.stop(signal.SIGKILL)


async def _say(http: aiohttp.ClientSession, url: str, n: int, **answer: Any) -> dict[str, Any]:
    body = {"client_message_id": f"m-{n}", **answer}
    async with http.post(url + "/webchat/messages", json=body) as response:
        assert response.status == 200
        payload: dict[str, Any] = await response.json()
        return payload


def _asked(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return next(m for m in reversed(messages) if m["type"] in ("ask", "review"))


async def _kill_mid_form_and_continue(server: ServeProcess) -> None:
    server.start()
    assert server.first_line == f"citybot is running: web chat at {server.url}/"
    rng = random.Random(4)
    # force_close: a kept-alive connection to the killed process would fail the first post.
    connector = aiohttp.TCPConnector(force_close=True)
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(connector=connector, cookie_jar=jar) as http:
        n = 0
        last = (await _say(http, server.url, (n := n + 1), text="pothole"))["messages"]
        last = (await _say(http, server.url, (n := n + 1), option_id="pothole"))["messages"]
        for _ in range(3):  # consent, location, kind: well into the form
            last = (await _say(http, server.url, (n := n + 1), **answer_for(last, rng)))["messages"]
        where = _asked(last)["step_id"]
        assert where not in ("service", "consent")

        server.kill_hard()
        server.start()

        # The same browser (same cookie) answers the question it was shown before the crash.
        payload = await _say(http, server.url, (n := n + 1), **answer_for(last, rng))
        following = _asked(payload["messages"])
        assert following["step_id"] not in ("service", "consent", "resume", where)
        last = payload["messages"]
        for _ in range(20):
            payload = await _say(http, server.url, (n := n + 1), **answer_for(last, rng))
            if payload.get("reference"):
                break
            last = payload["messages"] or last
        assert payload.get("reference", "").startswith("CT-")
    assert server.stop() == 0


async def test_restart_with_the_sql_store(server_factory: Any) -> None:
    # No CITYBOT_SESSION_SECRET: the generated one is kept beside the database, so the cookie
    # the browser holds is still valid after the restart.
    await _kill_mid_form_and_continue(server_factory())


@pytest.mark.redis
async def test_restart_with_the_redis_store(server_factory: Any, redis_url: str) -> None:
    await _kill_mid_form_and_continue(server_factory({"CITYBOT_REDIS_URL": redis_url}))


async def test_sigterm_stops_gracefully(server_factory: Any) -> None:
    server = server_factory()
    server.start()
    assert server.stop(signal.SIGTERM) == 0
