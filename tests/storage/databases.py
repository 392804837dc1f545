"""Throw-away databases on real servers: a SQLite file, or a fresh PostgreSQL database.

Each PostgreSQL test database is created from scratch and dropped afterwards, so tests of several
teammates can share one server without seeing each other's tables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from storage.migrate import upgrade_database

POSTGRES_ENV = "CITYBOT_TEST_POSTGRES_URL"
REDIS_ENV = "CITYBOT_TEST_REDIS_URL"


def _service_or_skip(var: str, what: str) -> str:
    """The server's URL; skip with a clear message where it is not configured."""
    url = os.environ.get(var)
    if url:
        return url
    message = f"{what} not configured: set {var} (CI sets it)"
    # In CI a missing server is a failure, never a silent skip.
    if os.environ.get("CITYBOT_TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


def postgres_url_or_skip() -> str:
    return _service_or_skip(POSTGRES_ENV, "PostgreSQL")


def redis_url_or_skip() -> str:
    return _service_or_skip(REDIS_ENV, "Redis")


@asynccontextmanager
async def sqlite_database(folder: Path, *, migrate: bool = True) -> AsyncIterator[str]:
    url = f"sqlite+aiosqlite:///{folder / 'citybot-test.sqlite3'}"
    if migrate:
        await upgrade_database(url)
    yield url


@asynccontextmanager
async def postgres_database(
    server_url: str | None = None, *, migrate: bool = True, prefix: str = "citybot_t"
) -> AsyncIterator[str]:
    """A new database on the PostgreSQL server (the tests' one unless ``server_url``), dropped
    at the end."""
    base = make_url(server_url or postgres_url_or_skip())
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin_dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = base.set(database=name).render_as_string(hide_password=False)
    try:
        if migrate:
            await upgrade_database(url)
        yield url
    finally:
        admin = await asyncpg.connect(admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


async def partitions_of(sessions: async_sessionmaker[AsyncSession], table: str) -> set[str]:
    """The names of ``table``'s partitions, read from PostgreSQL's catalog (not from the code
    under test)."""
    async with sessions() as session:
        names = await session.scalars(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = to_regclass(:table)"
            ),
            {"table": table},
        )
        return set(names)


async def relkind(connection: AsyncConnection, name: str) -> str | None:
    """What ``name`` is in PostgreSQL's catalog: ``r`` a table, ``p`` a partitioned one, None
    when there is none."""
    kind = await connection.scalar(
        text("SELECT relkind::text FROM pg_class WHERE oid = to_regclass(:name)"), {"name": name}
    )
    return None if kind is None else str(kind)
