"""The demo as a newcomer runs it: ``citybot serve`` as a real process with nothing configured,
a resident on the web chat, a staff member (made with ``citybot staff``) on the admin API.

Also the loop on PostgreSQL (the filer's row locks, the poller's claims), where CI provides it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from tests.e2e.city import (
    SmsResident,
    WebChatResident,
    eventually,
    running_city,
)
from tests.e2e.test_report_loop import close_the_loop
from tests.fakes.twilio_api import FakeTwilio
from tests.storage.databases import postgres_database
from tests.web.serve_process import ServeProcess


def _staff_token(serve: ServeProcess) -> str:
    """An agent's API token, as an admin makes one: ``citybot staff add`` then ``token``."""
    citybot = str(Path(sys.executable).with_name("citybot"))
    for args in (
        ["staff", "add", "agent@city.gov", "--role", "agent"],
        ["staff", "token", "agent@city.gov", "--role", "agent", "--days", "1"],
    ):
        done = subprocess.run(
            [citybot, *args], env=serve.env, capture_output=True, text=True, check=True
        )
    return done.stdout.strip().splitlines()[-1]


async def test_citybot_serve_closes_the_loop_for_a_web_chat_resident(tmp_path: Path) -> None:
    serve = ServeProcess(
        tmp_path,
        {
            "CITYBOT_QUIET_HOURS": "off",
            "CITYBOT_STATUS_POLL_SECONDS": "0.2",
            "CITYBOT_FILER_IDLE_SECONDS": "0.1",
        },
    )
    await asyncio.to_thread(serve.start)
    resident = WebChatResident(serve.url)
    try:
        started = time.perf_counter()
        reference = await resident.report("pothole", "en")

        async def filed() -> list[str]:
            return [t for t in await resident.poll() if reference in t and "city's number" in t]

        await eventually(filed)
        async with aiohttp.ClientSession() as http:
            async with http.get(serve.url + "/open311/v2/requests.json") as response:
                [request] = await response.json()
            # Public: the status, never the resident's words (the filer's key sees those).
            assert request["status"] == "open" and request.get("description") is None
            token = await asyncio.to_thread(_staff_token, serve)
            async with http.patch(
                f"{serve.url}/api/v1/requests/{reference}",
                json={"status": "closed", "status_notes": "Patched."},
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                assert response.status == 200, await response.text()

        async def closed() -> list[str]:
            return [t for t in await resident.poll() if "closed" in t and "Patched." in t]

        assert len(await eventually(closed)) == 1
        print(f"\ncitybot serve, web chat loop: {time.perf_counter() - started:.2f} s")
    finally:
        await resident.close()
        await asyncio.to_thread(serve.stop)


async def test_the_loop_on_postgresql(tmp_path: Path) -> None:
    async with postgres_database() as url, FakeTwilio() as twilio:
        env = {"CITYBOT_DATABASE_URL": url}
        async with running_city(tmp_path, twilio=twilio, env=env) as city:
            await close_the_loop(city, SmsResident(city), "en")
