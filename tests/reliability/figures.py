"""What the reliability suite shares: its figures, its two sizes, and row counts.

Each test prints one ``figure:`` line (``pytest -s`` shows it; docs/reliability.md quotes it).
``CITYBOT_CHAOS=1`` (``make chaos``) runs the long variants: ``chaos(ci, long)`` picks the size.

Example::

    rounds = chaos(3, 50)
    figure(f"kill -9 of serve: {rounds} rounds, 0 unanswered")
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import storage.models  # noqa: F401  (every table on the metadata)
from storage.base import Base

__all__ = ["CHAOS", "chaos", "count_rows", "eventually", "figure"]

CHAOS = os.environ.get("CITYBOT_CHAOS") == "1"

T = TypeVar("T")


def chaos(ci: T, long: T) -> T:
    """``long`` under ``make chaos``, else the bounded ``ci`` size."""
    return long if CHAOS else ci


def figure(text: str) -> None:
    print(f"\nfigure: {text}", flush=True)


async def count_rows(sessions: async_sessionmaker[AsyncSession]) -> dict[str, int]:
    """Rows in every table of the schema, by table name."""
    counts: dict[str, int] = {}
    async with sessions() as db:
        for table in Base.metadata.sorted_tables:
            counts[table.name] = int(await db.scalar(select(func.count()).select_from(table)) or 0)
    return counts


async def eventually(
    check: Callable[[], Awaitable[Any]], timeout: float, what: str, every: float = 0.1
) -> Any:
    """Poll ``check()`` until it is truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout} s still waiting for {what}")
        await asyncio.sleep(every)
