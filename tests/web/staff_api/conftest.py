"""The admin API over real HTTP on loopback: a real app on SQLite (or PostgreSQL where a test
asks for it), staff members with their own cookie jars, a settable clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.app import SERVICES_KEY, create_app
from bot.config import Settings
from bot.web.staff_api import CLOCK_KEY
from tests.storage.databases import postgres_database
from tests.web.staff_members import Clock, StaffHouse, fast_authentication


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def public_url() -> str:
    return "http://localhost:8080"


@pytest.fixture(params=["sqlite"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path}/citybot.sqlite3"
    else:
        async with postgres_database() as url:
            yield url


@pytest.fixture
async def house(
    aiohttp_client: Callable[..., Any], database_url: str, clock: Clock, public_url: str
) -> AsyncIterator[StaffHouse]:
    settings = Settings(
        database_url=database_url, session_secret="test-secret", public_url=public_url
    )
    app = await create_app(settings, workers=False)
    services = app[SERVICES_KEY]
    services.staff_auth = fast_authentication(services, clock)
    app[CLOCK_KEY] = clock.seconds
    client = await aiohttp_client(app)
    house = StaffHouse(services, str(client.make_url("/")), clock)
    yield house
    await house.close()
