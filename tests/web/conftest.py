"""Fixtures for the web tests: a real app on a temporary SQLite file, and a test client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bot.app import SERVICES_KEY, create_app
from bot.config import Settings
from bot.services import Services
from tests.web.webchat_residents import WebResident


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # Scenario residents answer far faster than people type: the rate limit gets its own tests.
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/citybot.sqlite3",
        session_secret="test-secret",
        rate_limit_per_second=1000.0,
        rate_limit_burst=1000,
    )


@pytest.fixture
async def app(settings: Settings) -> web.Application:
    return await create_app(settings, workers=False)


@pytest.fixture
async def client(
    aiohttp_client: Callable[..., Any], app: web.Application
) -> AsyncIterator[TestClient[Any, Any]]:
    yield await aiohttp_client(app)


@pytest.fixture
def services(app: web.Application) -> Services:
    return app[SERVICES_KEY]


@pytest.fixture
async def resident_factory(
    client: TestClient[Any, Any],
) -> AsyncIterator[Callable[..., WebResident]]:
    """``new(seed=1)`` -> a new resident (own cookie jar) talking to ``client``'s server."""
    made: list[WebResident] = []

    def new(seed: int = 1, on: TestClient[Any, Any] | None = None) -> WebResident:
        made.append(WebResident(on or client, seed))
        return made[-1]

    yield new
    for resident in made:
        await resident.close()
