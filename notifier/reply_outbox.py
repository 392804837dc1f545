"""The reply queue without Redis: each reply committed with its turn, in the database, until sent.

With Redis a turn commits its reply on the reply stream (``notifier.reply_queue``). Without it
(the embedded default) the turn writes the rendered reply as a ``pending_replies`` row in its own
transaction (``conversations.turn``), so a reply exists exactly when its turn does; the process
sends it from memory as before (``ReplySender``, in order per resident, paced, retried) and
deletes the row once it is sent or has finally failed (deletions group committed). A process
killed in between leaves the rows, and ``recover`` sends them, in the order they were committed,
when the next one starts, before it takes new messages.

Without Redis there is one process sending replies (its locks are in process), so the rows at
start-up are all a dead process's. A process killed after sending but before the deletion was
committed sends that reply again: at least once, never lost, as with Redis.

Example::

    outbox = ReplyOutbox(engine, sessionmaker)
    await outbox.recover(sender, channels)          # on start: what a killed process left
    sender.schedule(channel, messages, on_done=lambda: outbox.done(row_id))
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from functools import partial

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from channels.base import BaseChannel
from notifier.replies import ReplySender
from notifier.reply_queue import UnreadableEntry, decode
from storage.models import PendingReply
from storage.sql_batch import SqlBatcher

__all__ = ["ReplyOutbox"]

log = logging.getLogger("citybot.replies")

_RECOVER_BATCH = 1000


class ReplyOutbox:
    def __init__(self, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker
        self._deletions: SqlBatcher[int, None] = SqlBatcher(
            engine, _delete_many, name="sent replies"
        )
        self._deleting: set[asyncio.Future[None]] = set()

    def done(self, row_id: int) -> None:
        """The reply of ``row_id`` is sent (or finally failed): forget it (group committed)."""
        deleting = asyncio.ensure_future(self._deletions.submit(row_id))
        self._deleting.add(deleting)
        deleting.add_done_callback(self._deleted)

    def _deleted(self, deleting: asyncio.Future[None]) -> None:
        self._deleting.discard(deleting)
        if not deleting.cancelled() and deleting.exception() is not None:
            # The row stays: the next start sends that reply again (at least once).
            log.warning("could not forget a sent reply", exc_info=deleting.exception())

    async def waiting(self) -> int:
        async with self.sessionmaker() as session:
            rows = await session.scalars(select(PendingReply.id))
            return len(rows.all())

    async def recover(self, sender: ReplySender, channels: Mapping[str, BaseChannel]) -> int:
        """Send the replies a killed process left, oldest first; how many were scheduled."""
        scheduled = 0
        after = 0
        while True:
            async with self.sessionmaker() as session:
                rows = (
                    await session.execute(
                        select(PendingReply.id, PendingReply.entry)
                        .where(PendingReply.id > after)
                        .order_by(PendingReply.id)
                        .limit(_RECOVER_BATCH)
                    )
                ).all()
            if not rows:
                return scheduled
            for row_id, entry in rows:
                after = row_id
                try:
                    name, messages = decode(entry)
                except (UnreadableEntry, ValueError, KeyError, TypeError):
                    log.error("unreadable pending reply dropped", extra={"row": row_id})
                    self.done(row_id)
                    continue
                channel = channels.get(name)
                if channel is None:
                    log.warning("pending reply dropped: channel off", extra={"channel": name})
                    self.done(row_id)
                    continue
                sender.schedule(channel, messages, on_done=partial(self.done, row_id))
                scheduled += 1

    async def flush(self) -> None:
        """Wait until every reply marked done so far is deleted."""
        if self._deleting:
            await asyncio.gather(*list(self._deleting), return_exceptions=True)

    async def close(self) -> None:
        await self.flush()
        await self._deletions.close()


async def _delete_many(connection: AsyncConnection, rows: Sequence[int]) -> list[None]:
    await connection.execute(delete(PendingReply).where(PendingReply.id.in_(list(rows))))
    return [None] * len(rows)
