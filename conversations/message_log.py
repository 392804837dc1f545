"""The message log (every message in and out), written in the turn or behind it in batches.

Two ways to write, chosen once per turn loop:

* in the turn's transaction (``write_rows``), when the turn has a SQL transaction anyway (the SQL
  state store, the embedded default): the log is exactly as durable as the state;
* behind the turn (``MessageLogWriter``), when the state lives in Redis and an ordinary turn
  touches no SQL at all: rows are queued in memory and a background task writes them as one
  multi-row ``INSERT`` every ``interval`` seconds (or as soon as ``batch`` rows wait).

The trade-off of writing behind, on purpose: the audit rows of the last ``interval`` (50 ms by
default) are lost if the process is killed; a graceful shutdown (``close``) writes them. Nothing
else is behind: submissions and their outbox rows, consent, opt-outs and erasures are committed
before the resident is answered, and the state and processed marker are in Redis. If the
database is down the rows wait (up to ``max_pending``) and are written when it is back. A row
the database refuses is set aside (logged and counted) so the rows queued after it are written.

The writer keeps the queue's order, so log ids follow arrival order per resident. An erasure
queues a ``scrub`` after the resident's rows, so rows still waiting lose their text too.

Example::

    writer = MessageLogWriter(engine)
    writer.add(inbound_row(message, resident_id, now), outbound_row(message, resident_id, effects, now))
    await writer.close()   # writes what is still queued
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, and_, bindparam, insert, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from channels.types import InboundMessage
from forms_runtime.effects import Ask, Cancelled, Effect, Handoff, Notice, Reject, Review
from storage.failures import database_unreachable
from storage.models import MessageLog, ResidentAddress
from storage.resident_data import scrub_resident

__all__ = [
    "MessageLogWriter",
    "effect_text",
    "inbound_row",
    "outbound_row",
    "write_rows",
]

log = logging.getLogger(__name__)

_log = cast(Table, MessageLog.__table__)
_addresses = cast(Table, ResidentAddress.__table__)
_INSERT = insert(_log)
_TOUCH = (
    update(_addresses)
    .where(
        and_(_addresses.c.channel == bindparam("c"), _addresses.c.address == bindparam("a")),
    )
    .values(last_inbound_at=bindparam("at"))
)

_PING = text("SELECT 1")

Row = dict[str, Any]


def inbound_row(message: InboundMessage, resident_id: int | None, now: datetime) -> Row:
    text = message.text if message.text is not None else message.option_id
    if text is None and message.location is not None:
        text = f"{message.location.lat},{message.location.lon}"
    return {
        "direction": "in",
        "channel": message.channel,
        "address": message.address,
        "resident_id": resident_id,
        "provider_message_id": message.message_id,
        "kind": str(message.kind),
        "text": text,
        "status": None,
        "created_at": now,
    }


def outbound_row(
    message: InboundMessage,
    resident_id: int | None,
    effects: Sequence[Effect],
    now: datetime,
    *,
    late: bool = False,
) -> Row:
    return {
        "direction": "out",
        "channel": message.channel,
        "address": message.address,
        "resident_id": resident_id,
        "provider_message_id": None,
        # A reply to a message held over the rate limit comes after its exchange: the web chat
        # page shows it as it shows the messages the bot starts (GET /webchat/messages).
        "kind": "late_reply" if late else "reply",
        "text": "\n".join(t for t in map(effect_text, effects) if t),
        "status": "queued",
        "created_at": now,
    }


def effect_text(effect: Effect) -> str:
    """What the log keeps of one effect: the words the resident was shown."""
    if isinstance(effect, Ask):
        options = " | ".join(o.label for o in effect.options)
        return f"{effect.prompt} [{options}]" if options else effect.prompt
    if isinstance(effect, Review):
        items = "; ".join(f"{i.number}. {i.label}: {i.value}" for i in effect.items)
        return f"{effect.title} {items} {effect.prompt}"
    if isinstance(effect, Reject | Notice | Cancelled | Handoff):
        return effect.message
    return ""


async def write_rows(db: AsyncSession | AsyncConnection, rows: Sequence[Row]) -> None:
    """Insert ``rows`` inside the caller's transaction (one multi-row statement)."""
    if rows:
        await db.execute(_INSERT, list(rows))


@dataclass(frozen=True, slots=True)
class _Scrub:
    resident_id: int


@dataclass(frozen=True, slots=True)
class _Touch:
    channel: str
    address: str
    at: datetime


