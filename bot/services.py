"""Everything a route or a worker needs, built once per process by ``bot.bootstrap``.

Routes and workers receive one ``Services`` and take what they need from it; nothing reaches for
globals and nothing adds to it after it is built. ``handle_inbound`` is the one door into the
conversation core for every channel: it counts the message, times the turn and records
duplicates, rate limits and failures. What goes out is counted where it is sent (the reply
sender and the notifier's delivery, told by the composition root; the web chat in its response).

Example::

    services = await build_services(Settings.from_env())      # bot.bootstrap
    result = await services.handle_inbound(inbound)
    services.replies.sender.schedule(
        channel, channel.render(result.effects, result.locale, inbound.address)
    )
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.metrics import Metrics
from bot.ussd import UssdDialogue
from channels.base import BaseChannel
from channels.media_fetch import MediaFetchers
from channels.types import InboundMessage
from city.filer import Filer
from city.media_links import MediaLinks
from city.open311.client import Open311Backend
from city.status_poller import StatusPoller
from conversations.data_export import DataExport
from conversations.ports import ReplyEncoder
from conversations.retention import Retention
from conversations.turn import TurnLoop, TurnResult
from notifier.broadcast_sending import BroadcastSender
from notifier.delivery_retention import DeliveryRetention
from notifier.digest_sending import DigestSender
from notifier.dispatcher import NotificationDispatcher
from notifier.incident_suggestions import EarlyWarning
from notifier.replies import Replies
from notifier.status_notices import StatusNotices
from staff.analytics_rollup import Rollup
from staff.authentication import StaffAuthentication
from staff.sso import OidcSignIn
from staff.support_feed import SupportFeed
from staff.support_timeouts import SupportTimeouts
from storage.replica import ReplicaReads

__all__ = ["Services"]


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
    # Sessions for reads that may be a little behind (analytics, open data, the dashboard): on
    # CITYBOT_DATABASE_REPLICA_URL while it answers and keeps up, else on the primary.
    analytics_reads: ReplicaReads
    redis: Redis | None
    turn_loop: TurnLoop
    # Channels by name ("webchat", and "telegram", "sms", "whatsapp", "ussd" where configured).
    channels: Mapping[str, BaseChannel]
    replies: Replies
    # The city's back end (``OPEN311_ENDPOINT``, or the built-in server over HTTP).
    city: Open311Backend
    filer: Filer
    status_poller: StatusPoller
    status_notices: StatusNotices
    dispatcher: NotificationDispatcher
    # Official broadcasts: fan-out and paced, at-most-once sending (notifier.broadcast_sending).
    broadcasts: BroadcastSender
    # The daily digest of reports (notifier.digest_sending); None when CITYBOT_DIGEST_TIME is off.
    digests: DigestSender | None
    # The burst detector and the incidents it suggests (notifier.incident_suggestions); None
    # when CITYBOT_EARLY_WARNING_FALSE_ALARMS_PER_DAY is off.
    early_warning: EarlyWarning | None
    retention: Retention
    # Broadcast deliveries' monthly partitions and their retention (notifier.delivery_retention).
    delivery_retention: DeliveryRetention
    media_links: MediaLinks
    media_fetchers: MediaFetchers
    # EXPORT MY DATA: the summary's settings and the signed links to the whole export.
    data_export: DataExport
    # Staff sign-in, API tokens and sessions' accounts (the admin API, bot.web.staff_api).
    staff_auth: StaffAuthentication
    # The open data: the performance rollup (with its grid and time zone), and the key of the
    # public ids of requests.
    rollup: Rollup
    open_data_key: bytes
    # The support queue's three timeouts (the ``support_timeouts`` worker).
    support_timeouts: SupportTimeouts
    # What changed in the support queue, for the console's live pages (one poller a process).
    support_feed: SupportFeed
    # Staff single sign-on with OpenID Connect (CITYBOT_OIDC_ISSUER), or None.
    staff_sso: OidcSignIn | None = None
    # The USSD dialogue (bot.ussd) when USSD is on; made by bot.bootstrap with the rest.
    ussd: UssdDialogue | None = None
    # Turns in flight, so a graceful shutdown can wait for them.
    _in_flight: set[asyncio.Task[Any]] = field(default_factory=set, init=False)
    _idle: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _turn_metrics: dict[str, _TurnMetrics] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self._idle.set()

    async def handle_inbound(
        self, message: InboundMessage, reply: ReplyEncoder | None = None, *, held: bool = False
    ) -> TurnResult:
        """Run one turn for ``message`` and record it in the metrics.

        ``reply`` lets the turn queue its reply in its own commit (see ``TurnLoop.handle``).

        The turn runs in its own task, shielded from the caller: a client that hangs up, or a
        shutdown that cancels the handler, never leaves a turn half done.
        """
        task = asyncio.ensure_future(self._timed_turn(message, reply, held))
        self._in_flight.add(task)
        self._idle.clear()
        task.add_done_callback(self._turn_done)
        return await asyncio.shield(task)

    async def _timed_turn(
        self, message: InboundMessage, reply: ReplyEncoder | None, held: bool
    ) -> TurnResult:
        counted = self._turn_metrics.get(message.channel) or self._count_channel(message.channel)
        counted.messages_in.inc()
        started = time.perf_counter()
        try:
            result = await self.turn_loop.handle(message, reply, held=held)
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

    @property
    def turns_in_flight(self) -> int:
        """Turns started and not finished (a shutdown that gives up on them hands them back:
        nothing of an unfinished turn is committed, so the provider's retry is served)."""
        return len(self._in_flight)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no turn is in flight; False if ``timeout`` passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True
