"""Everything a route or a worker needs, built once per process by ``bot.app``.

Routes and workers receive one ``Services`` and take what they need from it; nothing reaches for
globals. ``handle_inbound`` is the one door into the conversation core for every channel: it
counts the message, times the turn and records duplicates, rate limits and failures.

Example::

    def add_routes(app: web.Application, services: Services) -> None:
        async def webhook(request: web.Request) -> web.Response:
            for inbound in channel.parse(await to_channel_request(request)):
                result = await services.handle_inbound(inbound)
                for message in channel.render(result.effects, result.locale, inbound.address):
                    await services.send(channel, message)
            return web.Response()
        app.router.add_post("/webhooks/example", webhook)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.config import Settings
from bot.metrics import Metrics
from channels.base import BaseChannel
from channels.types import Delivery, InboundMessage, OutboundMessage

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from conversations.turn import ReplyEncoder, TurnLoop, TurnResult

__all__ = ["Services", "WorkerFactory"]

# A worker is a coroutine that runs until cancelled; the supervisor restarts it if it fails.
WorkerFactory = Callable[["Services"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _TurnMetrics:
    messages_in: Any
    turn_seconds: Any
    duplicates: Any
    rate_limited: Any


@dataclass(eq=False)
class Services:
    settings: Settings
    metrics: Metrics
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    turn_loop: TurnLoop
    redis: Redis | None = None
    # Channels by name ("webchat", "telegram", "sms", "whatsapp"), for routes and the notifier.
    channels: dict[str, BaseChannel] = field(default_factory=dict)
    # Turns in flight, so a graceful shutdown can wait for them.
    # This process reads the Redis reply streams already (``bot.reply_workers``).
    reads_replies: bool = False
    _in_flight: set[asyncio.Task[Any]] = field(default_factory=set)
    _idle: asyncio.Event = field(default_factory=asyncio.Event)
    _turn_metrics: dict[str, _TurnMetrics] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._idle.set()

    async def handle_inbound(
        self, message: InboundMessage, reply: ReplyEncoder | None = None
    ) -> TurnResult:
        """Run one turn for ``message`` and record it in the metrics.

        ``reply`` lets the turn queue its reply in its own commit (see ``TurnLoop.handle``).

        The turn runs in its own task, shielded from the caller: a client that hangs up, or a
        shutdown that cancels the handler, never leaves a turn half done.
        """
        task = asyncio.ensure_future(self._timed_turn(message, reply))
        self._in_flight.add(task)
        self._idle.clear()
        task.add_done_callback(self._turn_done)
        return await asyncio.shield(task)

    async def _timed_turn(self, message: InboundMessage, reply: ReplyEncoder | None) -> TurnResult:
        counted = self._turn_metrics.get(message.channel) or self._count_channel(message.channel)
        counted.messages_in.inc()
        started = time.perf_counter()
        try:
            result = await self.turn_loop.handle(message, reply)
        except Exception:
            self.metrics.errors.labels(where="turn").inc()
            raise
        counted.turn_seconds.observe(time.perf_counter() - started)
        if result.duplicate:
            counted.duplicates.inc()
        if result.rate_limited:
            counted.rate_limited.inc()
        return result

    def _count_channel(self, channel: str) -> _TurnMetrics:
        # Each labelled child looked up once per channel, not on every turn (3 us a lookup).
        counted = _TurnMetrics(
            self.metrics.messages_in.labels(channel=channel),
            self.metrics.turn_seconds.labels(channel=channel),
            self.metrics.duplicates.labels(channel=channel),
            self.metrics.rate_limited.labels(channel=channel),
        )
        self._turn_metrics[channel] = counted
        return counted

    def _turn_done(self, task: asyncio.Task[Any]) -> None:
        self._in_flight.discard(task)
        if not task.cancelled():
            # Retrieved here so a turn whose caller went away does not warn at exit; the
            # caller (if still there) gets the same exception from the shield.
            task.exception()
        if not self._in_flight:
            self._idle.set()

    async def send(self, channel: BaseChannel, message: OutboundMessage) -> Delivery:
        """Send through ``channel`` and count it."""
        delivery = await channel.send(message)
        self.metrics.messages_out.labels(channel=channel.name).inc()
        return delivery

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no turn is in flight; False if ``timeout`` passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True
