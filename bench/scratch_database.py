"""A database of its own for each bench run: the run starts from nothing, and leaves nothing.

A PostgreSQL URL names the server: a database ``citybot_bench_<random>`` is created there,
migrated, handed over, and dropped at the end (so runs do not grow the tables later runs and the
tests work on). Without a URL (or with SQLite), a SQLite file in a scratch folder.

Example::

    async with scratch_database("postgresql+asyncpg://postgres@127.0.0.1:5432/test") as url:
        ...  # url names citybot_bench_3f2a9c1b7d on that server, migrated
"""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from storage.migrate import upgrade_database

__all__ = ["scratch_database"]


@contextlib.asynccontextmanager
async def scratch_database(url: str | None) -> AsyncIterator[str]:
    if url is None or url.startswith("sqlite"):
        with tempfile.TemporaryDirectory(prefix="citybot-bench-") as folder:
            path = url or f"sqlite+aiosqlite:///{Path(folder) / 'bench.sqlite3'}"
            await upgrade_database(path)
            yield path
        return
    base = make_url(url)
    name = f"citybot_bench_{uuid.uuid4().hex[:10]}"
    admin_dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(admin_dsn)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    scratch = base.set(database=name).render_as_string(hide_password=False)
    try:
        await upgrade_database(scratch)
        yield scratch
    finally:
        admin = await asyncpg.connect(admin_dsn)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
