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
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import OperationalError
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
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 20,
    foreign_keys: bool = True,
    connect_timeout: float | None = None,
) -> AsyncEngine:
    """An async engine for ``url`` (SQLite via aiosqlite, PostgreSQL via asyncpg).

    ``foreign_keys=False`` is for migrations only: SQLite enforces foreign keys per connection,
    and a batch migration that rebuilds a table (copy, drop, rename) would otherwise
    cascade-delete the rows that point at it.

    ``connect_timeout`` (PostgreSQL) bounds a new connection's wait: a read replica that has
    vanished from the network must send reads to the primary in seconds, not asyncpg's minute.
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
        # A failed statement's error carries its parameters (phone numbers, message text) into
        # the logs unless told not to; the statement itself is enough to debug.
        "hide_parameters": True,
    }
    if connect_timeout is not None:
        kwargs["connect_args"] = {"timeout": connect_timeout}
    engine = _create_async_engine(parsed, **kwargs)
    event.listen(engine.sync_engine, "handle_error", _server_going_away)
    return engine


# SQLSTATE classes that mean the server is going away or not back yet, not that the statement
# is wrong: 08 (connection exception) and 57P (shut down by an operator or a crash, "cannot
# connect now" while it recovers). asyncpg's adapter raises them as a plain DBAPIError.
_GOING_AWAY = ("08", "57P")


def _server_going_away(context: ExceptionContext) -> BaseException | None:
    """A database restarting is an outage, not a bug: raised as ``OperationalError`` (what
    every caller treats as "try again", 503) and the connection dropped from the pool, rather
    than a DBAPIError answered 500 (found by tests/reliability/test_outages.py)."""
    error = context.sqlalchemy_exception
    state = getattr(context.original_exception, "sqlstate", None) or ""
    if error is None or isinstance(error, OperationalError) or not state.startswith(_GOING_AWAY):
        return None
    context.is_disconnect = True
    return OperationalError(
        context.statement,
        context.parameters,
        context.original_exception,
        hide_parameters=True,
        connection_invalidated=True,
    )


def _sqlite_engine(url: URL, *, foreign_keys: bool = True) -> AsyncEngine:
    engine = _create_async_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, hide_parameters=True
    )

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