class MessageLogWriter:
    """Writes log rows behind the turns: batched, ordered, retried, flushed on ``close``.

    One row the database refuses (a value it cannot store) never holds up the others: a batch
    that fails while the database answers is split in halves until the refused rows stand
    alone; those are set aside (a log line, ``set_aside``) and every other row is written, in
    order. While the database cannot be used, nothing is set aside: the rows wait.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        name: str = "messages",
        interval: float = 0.05,
        batch: int = 500,
        max_pending: int = 200_000,
    ) -> None:
        self._engine = engine
        self.name = name
        self._interval = interval
        self._batch = batch
        self._max_pending = max_pending
        self._queue: deque[Row | _Scrub | _Touch] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._flushing = asyncio.Lock()
        self.dropped = 0  # rows given up on because the database stayed down too long
        self.set_aside = 0  # rows (or updates) the database refused, left out of the log

    def __len__(self) -> int:
        """Rows and updates waiting to be written."""
        return len(self._queue)

    @property
    def backlog(self) -> int:
        """Rows and updates waiting to be written (``/metrics``)."""
        return len(self._queue)

    def add(self, *rows: Row) -> None:
        self._queue.extend(rows)
        self._kick()

    def scrub(self, resident_id: int) -> None:
        """Clear a resident's logged texts once everything queued before is written (erasure)."""
        self._queue.append(_Scrub(resident_id))
        self._kick()

    def touch(self, channel: str, address: str, at: datetime) -> None:
        """Set ``resident_addresses.last_inbound_at`` with the next batch."""
        self._queue.append(_Touch(channel, address, at))
        self._kick()

    def _kick(self) -> None:
        if self._closed:
            raise RuntimeError("the message log writer is closed")
        if len(self._queue) > self._max_pending:
            self._drop_oldest()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"log-writer:{self.name}")
        if len(self._queue) >= self._batch:
            self._wake.set()

    def _drop_oldest(self) -> None:
        excess = len(self._queue) - self._max_pending
        for _ in range(excess):
            self._queue.popleft()
        self.dropped += excess
        log.error("message log: database down too long, %d rows dropped", excess)

    async def _run(self) -> None:
        pause = self._interval
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)
            self._wake.clear()
            # Shielded: a ``close`` in the middle lets the transaction end (``close`` waits for
            # it), so no row is both committed and queued again.
            work = asyncio.ensure_future(self.flush())
            try:
                await asyncio.shield(work)
                pause = self._interval
            except asyncio.CancelledError:
                work.add_done_callback(_retrieved)
                raise
            except Exception:
                # Unreachable: the rows stay queued; try again, backing off up to five seconds.
                pause = min(max(pause * 2, 0.25), 5.0)
                log.warning("message log: write failed, retrying in %.2f s", pause, exc_info=True)

    async def flush(self) -> None:
        """Write everything queued so far; rows the database refuses are set aside. Raises while
        the database cannot be used, with every row not written still queued, in order."""
        async with self._flushing:
            while self._queue:
                taken = [self._queue.popleft() for _ in range(min(self._batch, len(self._queue)))]
                await self._write_or_set_aside(taken)

    async def _write_or_set_aside(self, items: list[Row | _Scrub | _Touch]) -> None:
        """Write ``items`` in order, halving a refused batch until its refused items stand alone."""
        parts: deque[list[Row | _Scrub | _Touch]] = deque([items])
        while parts:
            part = parts.popleft()
            try:
                async with self._engine.begin() as connection:
                    await _write(connection, part)
            except BaseException as exc:
                if isinstance(exc, Exception) and not await self._unreachable(exc):
                    if len(part) == 1:
                        self._set_aside(part[0], exc)
                    else:
                        half = len(part) // 2
                        parts.extendleft((part[half:], part[:half]))
                    continue
                # Put back what is not written, ahead of what was queued since, in order.
                for rest in (*reversed(parts), part):
                    self._queue.extendleft(reversed(rest))
                raise

    async def _unreachable(self, exc: Exception) -> bool:
        """Whether ``exc`` means the database cannot be used now (then nothing is set aside).

        A failure that does not say so by its type is only blamed on the data if the database
        answers a plain query right after it: a row is never set aside because of an outage.
        """
        if database_unreachable(exc):
            return True
        try:
            async with self._engine.connect() as connection:
                await connection.execute(_PING)
        except Exception:
            return True
        return False

    def _set_aside(self, item: Row | _Scrub | _Touch, exc: Exception) -> None:
        self.set_aside += 1
        # What identifies the row, never its text (personal data) nor the error's message (which
        # quotes the statement's parameters).
        # The driver's own exception names the reason best (asyncpg's sits under the adapter's).
        driver = getattr(exc, "orig", None) or exc
        reason = type(driver.__cause__ or driver).__name__
        if isinstance(item, dict):
            log.error(
                "message log: a row the database refused is set aside (%s): %s %s message %.64r",
                reason,
                item.get("channel"),
                item.get("direction"),
                item.get("provider_message_id"),
            )
        else:
            log.error("message log: %s refused by the database, set aside (%s)", item, reason)

    async def close(self) -> None:
        """Write what is queued and stop; a database that is down loses the queued rows."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
        except Exception:
            self.dropped += len(self._queue)
            log.error("message log: %d rows not written at shutdown", len(self._queue))
        self._closed = True


def _retrieved(work: asyncio.Future[None]) -> None:
    # A flush left running by ``close`` (which flushes again after it): its error is not news.
    if not work.cancelled():
        work.exception()


async def _write(connection: AsyncConnection, items: list[Row | _Scrub | _Touch]) -> None:
    """One transaction for a batch, in queue order: runs of rows, then scrubs and touches."""
    rows: list[Row] = []
    touches: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, dict):
            rows.append(item)
        elif isinstance(item, _Touch):
            touches.append({"c": item.channel, "a": item.address, "at": item.at})
        else:
            await write_rows(connection, rows)
            rows = []
            await scrub_resident(connection, item.resident_id)
    await write_rows(connection, rows)
    if touches:
        await connection.execute(_TOUCH, touches)
