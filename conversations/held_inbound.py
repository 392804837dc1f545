"""Messages over a resident's rate limit (or sent while Redis was away): accepted, kept, and run
in order once they can be.

A provider will not send a message twice because we were busy (Twilio never retries an SMS we
answered 200), so a message over the limit is not dropped: it is kept in ``held_messages`` and
its turn runs later, when the resident's bucket has a token again. The resident is told once
that the bot is behind (the turn loop's WARN), and hears the answers as the turns run.

Order. A resident's held messages run oldest first, one at a time (``due`` offers only the oldest
of each conversation, leased to one process). A new message from a resident who still has
messages held is held behind them (``waiting``), so nothing overtakes. Asking the database on
every turn would cost every resident a round trip for the rare flood: ``waiting`` asks only for
conversations this process held, or while the last look (at most ``refresh`` old) found any
held at all; another process's hold is seen within ``refresh``.

Crashes. A row stays until its turn has committed (``done``); a process killed while running one
leaves it leased, and another takes it once the lease ends. The turn's dedupe marker makes that
second run a duplicate where the first did commit: run once, answered once.

Example::

    held = HeldInbound(sessionmaker)
    await held.hold(message)               # over the limit: kept
    for row, message in await held.due():  # the drainer (bot.workers)
        ...                                # run the turn; then held.done(row) or held.release(row)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.types import InboundKind, InboundMessage
from conversations.keys import ConversationKey
from conversations.periodic_read import PeriodicRead
from forms_runtime.effects import GeoPoint, MediaRef
from storage.models import HeldMessage
from storage.types import utc_now

__all__ = ["HeldInbound", "message_from_json", "message_to_json"]

# How long a process may take over a held message's turn before another may run it.
DEFAULT_LEASE = timedelta(seconds=60)


class HeldInbound:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        clock: Callable[[], datetime] = utc_now,
        lease: timedelta = DEFAULT_LEASE,
        refresh: float = 0.5,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.clock = clock
        self.lease = lease
        # Conversations this process held a message of and has not yet seen drained.
        self._mine: set[ConversationKey] = set()
        # Whether any message is held at all, in any process: while none is, a turn asks nothing.
        self._any: PeriodicRead[bool] = PeriodicRead(
            every=timedelta(seconds=refresh), initial=False
        )

    async def hold(self, message: InboundMessage) -> bool:
        """Keep ``message`` for later; False when it is held already (a provider's retry)."""
        row = HeldMessage(
            channel=message.channel,
            address=message.address,
            provider_message_id=message.message_id,
            message=message_to_json(message),
            held_at=self.clock(),
        )
        try:
            async with self.sessionmaker() as session, session.begin():
                session.add(row)
        except IntegrityError:
            return False
        self._mine.add(ConversationKey(message.channel, message.address))
        self._any.value = True
        return True

    async def waiting(self, key: ConversationKey) -> bool:
        """Whether this conversation has messages held, which a new one must queue behind."""
        if key not in self._mine and not await self._any.get(utc_now(), self._look):
            return False
        async with self.sessionmaker() as session:
            found = await session.scalar(
                select(HeldMessage.id)
                .where(HeldMessage.channel == key.channel, HeldMessage.address == key.address)
                .limit(1)
            )
        if found is None:
            self._mine.discard(key)
        return found is not None

    async def _look(self) -> bool:
        async with self.sessionmaker() as session:
            return (await session.scalar(select(HeldMessage.id).limit(1))) is not None

    async def due(self, limit: int = 100) -> list[tuple[int, InboundMessage]]:
        """The oldest held message of each conversation whose turn nobody is running, leased
        to this process (each to exactly one process)."""
        now = self.clock()
        oldest = (
            select(func.min(HeldMessage.id))
            .group_by(HeldMessage.channel, HeldMessage.address)
            .scalar_subquery()
        )
        free = or_(HeldMessage.claimed_until.is_(None), HeldMessage.claimed_until < now)
        async with self.sessionmaker() as session, session.begin():
            rows = (
                await session.execute(
                    select(HeldMessage.id, HeldMessage.message)
                    .where(HeldMessage.id.in_(oldest), free)
                    .order_by(HeldMessage.id)
                    .limit(limit)
                )
            ).all()
            taken: list[tuple[int, InboundMessage]] = []
            for row_id, document in rows:
                claimed = await session.execute(
                    update(HeldMessage)
                    .where(HeldMessage.id == row_id, free)
                    .values(claimed_until=now + self.lease)
                )
                if claimed.rowcount == 1:  # type: ignore[attr-defined]
                    taken.append((row_id, message_from_json(document)))
        if rows:
            self._any.value = True
        return taken

    async def done(self, row_id: int) -> None:
        """The held message's turn has committed (or it was a duplicate): forget it."""
        async with self.sessionmaker() as session, session.begin():
            await session.execute(delete(HeldMessage).where(HeldMessage.id == row_id))

    async def release(self, row_id: int, *, after: float = 0.0) -> None:
        """Not yet (the resident is still over the limit, or a store is down): offer it again
        at the next look, or ``after`` seconds from now."""
        again = self.clock() + timedelta(seconds=after) if after > 0 else None
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                update(HeldMessage).where(HeldMessage.id == row_id).values(claimed_until=again)
            )


def message_to_json(message: InboundMessage) -> dict[str, Any]:
    """The parsed message as JSON (``message_from_json`` reads it back)."""
    return {
        "channel": message.channel,
        "address": message.address,
        "message_id": message.message_id,
        "kind": str(message.kind),
        "text": message.text,
        "option_id": message.option_id,
        "location": (
            [message.location.lat, message.location.lon] if message.location is not None else None
        ),
        "media": [[m.url, m.content_type, m.size] for m in message.media],
        "contact_phone": message.contact_phone,
        "language_hint": message.language_hint,
        "display_name": message.display_name,
        "received_at": message.received_at.isoformat() if message.received_at else None,
    }


def message_from_json(document: dict[str, Any]) -> InboundMessage:
    location = document.get("location")
    received = document.get("received_at")
    return InboundMessage(
        channel=document["channel"],
        address=document["address"],
        message_id=document["message_id"],
        kind=InboundKind(document.get("kind") or InboundKind.TEXT),
        text=document.get("text"),
        option_id=document.get("option_id"),
        location=GeoPoint(float(location[0]), float(location[1])) if location else None,
        media=tuple(MediaRef(url, kind, size) for url, kind, size in document.get("media", ())),
        contact_phone=document.get("contact_phone"),
        language_hint=document.get("language_hint"),
        display_name=document.get("display_name"),
        received_at=datetime.fromisoformat(received) if received else None,
    )
