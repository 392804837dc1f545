"""The support feed on a real database: one poller however many pages watch, each page given
only what its wards and its conversation allow, none of it lost between the page's read and
its first event, and a page that falls behind dropped (it reconnects)."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from staff.support_feed import FeedEvent, SupportFeed, Watcher
from storage.models import SupportMessage, SupportTicket


async def _ticket(sessions: async_sessionmaker[AsyncSession], ward: str | None) -> int:
    async with sessions() as session, session.begin():
        ticket = SupportTicket(channel="sms", address="+27830000001", ward=ward)
        session.add(ticket)
        await session.flush()
        return ticket.id


async def _line(sessions: async_sessionmaker[AsyncSession], ticket_id: int, text: str) -> None:
    async with sessions() as session, session.begin():
        session.add(SupportMessage(ticket_id=ticket_id, direction="resident", text=text))


async def _drain(watcher: Watcher, timeout: float = 0.6) -> list[FeedEvent]:
    got = []
    while (event := await watcher.next(timeout)) is not None:
        got.append(event)
    return got


async def test_one_poller_serves_every_page(sessions: async_sessionmaker[AsyncSession]) -> None:
    feed = SupportFeed(sessions, interval=0.05)
    ward1 = await _ticket(sessions, "1")
    async with AsyncExitStack() as pages:
        # Fifty pages connect at once: one poller starts, not fifty.
        queues = await asyncio.gather(
            *(pages.enter_async_context(feed.watch(None)) for _ in range(48))
        )
        scoped = await pages.enter_async_context(feed.watch({"9"}))
        following = await pages.enter_async_context(feed.watch(None, ticket_id=ward1))
        assert feed.watching == 50
        before = feed.polls
        await asyncio.sleep(0.5)
        assert 5 <= feed.polls - before <= 11, "one poll every 0.05 s for all fifty pages"

        await _line(sessions, ward1, "the water is back")
        await _ticket(sessions, "1")
        assert [e.kind for e in await _drain(queues[0])] == ["queue"]
        assert await _drain(scoped) == [], "nothing of ward 1 for a ward 9 page"
        (event,) = await _drain(following)
        assert event.kind == "message" and event.line is not None
        assert event.line.text == "the water is back" and event.ticket is not None
        assert event.ticket.state == "waiting"

        await _ticket(sessions, "9")
        assert [e.kind for e in await _drain(scoped)] == ["queue"]
    assert feed.watching == 0
    stopped = feed.polls
    await asyncio.sleep(0.2)
    assert feed.polls == stopped, "no page, no polling"


async def test_a_page_that_falls_behind_is_dropped(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    feed = SupportFeed(sessions, interval=0.02)
    ticket = await _ticket(sessions, None)
    async with feed.watch(None, ticket_id=ticket) as slow:
        async with sessions() as session, session.begin():
            session.add_all(
                SupportMessage(ticket_id=ticket, direction="resident", text=f"line {n}")
                for n in range(210)
            )
        await asyncio.sleep(0.3)
        events = await _drain(slow, timeout=0.2)
    assert slow.ended and events[-1].kind == "closed"


async def test_closing_ends_every_page(sessions: async_sessionmaker[AsyncSession]) -> None:
    feed = SupportFeed(sessions, interval=0.05)
    async with feed.watch(None) as page:
        await feed.close()
        assert (await page.next(1.0)) == FeedEvent("closed")
    async with feed.watch(None) as late:
        assert late.ended, "a closed feed takes no new pages"


class _SlowFeed(SupportFeed):
    """A feed whose every poll takes a while, as a query on a busy database does."""

    cancelled = 0
    finished = 0

    async def poll(self) -> None:
        try:
            await asyncio.sleep(0.2)
            await super().poll()
            self.finished += 1
        except asyncio.CancelledError:
            self.cancelled += 1
            raise


async def test_the_last_page_leaving_lets_the_poll_in_flight_finish(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    # A poll cancelled inside a query leaves SQLite's connection to a teardown task that can
    # outlive the event loop and hang the process at exit (found as a hung test run).
    feed = _SlowFeed(sessions, interval=0.01)
    async with feed.watch(None):
        await asyncio.sleep(0.3)  # a poll is in flight
    assert feed.cancelled == 0 and feed.finished >= 1
    await feed.close()
    assert feed.cancelled == 0
