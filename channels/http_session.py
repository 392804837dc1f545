"""The one aiohttp ``ClientSession`` through which a process calls the providers.

Telegram (``channels.telegram_http``) and Twilio (``channels.twilio_http``) send through their
SDKs' own request code, and both hand the bytes to this session: one connection pool for every
provider (kept alive per host, at most ``limit`` connections at once), DNS answers cached,
no cookie jar (the provider APIs set no cookies, and reading none saves work on every answer).
Nothing of it is set up per request.

A request takes one of ``limit`` slots (``slots``) before it goes to aiohttp, and keeps it until
its answer is read. aiohttp would queue a request beyond its pool's size itself, but with the
request's whole timeout already running: under a burst of replies (thousands queued at once)
sends then time out before they start, are retried, and time out again. Waiting for a slot
first, a send's timeout covers only its own exchange.

aiohttp binds a session to the event loop it was made in, and channels are built before the
loop runs in some callers (the CLI, tests), so the session is made on first use. ``close`` may
be called by each channel that shares it; a later use (a send finishing after shutdown began)
makes a fresh one, which the next ``close`` closes again.

Example::

    http = ProviderSession(limit=256)
    async with http.slots, http.get().post("https://api.telegram.org/bot.../sendMessage") as r:
        body = await r.read()
    await http.close()
"""

from __future__ import annotations

import asyncio

import aiohttp

__all__ = ["ProviderSession"]

# Shorter than the keep-alive of the providers' front ends (about 60 s) and nginx's (75 s), so
# this side closes an idle connection before the far side does and a send never meets a
# connection that was closed under it.
KEEPALIVE_SECONDS = 30.0
# A send's default limits; each SDK passes its own per request.
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=10.0, sock_connect=5.0)


class ProviderSession:
    """One shared ``aiohttp.ClientSession`` for the provider APIs, made on first use."""

    def __init__(self, *, limit: int = 256) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None
        # As many as the pool has connections, so that aiohttp never queues a request itself.
        self.slots = asyncio.Semaphore(limit)

    def get(self) -> aiohttp.ClientSession:
        """The session (made now if there is none, inside the running event loop)."""
        session = self._session
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._limit, keepalive_timeout=KEEPALIVE_SECONDS, ttl_dns_cache=300
            )
            session = aiohttp.ClientSession(
                connector=connector,
                timeout=DEFAULT_TIMEOUT,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
            self._session = session
        return session

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed:
            await session.close()
