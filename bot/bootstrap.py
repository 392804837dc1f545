"""The composition root: every service of one citybot process, built from ``Settings``.

``build_services`` is the one place where adapters are chosen and wired: the stores (SQL by
default, Redis when configured), the turn loop and its ports (the reply queue, the city's
answer to "status CT-..."), the channels, the city back end with the filer and the status
poller, the notifier's notices, dispatcher and reply senders, and retention. Nothing else
constructs them, and nothing adds to ``Services`` afterwards; routes (``bot.app``) and workers
(``bot.workers``) only read it. Tests call the same function with their own settings.

Example::

    services = await build_services(Settings.from_env())   # database upgraded, pools open
    ...
    await close_services(services)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.channel_setup import build_channels
from bot.config import Settings
from bot.metrics import Metrics
from bot.services import Services
from bot.support_outbox import AGENT_PURPOSE
from bot.ussd import UssdDialogue
from channels.base import BaseChannel
from channels.media_fetch import MediaFetchers, TwilioMediaFetcher
from channels.telegram import TelegramChannel
from channels.ussd import USSD, UssdChannel
from channels.webchat import WebChatChannel
from city.filer import Filer, FilerSettings
from city.media_links import MediaLinks
from city.open311.client import CityBackend, Open311Backend
from city.open311.errors import Open311Error
from city.open311.server import PREFIX as OPEN311_PREFIX
from city.status_poller import PollerSettings, StatusPoller
from conversations.data_export import DataExport
from conversations.dedupe import BaseDedupe, RedisDedupe, SqlDedupe
from conversations.export_links import ExportLinks
from conversations.form_flow import DEFAULT_IDLE_TIMEOUT
from conversations.held_inbound import HeldInbound
from conversations.locks import BaseLocks, InProcessLocks, RedisLocks
from conversations.office_hours import OfficeHours
from conversations.ports import CityStatus, ReplyQueueing
from conversations.rate_limit import BaseRateLimiter, InProcessRateLimiter, RedisRateLimiter
from conversations.retention import Retention
from conversations.state_store import BaseStateStore, RedisStateStore, SqlStateStore
from conversations.turn import TurnLoop
from conversations.ussd_sessions import UssdSessions
from forms_runtime.gazetteer import Gazetteer, default_gazetteer
from forms_runtime.loader import standard_forms
from forms_runtime.model import Form
from notifier.broadcast_sending import BroadcastSender, SenderSettings
from notifier.burst_detector import DetectorSettings
from notifier.delivery import ResidentDelivery
from notifier.delivery_log import Sent, write_deliveries
from notifier.delivery_retention import DeliveryRetention
from notifier.delivery_streams import DeliveryStreams
from notifier.digest_sending import DigestSender, DigestSettings
from notifier.digests import DigestSchedule
from notifier.dispatcher import DispatchSettings, NotificationDispatcher
from notifier.incident_suggestions import EarlyWarning
from notifier.quiet_hours import QuietHours
from notifier.replies import CountSent, Replies, ReplySender, ReplyStream
from notifier.reply_outbox import ReplyOutbox
from notifier.reply_queue import ReplyQueue
from notifier.status_notices import StatusNotices, queue_filed, status_message
from staff.analytics_rollup import Rollup, RollupSettings
from staff.authentication import StaffAuthentication
from staff.open_data_rows import Grid, public_id_key
from staff.sso import OidcSignIn
from staff.support_feed import SupportFeed
from staff.support_timeouts import SupportTimeouts
from storage.migrate import upgrade_database
from storage.redis import connect_redis, is_cluster, outage_of
from storage.redis_layout import RedisLayout
from storage.redis_upgrade import upgrade_redis_layout
from storage.replica import ReplicaHealth, ReplicaReads
from storage.session import create_engine, create_sessionmaker
from storage.sql_batch import SqlBatcher

__all__ = [
    "CITY_STATUS_TIMEOUT",
    "REDIS_PREFIX",
    "build_rollup",
    "build_services",
    "build_turn_loop",
    "builtin_open311_endpoint",
    "check_city",
    "city_status_lookup",
    "close_services",
    "replica_health",
    "support_timeouts",
    "turn_loop_on",
]

log = logging.getLogger("citybot.bootstrap")

# Every Redis key citybot writes starts with this.
REDIS_PREFIX = "citybot:"
# Stream shards on a Redis Cluster unless CITYBOT_REDIS_STREAM_SHARDS says: a few per primary
# of a 3 to 6 primary cluster, so the slots can be spread evenly (docs/scaling.md).
CLUSTER_STREAM_SHARDS = 12
# A resident asking "status CT-..." waits at most this long for the city before the local answer.
CITY_STATUS_TIMEOUT = 3.0
# A read replica that does not answer within this sends the read to the primary.
REPLICA_TIMEOUT = 2.0


async def build_services(settings: Settings) -> Services:
    """Upgrade the database, open the pools and build every service of this process."""
    await upgrade_database(settings.database_url)
    engine = create_engine(settings.database_url)
    sessions = create_sessionmaker(engine)
    replica = _replica_engine(settings)
    redis = (
        connect_redis(settings.redis_url, wait_replicas=settings.redis_wait_replicas)
        if settings.redis_url
        else None
    )
    try:
        layout = redis_layout(settings, redis) if redis is not None else None
        if redis is not None and layout is not None:
            await _upgrade_redis(redis, layout)
        return _wire(settings, engine, sessions, redis, replica, layout)
    except BaseException:
        if redis is not None:
            await redis.aclose()
        await engine.dispose()
        if replica is not None:
            await replica.dispose()
        raise


async def _upgrade_redis(redis: Redis, layout: RedisLayout) -> None:
    """Before any work is taken, move a queued reply or an open form of an older version's key
    layout (``storage.redis_upgrade``). A Redis that is away does not stop the start (the process
    waits for it as it would later); what is left is moved at the next start."""
    try:
        await upgrade_redis_layout(redis, layout)
    except (OSError, RedisError) as exc:
        outage_of(redis).failed("checking the Redis key layout at start", exc)
        log.warning("the Redis key layout was not checked: Redis was away; it is at next start")


def _wire(
    settings: Settings,
    engine: AsyncEngine,
    sessions: async_sessionmaker[AsyncSession],
    redis: Redis | None,
    replica: AsyncEngine | None = None,
    layout: RedisLayout | None = None,
) -> Services:
    metrics = Metrics()
    forms = standard_forms()
    gazetteer = default_gazetteer()
    city = Open311Backend(
        settings.open311_endpoint or builtin_open311_endpoint(settings),
        api_key=settings.open311_key,
        jurisdiction_id=settings.open311_jurisdiction_id,
    )
    operators = service_backends(settings)
    if redis is not None and layout is None:
        layout = redis_layout(settings, redis)
    reply_queue = ReplyQueue(layout) if layout is not None else None

    def count_sent(channel: str, count: int) -> None:
        metrics.messages_out.labels(channel=channel).inc(count)

    data_export = DataExport(
        links=ExportLinks(settings.link_keys, settings.public_url),
        message_retention_days=settings.message_retention_days,
    )
    turn_loop = build_turn_loop(
        sessions,
        redis=redis,
        forms=forms,
        gazetteer=gazetteer,
        idle_timeout=timedelta(hours=settings.form_idle_hours),
        rate_per_second=settings.rate_limit_per_second,
        rate_burst=settings.rate_limit_burst,
        redis_layout=layout,
        reply_queue=reply_queue,
        city_status=city_status_lookup(city, operators),
        data_export=data_export,
        office_hours=settings.office_hours,
        misses_for_person=settings.support_after_misses,
        hold_over_limit=True,
    )
    channels: dict[str, BaseChannel] = {
        "webchat": WebChatChannel(settings.session_secrets),
        # Every send path of a channel (replies, status updates, broadcasts) goes through the
        # channel's one pacer: shared by every process through Redis when it is configured.
        **build_channels(settings, sessions, redis=redis, redis_prefix=REDIS_PREFIX),
    }
    media_links = MediaLinks(
        settings.link_keys, settings.public_url, lifetime_days=settings.media_link_days
    )
    quiet = (
        QuietHours(
            start=settings.quiet_hours[0], end=settings.quiet_hours[1], zone=settings.city_timezone
        )
        if settings.quiet_hours is not None
        else None
    )
    replies = _replies(settings, engine, redis, reply_queue, channels, turn_loop, count_sent)
    metrics.watch_writers(lambda: (*turn_loop.writers, replies.deliveries))
    services = Services(
        settings=settings,
        metrics=metrics,
        engine=engine,
        session_factory=sessions,
        analytics_reads=analytics_reads(settings, sessions, replica, metrics),
        redis=redis,
        turn_loop=turn_loop,
        channels=channels,
        replies=replies,
        city=city,
        filer=Filer(
            sessions,
            city,
            forms,
            settings=FilerSettings(
                retry_delays=settings.filer_retry_delays,
                alert_after=settings.filer_alert_after,
                idle_seconds=settings.filer_idle_seconds,
                lease_seconds=settings.filer_lease_seconds,
            ),
            registry=metrics.registry,
            media_links=media_links,
            on_filed=queue_filed,
            service_backends=operators,
        ),
        status_poller=StatusPoller(
            sessions,
            city,
            settings=PollerSettings(interval_seconds=settings.status_poll_seconds),
            gazetteer=default_gazetteer(),
            service_backends=operators,
        ),
        status_notices=StatusNotices(sessions, quiet_hours=quiet),
        dispatcher=NotificationDispatcher(
            sessions,
            # A support agent's messages answer a resident in a conversation: the reply lane.
            ResidentDelivery(
                sessions, channels, count_sent=count_sent, reply_purposes={AGENT_PURPOSE}
            ),
            settings=DispatchSettings(
                quiet_hours=quiet,
                idle_seconds=settings.dispatch_idle_seconds,
                max_attempts=settings.dispatch_max_attempts,
            ),
            registry=metrics.registry,
        ),
        broadcasts=BroadcastSender(
            sessions,
            ResidentDelivery(sessions, channels, count_sent=count_sent),
            SenderSettings(
                quiet_hours=quiet,
                idle_seconds=settings.dispatch_idle_seconds,
                lease_seconds=settings.broadcast_lease_seconds,
                send_timeout_seconds=min(60.0, settings.broadcast_lease_seconds / 2),
            ),
            # With Redis the rows' ids are also queued per channel on streams (the database
            # alone hands them out without it).
            streams=DeliveryStreams(
                redis, layout=layout, claim_idle_seconds=settings.broadcast_lease_seconds
            )
            if redis is not None and layout is not None
            else None,
        ),
        digests=DigestSender(
            sessions,
            ResidentDelivery(sessions, channels, count_sent=count_sent),
            {form.id: form.title for form in forms.values()},
            DigestSettings(
                schedule=DigestSchedule(at=settings.digest_time, zone=settings.city_timezone),
                quiet_hours=quiet,
                lease_seconds=settings.broadcast_lease_seconds,
                send_timeout_seconds=min(60.0, settings.broadcast_lease_seconds / 2),
            ),
        )
        if settings.digest_time is not None
        else None,
        early_warning=EarlyWarning(
            sessions,
            gazetteer,
            DetectorSettings(false_alarms_per_day=settings.early_warning_false_alarms_per_day),
            registry=metrics.registry,
        )
        if settings.early_warning_false_alarms_per_day is not None
        else None,
        retention=Retention(
            sessions, forms, message_retention_days=settings.message_retention_days
        ),
        # Delivery rows are the sends the message log also holds: kept as long (operations.md).
        delivery_retention=DeliveryRetention(
            sessions, retention_days=settings.message_retention_days
        ),
        media_links=media_links,
        media_fetchers=_media_fetchers(settings, channels),
        data_export=data_export,
        staff_auth=StaffAuthentication(sessions),
        rollup=build_rollup(settings, sessions, gazetteer),
        open_data_key=public_id_key(settings.session_secret),
        support_timeouts=support_timeouts(settings),
        support_feed=SupportFeed(sessions),
        staff_sso=OidcSignIn(settings.oidc) if settings.oidc is not None else None,
    )
    # The USSD dialogue runs its turns through the services' one door (counted, waited for at
    # shutdown), so it is made last, before anyone else holds the services.
    services.ussd = _ussd_dialogue(channels, sessions, services, gazetteer)
    return services


def _ussd_dialogue(
    channels: Mapping[str, BaseChannel],
    sessions: async_sessionmaker[AsyncSession],
    services: Services,
    gazetteer: Gazetteer,
) -> UssdDialogue | None:
    channel = channels.get(USSD)
    if not isinstance(channel, UssdChannel):
        return None
    return UssdDialogue(
        channel,
        UssdSessions(sessions),
        turns=services.handle_inbound,
        sender=services.replies.sender,
        gazetteer=gazetteer,
    )


def _replica_engine(settings: Settings) -> AsyncEngine | None:
    if not settings.database_replica_url:
        return None
    return create_engine(
        settings.database_replica_url, pool_size=5, max_overflow=10, connect_timeout=REPLICA_TIMEOUT
    )


async def replica_health(settings: Settings) -> ReplicaHealth:
    """Where analytics reads would go now, asked with pools of its own (``citybot check``)."""
    primary = create_engine(settings.database_url, pool_size=1, max_overflow=0)
    replica = _replica_engine(settings)
    reads = ReplicaReads(
        create_sessionmaker(primary),
        create_sessionmaker(replica) if replica is not None else None,
        max_lag=settings.database_replica_max_lag,
        probe_timeout=REPLICA_TIMEOUT,
    )
    try:
        return await reads.health()
    finally:
        await reads.close()
        await primary.dispose()


def analytics_reads(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    replica: AsyncEngine | None,
    metrics: Metrics,
) -> ReplicaReads:
    """Analytics, open data and the dashboard read from the replica when there is one (and it
    keeps up), counted in /metrics when they read from the primary instead."""
    return ReplicaReads(
        sessions,
        create_sessionmaker(replica) if replica is not None else None,
        max_lag=settings.database_replica_max_lag,
        probe_timeout=REPLICA_TIMEOUT,
        on_fallback=lambda reason: metrics.replica_fallback_reads.labels(reason=reason).inc(),
        on_lag=metrics.replica_lag_seconds.set,
    )


def build_rollup(
    settings: Settings, sessions: async_sessionmaker[AsyncSession], gazetteer: Gazetteer
) -> Rollup:
    """The open data's rollup, on a grid whose cells are 250 m wide at the city's latitude."""
    latitudes = [p.lat for p in gazetteer.places if p.lat is not None]
    reference = round(sum(latitudes) / len(latitudes), 1) if latitudes else 0.0
    return Rollup(
        sessions,
        RollupSettings(
            timezone=settings.city_timezone, interval_seconds=settings.open_data_refresh_seconds
        ),
        Grid(reference_latitude=reference),
    )


def support_timeouts(settings: Settings) -> SupportTimeouts:
    """The three support timeouts from the settings; the unclaimed one counts open office time."""

    def minutes(value: float | None) -> timedelta | None:
        return timedelta(minutes=value) if value else None

    return SupportTimeouts(
        unclaimed=minutes(settings.support_unclaimed_minutes),
        agent_silent=minutes(settings.support_agent_silent_minutes),
        resident_silent=minutes(settings.support_resident_silent_minutes),
        open_since=settings.office_hours.open_since,
    )


def _media_fetchers(settings: Settings, channels: Mapping[str, BaseChannel]) -> MediaFetchers:
    """How the media proxy gets a photo's bytes: the Telegram channel's SDK (the bot token never
    leaves the process), Twilio's media URLs with the account's credentials."""
    telegram = channels.get("telegram")
    twilio = None
    if settings.twilio_account_sid and settings.twilio_auth_token:
        twilio = TwilioMediaFetcher(
            settings.twilio_account_sid,
            settings.twilio_auth_token,
            api_base_url=settings.twilio_api_base_url,
        )
    return MediaFetchers(
        telegram=telegram.download_file if isinstance(telegram, TelegramChannel) else None,
        twilio=twilio,
    )


def _replies(
    settings: Settings,
    engine: AsyncEngine,
    redis: Redis | None,
    queue: ReplyQueue | None,
    channels: Mapping[str, BaseChannel],
    turn_loop: TurnLoop,
    count_sent: CountSent,
) -> Replies:
    """The reply sender, its delivery log and, with Redis and ``send_replies``, one reader of
    the reply queue per provider channel and shard (the web chat answers in its HTTP
    response)."""
    deliveries: SqlBatcher[Sent, None] = SqlBatcher(engine, write_deliveries, name="deliveries")
    sender = ReplySender(record=deliveries.submit, count_sent=count_sent)
    sender.queues_in_turn = turn_loop.queues_replies
    streams: list[ReplyStream] = []
    if redis is not None and queue is not None and settings.send_replies:
        streams = [
            ReplyStream(
                redis,
                queue,
                channel,
                sender,
                claim_idle=settings.reply_claim_seconds,
                shard=shard,
            )
            for name, channel in channels.items()
            if name != "webchat"
            for shard in range(queue.layout.shards)
        ]
    # Without Redis the turns commit their replies in the database until they are sent.
    outbox = None if turn_loop.queues_replies else ReplyOutbox(engine, turn_loop.sessionmaker)
    return Replies(sender, deliveries, streams, queue, outbox)


def build_turn_loop(
    sessions: async_sessionmaker[AsyncSession],
    *,
    redis: Redis | None = None,
    forms: Mapping[str, Form] | None = None,
    gazetteer: Gazetteer | None = None,
    idle_timeout: timedelta = DEFAULT_IDLE_TIMEOUT,
    rate_per_second: float = 1.0,
    rate_burst: int = 12,
    redis_prefix: str = REDIS_PREFIX,
    redis_layout: RedisLayout | None = None,
    reply_queue: ReplyQueueing | None = None,
    city_status: CityStatus | None = None,
    data_export: DataExport | None = None,
    office_hours: OfficeHours | None = None,
    misses_for_person: int = 3,
    hold_over_limit: bool = False,
    close_pools: bool = False,
) -> TurnLoop:
    """The turn loop on SQL stores and in-process locks, or on Redis when ``redis`` is given.

    The database must already be upgraded. ``hold_over_limit`` keeps messages over a resident's
    rate limit to run later (the app's "held" worker runs them) instead of asking the resident
    to send them again. ``redis_layout`` names the Redis keys (default: an unkeyed layout under
    ``redis_prefix``, one shard, for tests and benches). ``close_pools`` makes ``TurnLoop.close`` dispose the engine and close
    Redis too (for tests and benches that build only a turn loop).
    """
    states: BaseStateStore
    dedupe: BaseDedupe
    locks: BaseLocks
    limiter: BaseRateLimiter
    if redis is not None:
        # Kept well past the idle timeout, so a returning resident is offered to continue.
        ttl = int(max(idle_timeout * 4, timedelta(days=7)).total_seconds())
        layout = redis_layout or RedisLayout(prefix=redis_prefix)
        states = RedisStateStore(redis, ttl=ttl, layout=layout)
        dedupe = RedisDedupe(redis, layout=layout)
        locks = RedisLocks(redis, layout=layout)
        limiter = RedisRateLimiter(redis, rate=rate_per_second, burst=rate_burst, layout=layout)
    else:
        states = SqlStateStore(sessions)
        dedupe = SqlDedupe(sessions)
        locks = InProcessLocks()
        limiter = InProcessRateLimiter(rate=rate_per_second, burst=rate_burst)
    on_close: list[Callable[[], Awaitable[object]]] = []
    if close_pools:
        engine: AsyncEngine = sessions.kw["bind"]
        on_close.append(engine.dispose)
        if redis is not None:
            on_close.append(redis.aclose)
    return TurnLoop(
        sessionmaker=sessions,
        states=states,
        dedupe=dedupe,
        locks=locks,
        rate_limiter=limiter,
        forms=forms if forms is not None else standard_forms(),
        gazetteer=gazetteer if gazetteer is not None else default_gazetteer(),
        idle_timeout=idle_timeout,
        city_status=city_status,
        reply_queue=reply_queue,
        on_close=on_close,
        data_export=data_export,
        office_hours=office_hours,
        misses_for_person=misses_for_person,
        held=HeldInbound(sessions) if hold_over_limit else None,
    )


def turn_loop_on(database_url: str, redis_url: str | None = None, **options: Any) -> TurnLoop:
    """A turn loop with pools of its own, closed with it (tests and benches that need only the
    turn loop); with ``redis_url``, replies are queued on the reply queue under the same key
    prefix. ``options`` go to ``build_turn_loop``."""
    sessions = create_sessionmaker(create_engine(database_url))
    redis = connect_redis(redis_url) if redis_url else None
    if redis is not None:
        layout = options.get("redis_layout") or RedisLayout(
            prefix=options.get("redis_prefix", REDIS_PREFIX)
        )
        options.setdefault("reply_queue", ReplyQueue(layout))
    return build_turn_loop(sessions, redis=redis, close_pools=True, **options)


def redis_layout(settings: Settings, redis: Redis) -> RedisLayout:
    """The key layout of ``settings``: conversations named with the key-name secret, streams in
    ``CITYBOT_REDIS_STREAM_SHARDS`` shards (one on one Redis; ``CLUSTER_STREAM_SHARDS`` on a
    cluster)."""
    shards = settings.redis_stream_shards or (CLUSTER_STREAM_SHARDS if is_cluster(redis) else 1)
    return RedisLayout(secret=settings.redis_key_names_secret, prefix=REDIS_PREFIX, shards=shards)


def service_backends(settings: Settings) -> dict[str, CityBackend]:
    """The second back end of each service that has one (``OPEN311_SERVICE_ENDPOINTS``: a
    transport operator's Open311 endpoint), sharing a client where services share an endpoint."""
    by_endpoint: dict[str, Open311Backend] = {}
    backends: dict[str, CityBackend] = {}
    for code, endpoint in settings.open311_service_endpoints.items():
        key = settings.open311_service_api_keys.get(code)
        backend = by_endpoint.get(f"{endpoint} {key}")
        if backend is None:
            backend = Open311Backend(
                endpoint, api_key=key, jurisdiction_id=settings.open311_jurisdiction_id
            )
            by_endpoint[f"{endpoint} {key}"] = backend
        backends[code] = backend
    return backends


def builtin_open311_endpoint(settings: Settings) -> str:
    """Where the built-in GeoReport v2 server answers: under the public URL, which every
    process of a deployment shares (``OPEN311_ENDPOINT`` names another address, such as a
    private one, for the same server)."""
    return settings.public_url.rstrip("/") + OPEN311_PREFIX


def city_status_lookup(
    backend: CityBackend,
    service_backends: Mapping[str, CityBackend] | None = None,
    timeout: float = CITY_STATUS_TIMEOUT,
) -> CityStatus:
    """The turn loop's ``city_status`` port: what the back end a report was filed with says now
    about it, in the resident's language, or None when it cannot be asked right now. A service
    with its own back end (``service_backends``, as the filer and poller use them) is asked
    there: the city's request of the same number would be someone else's report."""
    operators = dict(service_backends or {})

    async def lookup(
        reference: str, service_request_id: str, service_code: str, locale: str
    ) -> str | None:
        filed_with = operators.get(service_code, backend)
        try:
            found = await asyncio.wait_for(filed_with.request(service_request_id), timeout)
        except (Open311Error, TimeoutError) as exc:
            log.warning("status from the city unavailable: %s", exc)
            return None
        except Exception:  # the port promises an answer or None, never a failed turn
            log.exception("status from the city failed")
            return None
        if found is None:
            return None
        return status_message(
            locale,
            reference,
            found.service_request_id,
            found.status,
            found.status_notes,
            found.expected_datetime,
        )

    return lookup


async def check_city(services: Services, timeout: float = 2.0) -> str | None:
    """None when the city's back end answers (its service list), else why not, in a line."""
    try:
        await asyncio.wait_for(services.city.services(), timeout)
    except TimeoutError:
        return f"no answer from {services.city.endpoint} within {timeout:g} s"
    except Exception as exc:  # refused, not GeoReport, an API key refused...
        return f"{services.city.endpoint} cannot be used: {type(exc).__name__}: {exc}"
    return None


async def close_services(services: Services) -> None:
    """Close channels, the city client, Redis and the database pool; each is closed even if
    another fails."""
    with contextlib.suppress(Exception):
        await services.support_feed.close()
    with contextlib.suppress(Exception):
        await services.replies.close()
    for channel in services.channels.values():
        with contextlib.suppress(Exception):
            await channel.close()
    with contextlib.suppress(Exception):
        await services.city.close()
    for operator in {id(b): b for b in services.filer.service_backends.values()}.values():
        with contextlib.suppress(Exception):
            await operator.close()
    with contextlib.suppress(Exception):
        await services.media_fetchers.close()
    with contextlib.suppress(Exception):
        await services.turn_loop.close()
    if services.redis is not None:
        with contextlib.suppress(Exception):
            await services.redis.aclose()
    await services.engine.dispose()
    await services.analytics_reads.close()
