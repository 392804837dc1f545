"""Alembic environment: runs on the connection ``storage.migrate`` hands it, or opens its own.

``storage.migrate.upgrade_database`` passes an open connection in ``config.attributes`` so that
migrations run inside the caller's event loop and transaction; the ``alembic`` command line (used
to write new revisions) gets an engine from the configured URL instead.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from storage.base import Base
from storage.migrate import import_model_modules, include_name
from storage.session import create_engine

import_model_modules()
config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode rebuilds tables so one revision fits both.
        render_as_batch=True,
        compare_type=True,
        include_name=include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_own_engine(url: str) -> None:
    # Foreign keys off on SQLite, as storage.migrate does: batch mode's table rebuilds must not
    # cascade-delete the rows pointing at a rebuilt table.
    engine = create_engine(url, foreign_keys=False)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_configure)
    finally:
        await engine.dispose()


def _main() -> None:
    url = config.get_main_option("sqlalchemy.url") or ""
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
    else:
        asyncio.run(_run_with_own_engine(url))


_main()
