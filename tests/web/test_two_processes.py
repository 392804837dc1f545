"""The README's two-process layout files a report end to end: ``citybot worker`` beside
``citybot serve --no-workers``, with nothing set but where serve listens.

Issue 10, defect 12: the worker filed with 127.0.0.1:8080 whatever port serve listened on, so
reports got a reference and were then left unfiled. The worker finds the built-in Open311
server where serve listens, and says at start when it cannot reach it.
"""

from __future__ import annotations

import asyncio
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.web.serve_process import CITYBOT, ServeProcess
from tests.web.webchat_residents import answer_for


async def _until_in(path: Path, text: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while text not in (path.read_text() if path.exists() else ""):
        assert time.monotonic() < deadline, f"{text!r} not in {path.name}"
        await asyncio.sleep(0.1)


async def _report(http: aiohttp.ClientSession, url: str) -> str:
    """A web chat resident reports a pothole; returns the reference."""
    rng = random.Random(7)
    n = 0

    async def say(**answer: Any) -> dict[str, Any]:
        nonlocal n
        n += 1
        body = {"client_message_id": f"m-{n}", **answer}
        async with http.post(url + "/webchat/messages", json=body) as response:
            assert response.status == 200
            payload: dict[str, Any] = await response.json()
            return payload

    await say(text="pothole")
    last = (await say(option_id="pothole"))["messages"]
    for _ in range(25):
        payload = await say(**answer_for(last, rng))
        if payload.get("reference"):
            return str(payload["reference"])
        last = payload["messages"] or last
    raise AssertionError("the form never ended")


async def test_a_worker_files_with_the_builtin_server_where_serve_listens(tmp_path: Path) -> None:
    server = ServeProcess(
        tmp_path,
        {"CITYBOT_LOG_LEVEL": "INFO", "CITYBOT_FILER_IDLE_SECONDS": "0.2"},
        args=("--no-workers",),
    )
    worker_log = tmp_path / "worker.log"
    with worker_log.open("w") as log:
        # Started first: serve is not there yet, and the worker says so.
        worker = subprocess.Popen(
            [str(CITYBOT), "worker"],
            cwd=tmp_path,
            env=server.env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    try:
        await _until_in(worker_log, "the city's back end cannot be reached", 30)
        assert f"127.0.0.1:{server.port}/open311/v2" in worker_log.read_text()
        await asyncio.to_thread(server.start)
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            reference = await _report(http, server.url)
            assert reference.startswith("CT-")
            deadline = time.monotonic() + 20
            while True:
                async with http.get(server.url + "/open311/v2/requests.json") as response:
                    filed = await response.json()
                if filed:
                    break
                assert time.monotonic() < deadline, "the worker never filed the report"
                await asyncio.sleep(0.2)
        assert len(filed) == 1
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(worker.wait, 20) == 0
        assert server.stop() == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        if server.process is not None and server.process.poll() is None:
            server.stop(signal.SIGKILL)
