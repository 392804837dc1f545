"""The support console's live feed: what changed in the takeover queue and its conversations,
pushed to every agent's open page (server-sent events, ``bot.web.staff_api_support_events``).

A claim, a reply or a resident's message may be written by any ``citybot serve`` process, so
in-process signals cannot be the source. One poller per process asks the database what is new
every ``interval`` (0.5 s): transcript lines and tickets with an id above the last one it saw,
two index range scans that find nothing most of the time. Every change to a ticket writes a
transcript line (a claim, an assignment, a handback, STOP, a timeout: a ``system`` line), so the
lines and the new tickets are all there is to watch. The poller runs only while someone
watches and is shared by every page connected to the process.

Each watcher gets its own bounded queue of events, filtered to what its account may see (its
wards): ``queue`` (the queue changed; the page asks the API for it again) and ``message`` (a
line of the conversation the page shows). A watcher that falls behind is dropped; its page
reconnects and asks for what it missed (``lines_since``).

Example::

    async with feed.watch(identity.wards, ticket_id=12) as watcher:
        while (event := await watcher.next(timeout=15)) is not None: ...
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from staff import audit
from staff.identity import StaffIdentity
from staff.support_context import visible_ticket
from storage.models import SupportMessage, SupportTicket

__all__ = [
    "FeedEvent",
    "FeedLine",
    "SupportFeed",
    "TicketState",
    "Watcher",
    "lines_since",
    "watch_ticket",
]

log = logging.getLogger("citybot.support")
# Lines read per poll at most: a burst larger than this is read over the next polls.
_BATCH = 500


@dataclass(frozen=True, slots=True)
class FeedLine:
    """One transcript line, as the console shows it."""

    id: int
    ticket_id: int
    direction: str
    author_id: int | None
    text: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class TicketState:
    """Where the line's conversation stands when the line is read (a claim, a handback)."""

    state: str
    agent_id: int | None
    outcome: str | None


@dataclass(frozen=True, slots=True)
class FeedEvent:
    kind: Literal["queue", "message", "closed"]
    line: FeedLine | None = None
    ticket: TicketState | None = None


@dataclass(eq=False)
class Watcher:
    """One open page: its account's wards (None: city-wide) and the conversation it shows."""

    wards: frozenset[str] | None
    ticket_id: int | None
    queue: asyncio.Queue[FeedEvent] = field(default_factory=lambda: asyncio.Queue(maxsize=200))
    # Set when the queue overflowed or the feed closed: the page reconnects.
    ended: bool = False

    def sees(self, ward: str | None) -> bool:
        return self.wards is None or (ward is not None and ward in self.wards)

    def offer(self, event: FeedEvent) -> None:
        if self.ended:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.end()

    def end(self) -> None:
        self.ended = True
        # Wake the reader even when the queue is full: drop one event to make room.
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(FeedEvent("closed"))

    async def next(self, timeout: float) -> FeedEvent | None:
        """The next event, or None when ``timeout`` passed with nothing new."""
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None


_TICKET_STATE = (SupportTicket.state, SupportTicket.agent_id, SupportTicket.outcome)


def _line(m: SupportMessage) -> FeedLine:
    return FeedLine(m.id, m.ticket_id, m.direction, m.author_id, m.text, m.at)


async def lines_since(session: AsyncSession, ticket_id: int, after: int) -> list[FeedEvent]:
    """The lines of ``ticket_id`` after line ``after``: what a reconnecting page missed."""
    rows = await session.execute(
        select(SupportMessage, *_TICKET_STATE)
        .join(SupportTicket, SupportTicket.id == SupportMessage.ticket_id)
        .where(SupportMessage.ticket_id == ticket_id, SupportMessage.id > after)
        .order_by(SupportMessage.id)
        .limit(_BATCH)
    )
    return [
        FeedEvent("message", _line(m), TicketState(state, agent, outcome))
        for m, state, agent, outcome in rows
    ]


