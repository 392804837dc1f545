"""A small keep-alive HTTP/1.1 client for the provider APIs' replies (Telegram, Twilio).

The SDKs build every request (URL, form body, auth) and read every answer; this only moves the
bytes. Why not aiohttp's client, which it replaces for sends: a reply is one small POST with a
small JSON answer, and aiohttp spends far more on its generality per request (payload registry,
multidicts, cookie jar, tracing hooks, response objects) than on the request itself. Measured on
a reply worker under load, aiohttp's client took 40% of the process's CPU. Here a request is
one ``transport.write`` of bytes built in one go, and the answer is parsed by llhttp (Node.js's
parser, through httptools) as it arrives.

What it does: connections kept alive per origin (scheme, host, port) and reused, at most
``limit`` in use at once (a request waits for one without its clock running); TLS with the
system's trust store for https; a connect timeout and a whole-request timeout; Content-Length,
chunked and read-until-close answers. What it refuses, with ``HttpError``: header names or values
that would split the request (CR, LF), answers that are not HTTP or are larger than
``max_body``. A connection that failed, timed out or was told ``Connection: close`` is never
reused. A failed request is not sent again here: the callers' retries own that decision (a
reply must not go twice because a connection broke after the provider read it).

Example::

    client = HttpClient(limit=32)
    answer = await client.request("POST", "https://api.telegram.org/bot.../sendMessage",
                                  headers={"Content-Type": "application/json"}, body=b"{...}")
    answer.status, answer.header("retry-after"), answer.body
    await client.close()
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast
from urllib.parse import urlsplit

import httptools

__all__ = ["HttpAnswer", "HttpClient", "HttpError"]

# How long an idle connection is kept: under the keep-alive timeout of common servers (nginx 75 s,
# Twilio's and Telegram's front ends about 60 s), so we close first rather than race them.
IDLE_SECONDS = 30.0
# Provider answers to a send are a few kilobytes; anything this large is not one.
MAX_BODY = 4 * 1024 * 1024


class HttpError(OSError):
    """The exchange failed: refused, reset, closed early, or an answer that is not HTTP."""


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    status: int
    # Header names in lower case; a repeated header keeps its last value.
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class HttpClient:
    """Keep-alive connections to any number of origins, at most ``limit`` requests at once."""

    def __init__(
        self,
        *,
        limit: int = 100,
        connect_timeout: float | None = 5.0,
        user_agent: str | None = None,
        max_body: int = MAX_BODY,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._limit = limit
        self._in_use = 0
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._connect_timeout = connect_timeout
        self._user_agent = user_agent
        self._max_body = max_body
        self._ssl = ssl_context
        self._idle: dict[tuple[str, str, int], deque[_Connection]] = {}
        self._open: set[_Connection] = set()
        self._closed = False

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout: float | None = 10.0,
    ) -> HttpAnswer:
        """One exchange; raises ``HttpError`` (or ``TimeoutError``) when there is no answer."""
        if self._closed:
            raise HttpError("the HTTP client is closed")
        origin, target, netloc = _where(url)
        head = self._head(method, target, netloc, headers, body)
        await self._take_slot()
        connection: _Connection | None = None
        try:
            loop = asyncio.get_running_loop()
            # The clock starts once a connection is ours, and covers connecting too.
            deadline = None if timeout is None else loop.time() + timeout
            connection = self._reuse(origin)
            if connection is None:
                async with asyncio.timeout_at(deadline):
                    connection = await self._connect(origin)
            answer = await connection.exchange(head, body, self._max_body, deadline)
            if connection.reusable and not self._closed:
                connection.idle_since = loop.time()
                self._idle.setdefault(origin, deque()).append(connection)
            else:
                connection.close()
            return answer
        except BaseException:
            if connection is not None:
                connection.close()  # a half-done exchange leaves the connection unusable
            raise
        finally:
            self._give_slot()

    async def _take_slot(self) -> None:
        # A counter and a queue rather than asyncio.Semaphore: the same first-come order, at a
        # fraction of the cost per request when a slot is free (which it nearly always is).
        if self._in_use < self._limit and not self._waiting:
            self._in_use += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            await waiter  # a finished request hands its slot over: _in_use counts us already
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._give_slot()  # handed over as we were cancelled: pass it on
            else:
                self._waiting.remove(waiter)
            raise

    def _give_slot(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._in_use -= 1

    async def close(self) -> None:
        self._closed = True
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._idle.clear()

    def _head(
        self,
        method: str,
        target: str,
        host: str,
        headers: Mapping[str, str] | None,
        body: bytes | None,
    ) -> bytes:
        lines = [f"{method.upper()} {target} HTTP/1.1", f"Host: {host}"]
        given = {name.lower() for name in headers or ()}
        if self._user_agent and "user-agent" not in given:
            lines.append(f"User-Agent: {self._user_agent}")
        for name, value in (headers or {}).items():
            if name.lower() in ("host", "content-length", "transfer-encoding", "connection"):
                continue  # this client writes those itself
            # A CR or LF inside a name or value would end the header early and smuggle another.
            if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
                raise HttpError(f"the header {name!r} holds a line break or a colon")
            lines.append(f"{name}: {value}")
        if body is not None or method.upper() in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body or b'')}")
        lines.append("\r\n")
        try:
            return "\r\n".join(lines).encode("latin-1")
        except UnicodeEncodeError as exc:
            raise HttpError(f"a header is not Latin-1 text: {exc}") from None

    def _reuse(self, origin: tuple[str, str, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        oldest_allowed = asyncio.get_running_loop().time() - IDLE_SECONDS
        # Those left idle since a burst are at the far end: close them as they age out.
        while idle and idle[0].idle_since < oldest_allowed:
            idle.popleft().close()
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to be closed
            if connection.reusable:
                return connection
            connection.close()
        return None

    async def _connect(self, origin: tuple[str, str, int]) -> _Connection:
        scheme, host, port = origin
        loop = asyncio.get_running_loop()
        tls: ssl.SSLContext | None = None
        if scheme == "https":
            tls = self._ssl or ssl.create_default_context()
            self._ssl = tls
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(self._open),
                    host,
                    port,
                    ssl=tls,
                    server_hostname=host if tls else None,
                )
        except OSError as exc:
            raise HttpError(f"cannot connect to {host}:{port}: {exc}") from exc
        return connection


@functools.lru_cache(maxsize=256)
def _where(url: str) -> tuple[tuple[str, str, int], str, str]:
    """(origin, request target, Host) of ``url``; kept, since the same few URLs repeat."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise HttpError(f"not an http(s) URL: {url!r}")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise HttpError(f"not a port number in {url!r}") from None
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if " " in target:
        raise HttpError(f"the URL's path holds a space: {url!r}")
    # Host names the server only: never the credentials a URL may carry before an @.
    return (scheme, parts.hostname, port), target, parts.netloc.rpartition("@")[2]


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: one exchange at a time, answers parsed by llhttp."""

    def __init__(self, registry: set[_Connection]) -> None:
        self._registry = registry
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[HttpAnswer] | None = None
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._size = 0
        self._max_body = MAX_BODY
        self._headers_done = False
        self._lost = False
        self.reusable = False
        self.idle_since = 0.0

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, only alike.
        self._transport = cast(asyncio.Transport, transport)
        self._registry.add(self)

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # bytes nobody asked for: the stream can no longer be trusted
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(HttpError(f"not an HTTP answer: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self.reusable = False
        self._registry.discard(self)
        if self._waiter is not None and not self._waiter.done():
            self._fail(HttpError(f"the connection closed before the answer ended: {exc or 'EOF'}"))

    # -- llhttp callbacks ---------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._headers_done = True

    def on_body(self, body: bytes) -> None:
        self._size += len(body)
        if self._size > self._max_body:
            self._fail(HttpError(f"the answer is larger than {self._max_body:,} bytes"))
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._waiter is None or self._waiter.done():
            return
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            # An interim answer (100 Continue): the real one follows on the same connection.
            self._headers, self._body, self._size, self._headers_done = {}, [], 0, False
            return
        self.reusable = self._parser.should_keep_alive() and not self._lost
        self._waiter.set_result(HttpAnswer(status, self._headers, b"".join(self._body)))

    # -- use ----------------------------------------------------------------------------------

    async def exchange(
        self, head: bytes, body: bytes | None, max_body: int, deadline: float | None
    ) -> HttpAnswer:
        if self._transport is None or self._lost or self._transport.is_closing():
            raise HttpError("the connection is closed")
        self.reusable = False
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        # One timer per exchange (asyncio.timeout costs several objects and reschedules).
        timer = None if deadline is None else loop.call_at(deadline, self._time_out)
        self._headers, self._body, self._size, self._headers_done = {}, [], 0, False
        self._max_body = max_body
        self._parser = httptools.HttpResponseParser(self)
        self._transport.write(head + body if body else head)
        try:
            return await self._waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def _time_out(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(TimeoutError("no answer in time"))
        self.close()

    def close(self) -> None:
        self.reusable = False
        self._registry.discard(self)
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()

    def _fail(self, error: Exception) -> None:
        if self._waiter is not None and not self._waiter.done():
            # An answer ended by the connection closing (no length, not chunked) is complete.
            if (
                isinstance(error, HttpError)
                and self._lost
                and self._headers_done
                and (
                    "content-length" not in self._headers
                    and "chunked" not in self._headers.get("transfer-encoding", "").lower()
                )
            ):
                status = self._parser.get_status_code()
                self._waiter.set_result(HttpAnswer(status, self._headers, b"".join(self._body)))
            else:
                self._waiter.set_exception(error)
        self.close()
