"""Bring a database to the newest schema: ``citybot db upgrade`` and ``serve`` at start.

Alembic is configured in code (no alembic.ini), with paths taken from this package, so it works
from any working directory and from an installed wheel. Its synchronous API runs inside
``AsyncConnection.run_sync`` on the same async driver the bot uses.

Adding a revision (for a new table in ``storage/models/``)::

    .venv/bin/python -m storage.migrate revision -m "support tickets"

writes ``storage/migrations/versions/<rev>_support_tickets.py`` from the difference between the models
and a freshly upgraded scratch SQLite database; review it, then ``citybot db upgrade``.

Example::

    await upgrade_database("sqlite+aiosqlite:///./citybot.sqlite3")
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from storage.partitions import is_partition_name
from storage.session import create_engine, to_async_url

__all__ = [
    "alembic_config",
    "import_model_modules",
    "include_name",
    "pending_migrations",
    "upgrade_database",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any fixed number: processes upgrading together (several `serve` and `worker` starting at once,
# or beside `citybot db upgrade`) take turns on PostgreSQL; the second finds nothing left to do.
# SQLite needs no lock: the upgrade's transaction holds the file's write lock.
_PG_MIGRATION_LOCK = 731_311


def import_model_modules() -> None:
    """Put every table on ``Base.metadata`` (``storage.models`` imports each domain's module)."""
    importlib.import_module("storage.models")


def include_name(name: str | None, type_: str, _parent: object) -> bool:
    """What Alembic compares with the models: every table but the message log's monthly
    partitions (PostgreSQL), which the housekeeping worker makes and drops."""
    return not (type_ == "table" and name is not None and is_partition_name(name))


def alembic_config(url: str) -> Config:
    """An Alembic ``Config`` pointing at citybot's migrations, for ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    # ConfigParser interpolation would trip over a '%' in a password.
    config.set_main_option("sqlalchemy.url", str(to_async_url(url)).replace("%", "%%"))
    return config


def _upgrade(connection: Connection, url: str) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    config = alembic_config(url)
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def upgrade_database(url: str) -> None:
    """Apply every migration not yet applied; an empty SQLite file becomes a full database."""
    # SQLite: batch mode rebuilds a table to alter it (copy, drop, rename); with foreign keys on,
    # dropping the old table would cascade-delete the rows pointing at it (a request's status
    # history), so this connection has them off. PostgreSQL alters in place.
    engine = create_engine(url, pool_size=1, max_overflow=0, foreign_keys=False)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_upgrade, url)
    finally:
        await engine.dispose()


def _pending(connection: Connection, url: str) -> int:
    current = MigrationContext.configure(connection).get_current_heads()
    script = ScriptDirectory.from_config(alembic_config(url))
    # One line of history: the revisions between the one applied (or none) and the head.
    lower = current[0] if len(current) == 1 else "base"
    return sum(1 for _ in script.iterate_revisions("heads", lower))


async def pending_migrations(url: str) -> int:
    """How many migrations ``upgrade_database`` would apply (read-only; ``citybot check``)."""
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_pending, url)
    finally:
        await engine.dispose()


def _write_revision(message: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite+aiosqlite:///{scratch}/scratch.sqlite3"
        asyncio.run(upgrade_database(url))
        command.revision(alembic_config(url), message=message, autogenerate=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m storage.migrate")
    sub = parser.add_subparsers(dest="action", required=True)
    revision = sub.add_parser("revision", help="write a new revision from the models")
    revision.add_argument("-m", "--message", required=True)
    args = parser.parse_args(argv)
    if args.action == "revision":
        _write_revision(args.message)
    return 0


if __name__ == "__main__":
    sys.exit(main())
