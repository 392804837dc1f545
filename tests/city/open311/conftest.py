"""The built-in GeoReport v2 server on a loopback port, with an SQLite database per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from city.open311.client import Open311Backend
from city.open311.server import PREFIX, add_open311_routes
from forms_runtime.loader import standard_forms
from forms_runtime.model import Form
from storage.base import Base
from storage.models import Open311Request

FIXTURES = Path("/work/shared/fixtures/open311")
BOSTON = Path("/work/shared/data/boston_open311_sample_5cats.json")


@pytest.fixture(scope="session")
def forms() -> dict[str, Form]:
    return standard_forms()


@pytest.fixture
async def sessionmaker(tmp_path: Path) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'open311.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(
            Base.metadata.create_all, tables=[Base.metadata.tables[Open311Request.__tablename__]]
        )
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()


ServerFactory = Callable[..., Any]


@pytest.fixture
async def open311_server(
    sessionmaker: async_sessionmaker[AsyncSession], forms: dict[str, Form]
) -> AsyncIterator[ServerFactory]:
    """Start a built-in server; returns its base URL. Keyword arguments go to add_open311_routes."""
    servers: list[TestServer] = []

    async def start(**options: Any) -> str:
        options.setdefault("api_key", "")
        app = web.Application()
        add_open311_routes(app, sessionmaker, forms, **options)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url(PREFIX))

    yield start
    for server in servers:
        await server.close()


@pytest.fixture(params=["json", "xml"])
async def backend(
    request: pytest.FixtureRequest, open311_server: ServerFactory
) -> AsyncIterator[Open311Backend]:
    client = Open311Backend(await open311_server(), format=request.param)
    yield client
    await client.close()
