"""Where each phone is in its USSD dialogue, kept in SQL between the gateway's requests.

A USSD session lives only as long as the network allows (20 to 180 seconds), and every request
of it carries the whole input again; the dialogue (``bot.ussd``) needs what it showed last to
know what "2" means now. One row per phone: a new session replaces the old one's row, which is
how a resident who dials again within ``RESUME_WITHIN`` is offered to continue.

Example::

    sessions = UssdSessions(sessionmaker)
    saved = await sessions.get("+27831234567")      # SavedUssd(...) or None
    await sessions.put("+27831234567", SavedUssd("ATUid_1", 2, {...}, "CON ..."))
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import UssdSession
from storage.types import utc_now

__all__ = ["KEEP", "RESUME_WITHIN", "SavedUssd", "UssdSessions"]

# The promise: cut off and back within ten minutes, the resident continues.
RESUME_WITHIN = timedelta(minutes=10)
# Past this a row serves nothing (no resume, no gateway retry) and housekeeping deletes it
# (``conversations.retention``): the margin covers a clock step and an hourly purge.
KEEP = RESUME_WITHIN + timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class SavedUssd:
    session_id: str
    # How many ``*``-joined parts of the gateway's ``text`` the dialogue has taken.
    consumed: int
    # The dialogue's own state: mode, locale, the screen's numbered choices, its page.
    screen: dict[str, Any]
    # The whole last answer ("CON ..." / "END ..."), for a gateway that asks again.
    answer: str
    updated_at: datetime | None = None

    def resumable(self, now: datetime) -> bool:
        return self.updated_at is not None and now - self.updated_at <= RESUME_WITHIN


def _upsert(insert: Any) -> Any:
    statement = insert(UssdSession.__table__)
    return statement.on_conflict_do_update(
        index_elements=["phone"],
        set_={
            name: getattr(statement.excluded, name)
            for name in ("session_id", "consumed", "screen", "answer", "updated_at")
        },
    )


# One statement, not a read then an insert: a gateway that re-sends a phone's first request
# while the first is being answered would otherwise insert the phone's row twice (a 500).
_UPSERT = {"postgresql": _upsert(pg_insert), "sqlite": _upsert(sqlite_insert)}


class UssdSessions:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def get(self, phone: str) -> SavedUssd | None:
        async with self._sessions() as db:
            row = await db.scalar(select(UssdSession).where(UssdSession.phone == phone))
        if row is None:
            return None
        return SavedUssd(row.session_id, row.consumed, dict(row.screen), row.answer, row.updated_at)

    async def put(self, phone: str, saved: SavedUssd) -> None:
        async with self._sessions.begin() as db:
            values = {
                "phone": phone,
                "session_id": saved.session_id,
                "consumed": saved.consumed,
                "screen": saved.screen,
                "answer": saved.answer,
                "updated_at": utc_now(),
            }
            await db.execute(_UPSERT[db.get_bind().dialect.name], values)

    async def forget(self, phone: str) -> None:
        """Drop a phone's row (the resident's data is erased)."""
        async with self._sessions.begin() as db:
            await db.execute(delete(UssdSession).where(UssdSession.phone == phone))
