"""A turn loop on a real SQLite file with the standard forms, a settable clock and helpers."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from channels.types import InboundKind, InboundMessage
from conversations.dedupe import SqlDedupe
from conversations.locks import InProcessLocks
from conversations.rate_limit import InProcessRateLimiter
from conversations.state_store import SqlStateStore
from conversations.turn import TurnLoop, TurnResult
from forms_runtime.effects import GeoPoint
from forms_runtime.gazetteer import default_gazetteer
from forms_runtime.loader import standard_forms
from storage.session import create_engine, create_sessionmaker
from tests.storage.databases import sqlite_database


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Harness:
    loop: TurnLoop
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    clock: Clock
    limiter_clock: list[float]
    channel: str = "webchat"
    address: str = "resident-1"
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def message(self, text: str | None = None, **kwargs: object) -> InboundMessage:
        values: dict[str, object] = {
            "channel": self.channel,
            "address": self.address,
            "message_id": f"m{next(self._ids)}",
            "text": text,
        }
        values.update(kwargs)
        if values.get("option_id") is not None and "kind" not in values:
            values["kind"] = InboundKind.BUTTON
        return InboundMessage(**values)  # type: ignore[arg-type]

    async def say(self, text: str | None = None, **kwargs: object) -> TurnResult:
        """One message, a second after the last one (a person typing, never rate-limited)."""
        self.limiter_clock[0] += 1.0
        return await self.loop.handle(self.message(text, **kwargs))

    async def pin(self, lat: float, lon: float) -> TurnResult:
        return await self.say(kind=InboundKind.LOCATION, location=GeoPoint(lat, lon))


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    async with sqlite_database(tmp_path) as url:
        engine = create_engine(url)
        sessionmaker = create_sessionmaker(engine)
        clock = Clock()
        limiter_now = [1000.0]
        loop = TurnLoop(
            sessionmaker=sessionmaker,
            states=SqlStateStore(sessionmaker),
            dedupe=SqlDedupe(sessionmaker),
            locks=InProcessLocks(),
            rate_limiter=InProcessRateLimiter(rate=1.0, burst=30, clock=lambda: limiter_now[0]),
            forms=standard_forms(),
            gazetteer=default_gazetteer(),
            clock=clock,
        )
        yield Harness(loop, engine, sessionmaker, clock, limiter_now)
        await loop.close()
        await engine.dispose()
