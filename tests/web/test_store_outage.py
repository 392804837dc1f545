"""A database that is briefly down: 503 with a reason, the message is not marked processed,
and the same message sent again once the database is back is processed normally.

The outage is real: PostgreSQL is reached through a small TCP proxy that the test stops (closing
every connection) and starts again on the same port.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy.engine import make_url

from bot.app import create_app
from bot.config import Settings
from tests.storage.databases import postgres_database
from tests.web.tcp_proxy import TcpProxy
from tests.web.webchat_residents import WebResident

pytestmark = pytest.mark.postgres


@pytest.fixture
async def own_database() -> AsyncIterator[str]:
    """A database of this test's own: the shared one may be at another branch's revision."""
    async with postgres_database() as url:
        yield url


async def test_database_down_gives_503_and_the_message_is_kept_for_a_retry(
    aiohttp_client: Callable[..., Any], own_database: str
) -> None:
    url = make_url(own_database)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await proxy.start()
    settings = Settings(
        database_url=url.set(host="127.0.0.1", port=proxy.port).render_as_string(False),
        session_secret="x",
        rate_limit_per_second=100.0,
        rate_limit_burst=100,
    )
    client = await aiohttp_client(await create_app(settings, workers=False))
    resident = WebResident(client)
    try:
        await resident.say(text="pothole", client_message_id="m-1")

        await proxy.stop()
        down = await resident.say(expect=503, option_id="pothole", client_message_id="m-2")
        assert "unavailable" in down["error"]
        ready = await client.get("/readyz")
        assert ready.status == 503
        assert (await ready.json())["checks"]["database"] == "down"
        for reading in ("/webchat/history", "/webchat/messages?after=0"):
            async with resident.http.get(client.make_url(reading)) as response:
                assert response.status == 503, reading
                assert "unavailable" in (await response.json())["error"]

        await proxy.start()
        again = await resident.say(option_id="pothole", client_message_id="m-2")
        assert not again["duplicate"] and again["messages"], "the retry was processed, once"
        assert (await client.get("/readyz")).status == 200
        metrics = await (await client.get("/metrics")).text()
        assert 'citybot_errors_total{where="turn"}' in metrics
    finally:
        await resident.close()
        with contextlib.suppress(Exception):
            await proxy.stop()
