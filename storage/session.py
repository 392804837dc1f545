"""Engines and sessions for the embedded default (SQLite) and production (PostgreSQL).

SQLite runs in WAL mode with a busy timeout and foreign keys on, and every transaction starts
with ``BEGIN IMMEDIATE``: a turn reads and then writes, and a deferred transaction that has to
upgrade its read lock fails at once instead of waiting when another writer got there first.

Example::

    engine = create_engine("sqlite+aiosqlite:///./citybot.sqlite3")
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker() as session, session.begin():
        ...
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine

__all__ = [
    "create_engine",
    "create_sessionmaker",
    "to_async_url",
]

SQLITE_BUSY_TIMEOUT_MS = 10_000


def to_async_url(url: str | URL) -> URL:
    """Accept what operators write (``postgresql://``, ``sqlite:///``) and pick the async driver."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.get_driver_name() != "aiosqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend == "postgresql" and parsed.get_driver_name() != "asyncpg":
        return parsed.set(drivername="postgresql+asyncpg")
    return parsed


def create_engine(
    url: str, *, pool_size: int = 10, max_overflow: int = 20, foreign_keys: bool = True
) -> AsyncEngine:
    """An async engine for ``url`` (SQLite via aiosqlite, PostgreSQL via asyncpg).

    ``foreign_keys=False`` is for migrations only: SQLite enforces foreign keys per connection,
    and a batch migration that rebuilds a table (copy, drop, rename) would otherwise
    cascade-delete the rows that point at it.
    """
    parsed = to_async_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, foreign_keys=foreign_keys)
    kwargs: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": max_overflow,
        # A connection dropped by a restarted database is replaced, not handed to a turn.
        "pool_pre_ping": True,
        "pool_recycle": 1800,
    }
    return _create_async_engine(parsed, **kwargs)


def _sqlite_engine(url: URL, *, foreign_keys: bool = True) -> AsyncEngine:
    engine = _create_async_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver so BEGIN IMMEDIATE below is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        if url.database and url.database != ":memory:":
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit (a turn reads them after committing)."""
    return async_sessionmaker(engine, expire_on_commit=False)