class SupportFeed:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, interval: float = 0.5
    ) -> None:
        self.sessions = sessions
        self.interval = interval
        self._watchers: set[Watcher] = set()
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._last_line: int | None = None
        self._last_ticket: int | None = None
        self._closed = False
        # Two pages connecting at once start one poller, not two.
        self._starting = asyncio.Lock()
        # Polls made since the process started (the tests count them).
        self.polls = 0

    @property
    def watching(self) -> int:
        return len(self._watchers)

    @contextlib.asynccontextmanager
    async def watch(
        self, wards: Collection[str] | None, *, ticket_id: int | None = None
    ) -> AsyncIterator[Watcher]:
        watcher = Watcher(None if wards is None else frozenset(wards), ticket_id)
        if self._closed:
            watcher.end()
        else:
            async with self._starting:
                if self._task is None:
                    # Where the tables stand now, before the page is told it is live: what it
                    # reads from here on, or is sent, misses nothing in between.
                    await self._baseline()
                    self._stop = asyncio.Event()
                    self._task = asyncio.create_task(self._run(self._stop), name="support-feed")
                self._watchers.add(watcher)
        try:
            yield watcher
        finally:
            self._watchers.discard(watcher)
            if not self._watchers:
                async with self._starting:
                    if not self._watchers:
                        await self._stop_polling()

    async def close(self) -> None:
        """End every watcher (their pages reconnect to another process) and stop polling."""
        self._closed = True
        for watcher in list(self._watchers):
            watcher.end()
        await self._stop_polling()

    async def _stop_polling(self) -> None:
        # The poller is asked to stop and finishes the poll it is in, never cancelled inside a
        # query: a SQLite connection cancelled mid-statement is torn down by a task that can
        # outlive the event loop (aiosqlite 0.22 with SQLAlchemy 2.1) and hang the process's exit.
        task, self._task = self._task, None
        if task is not None:
            self._stop.set()
            await asyncio.shield(task)

    async def _run(self, stop: asyncio.Event) -> None:
        failing = False
        while not stop.is_set():
            try:
                await self.poll()
                failing = False
            except Exception as exc:  # the database is away: keep the pages, try again
                if not failing:
                    log.warning("support feed cannot poll", extra={"error": type(exc).__name__})
                failing = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.interval)

    async def _baseline(self) -> None:
        async with self.sessions() as session:
            self._last_line = int(
                await session.scalar(select(func.coalesce(func.max(SupportMessage.id), 0))) or 0
            )
            self._last_ticket = int(
                await session.scalar(select(func.coalesce(func.max(SupportTicket.id), 0))) or 0
            )

    async def poll(self) -> None:
        """Read what is new since the last poll and hand it to the watchers who may see it."""
        if self._last_line is None or self._last_ticket is None:
            await self._baseline()
            return
        self.polls += 1
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(SupportMessage, SupportTicket.ward, *_TICKET_STATE)
                    .join(SupportTicket, SupportTicket.id == SupportMessage.ticket_id)
                    .where(SupportMessage.id > self._last_line)
                    .order_by(SupportMessage.id)
                    .limit(_BATCH)
                )
            ).all()
            tickets = (
                await session.execute(
                    select(SupportTicket.id, SupportTicket.ward).where(
                        SupportTicket.id > self._last_ticket
                    )
                )
            ).all()
        if rows:
            self._last_line = rows[-1][0].id
        if tickets:
            self._last_ticket = max(t for t, _ in tickets)
        changed_wards = {row[1] for row in rows} | {ward for _, ward in tickets}
        for watcher in list(self._watchers):
            if watcher.ticket_id is None:
                if any(watcher.sees(ward) for ward in changed_wards):
                    watcher.offer(FeedEvent("queue"))
                continue
            for message, ward, state, agent, outcome in rows:
                if message.ticket_id == watcher.ticket_id and watcher.sees(ward):
                    ticket = TicketState(state, agent, outcome)
                    watcher.offer(FeedEvent("message", _line(message), ticket))


async def watch_ticket(
    session: AsyncSession,
    identity: StaffIdentity,
    ticket_id: int,
    *,
    address: str | None,
    audited: bool = True,
) -> None:
    """Check that ``identity`` may see conversation ``ticket_id`` (``NotFound`` otherwise) and
    audit that its lines will be shown live (``support.watch``): the resident's words are
    personal data."""
    await visible_ticket(session, identity, ticket_id)
    if not audited:
        return
    await audit.record(
        session,
        actor=identity.actor,
        action="support.watch",
        target=f"ticket:{ticket_id}",
        address=address,
    )
