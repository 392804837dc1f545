"""What an operator is told before citybot runs: settings that silently break something, and
whether the database, Redis, the providers and the city answer (``citybot check``; the
database and the warnings also at the start of ``serve``, ``worker`` and ``db upgrade``).

Every check is one ``Finding``: ok, a warning or a failure, in a line, with the fix. A check
never changes anything: the database is asked for its schema version, not upgraded; the
providers get one read-only call each (Telegram getMe, Twilio's account fetch).

Example::

    for finding in startup_warnings(settings, os.environ):
        log.warning("%s", finding.line())
    problem = await database_problem(settings.database_url)   # None, or a Finding to print
    findings = await check_everything(settings, os.environ)   # citybot check
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from urllib.parse import urlsplit

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.bootstrap import (
    CLUSTER_STREAM_SHARDS,
    REDIS_PREFIX,
    builtin_open311_endpoint,
    replica_health,
    service_backends,
)
from bot.channel_setup import build_channels
from bot.config import Settings, sqlite_path
from channels.base import AccountCheckFailed
from city.open311.client import Open311Backend
from storage.migrate import pending_migrations
from storage.redis import connect_redis, redis_topology
from storage.session import create_engine

__all__ = [
    "CHECK_TIMEOUT",
    "Finding",
    "Outcome",
    "check_everything",
    "check_redis",
    "database_problem",
    "database_reason",
    "startup_warnings",
]

# Plain http is fine for a public URL that only this machine uses (a trial, a test).
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}

# Each reachability check gives up after this many seconds (an unreachable host may otherwise
# hold a connect for minutes).
CHECK_TIMEOUT = 5.0


class Outcome(Enum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class Finding:
    outcome: Outcome
    what: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        fix = f" -> {self.fix}" if self.fix else ""
        return f"{self.outcome.value:<4} {self.what:<9} {self.detail}{fix}"


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def startup_warnings(settings: Settings, env: Mapping[str, str]) -> list[Finding]:
    """Settings that are valid but break something without an error later."""
    found: list[Finding] = []
    if sqlite_path(settings.database_url) is None and not env.get("CITYBOT_SESSION_SECRET"):
        found.append(
            Finding(
                Outcome.WARN,
                "secret",
                "CITYBOT_SESSION_SECRET is not set and the database is not a SQLite file: each "
                "process makes its own at start, so web chat sessions, photo links and the "
                "built-in Open311 api_key made by one process fail in the others and after a "
                "restart",
                "set the same random value on every process (openssl rand -base64 32)",
            )
        )
    if (
        settings.telegram_bot_token
        and not settings.telegram_webhook_secret
        and not settings.telegram_polling
    ):
        found.append(
            Finding(
                Outcome.WARN,
                "telegram",
                "TELEGRAM_BOT_TOKEN is set without TELEGRAM_WEBHOOK_SECRET: every webhook update "
                "is refused (403), so Telegram residents get no answer",
                "set TELEGRAM_WEBHOOK_SECRET, then citybot telegram set-webhook "
                "(or run serve --telegram-polling)",
            )
        )
    public = settings.public_url
    if public.startswith("http://") and urlsplit(public).hostname not in _LOCAL_HOSTS:
        found.append(
            Finding(
                Outcome.WARN,
                "public",
                f"CITYBOT_PUBLIC_URL {public} is not https: Telegram refuses such a webhook and "
                "session cookies are sent in the clear",
                "put citybot behind TLS (deploy/nginx/) and set CITYBOT_PUBLIC_URL=https://...",
            )
        )
    return found


async def database_problem(url: str) -> Finding | None:
    """None when the database answers, else a failure saying why and what to do."""
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        async with asyncio.timeout(CHECK_TIMEOUT), engine.connect() as connection:
            await connection.exec_driver_sql("SELECT 1")
    except TimeoutError:
        return _database_failed(url, f"no answer within {CHECK_TIMEOUT:g} s")
    except (SQLAlchemyError, OSError) as exc:
        return _database_failed(url, database_reason(exc))
    finally:
        await engine.dispose()
    return None


def database_reason(exc: BaseException) -> str:
    """The driver's own words, without SQLAlchemy's wrapping and its "background" link."""
    original = getattr(exc, "orig", None) or exc
    text = str(original).splitlines()[0] if str(original) else type(original).__name__
    return text.removeprefix("(sqlalchemy.dialects.postgresql.asyncpg.Error) ")


def _database_failed(url: str, reason: str) -> Finding:
    parsed = make_url(url)
    shown = _shown(url)
    lowered = reason.lower()
    if parsed.get_backend_name() == "sqlite":
        fix = "check that the folder of the SQLite file exists and this user may write to it"
    elif "does not exist" in lowered and "database" in lowered:
        fix = (
            f"create it: createdb -h {parsed.host or 'localhost'} -p {parsed.port or 5432} "
            f"-U {parsed.username or 'postgres'} {parsed.database} (then citybot db upgrade)"
        )
    elif "password" in lowered or "authentication" in lowered or "role" in lowered:
        fix = "check the user and password in CITYBOT_DATABASE_URL (and pg_hba.conf)"
    elif "name or service not known" in lowered or "nodename" in lowered:
        fix = "check the host name in CITYBOT_DATABASE_URL"
    else:
        fix = (
            "is PostgreSQL running and listening there? check the host and port in "
            "CITYBOT_DATABASE_URL"
        )
    return Finding(Outcome.FAIL, "database", f"cannot reach {shown}: {reason}", fix)


async def _check_database(settings: Settings) -> list[Finding]:
    problem = await database_problem(settings.database_url)
    if problem is not None:
        return [problem]
    shown = _shown(settings.database_url)
    try:
        pending = await asyncio.wait_for(pending_migrations(settings.database_url), CHECK_TIMEOUT)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        return [Finding(Outcome.FAIL, "database", f"{shown} answers, but: {database_reason(exc)}")]
    if pending:
        return [
            Finding(
                Outcome.WARN,
                "database",
                f"{shown} answers; {pending} migration(s) not applied yet",
                "citybot db upgrade (serve and worker also apply them at start)",
            )
        ]
    return [Finding(Outcome.OK, "database", f"{shown} answers, schema up to date")]


async def _check_replica(settings: Settings) -> list[Finding]:
    """A replica down or lagging is a warning: analytics and open data read from the primary."""
    if settings.database_replica_url is None:
        return []
    shown = _shown(settings.database_replica_url)
    health = await replica_health(settings)
    if health.ok:
        lag = f"{health.lag_seconds:.1f} s" if health.lag_seconds is not None else "unknown"
        return [
            Finding(
                Outcome.OK,
                "replica",
                f"{shown} answers, {lag} behind: analytics and open data read from it",
            )
        ]
    return [
        Finding(
            Outcome.WARN,
            "replica",
            f"{health.reason}: analytics and open data read from the primary until it is back",
            "is the standby running and streaming? (SELECT * FROM pg_stat_wal_receiver on it); "
            "CITYBOT_DATABASE_REPLICA_MAX_LAG sets how far behind it may be",
        )
    ]


async def check_redis(settings: Settings) -> list[Finding]:
    """The Redis lines of `citybot check`: reachable, its topology (a cluster's primaries and
    shards, a Sentinel primary's replicas), the key layout it holds, what it keeps on disk."""
    if settings.redis_url is None:
        return [Finding(Outcome.OK, "redis", "not configured: one process, state in the database")]
    topology = redis_topology(settings.redis_url)
    # A cluster's or Sentinel's URL names several hosts: described, never shown with a password.
    shown = _shown(settings.redis_url) if topology.kind == "single" else topology.describe()
    redis = connect_redis(settings.redis_url)
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await redis.ping()
            persistence = await _persistence(redis)
            shape = await _redis_shape(redis, settings, topology.kind)
    except (RedisError, OSError, TimeoutError) as exc:
        return [
            Finding(
                Outcome.FAIL,
                "redis",
                f"cannot reach {shown}: {exc or type(exc).__name__}",
                "is Redis running there? check the host, port, password and database number "
                "in CITYBOT_REDIS_URL",
            )
        ]
    finally:
        await redis.aclose()
    findings = [finding for finding in shape if finding.outcome is not Outcome.OK]
    if settings.redis_key_secret is None:
        findings.append(
            Finding(
                Outcome.WARN,
                "redis",
                "Redis key names are keyed with a secret derived from CITYBOT_SESSION_SECRET: "
                "rotating that starts every conversation held in Redis afresh",
                "set CITYBOT_REDIS_KEY_SECRET once, the same in every process, and keep it "
                "(docs/scaling.md#key-layout)",
            )
        )
    if persistence is False:
        findings.append(
            Finding(
                Outcome.WARN,
                "redis",
                f"{shown} answers, but keeps nothing on disk (no AOF, no snapshots): replies "
                "and conversation state queued there are lost when it restarts",
                "set appendonly yes in redis.conf (docs/operations.md#backups)",
            )
        )
    if any(f.outcome is Outcome.FAIL for f in findings):
        return findings
    said = "; ".join(f.detail for f in shape if f.outcome is Outcome.OK)
    return [
        Finding(Outcome.OK, "redis", f"{shown} answers" + (f"; {said}" if said else "")),
        *findings,
    ]


async def _redis_shape(redis: Redis, settings: Settings, kind: str) -> list[Finding]:
    """What the topology says about running citybot on it: a cluster's primaries against the
    shards, a Sentinel primary's replicas, the shard count Redis's keys are laid out in."""
    found: list[Finding] = []
    shards = settings.redis_stream_shards or (CLUSTER_STREAM_SHARDS if kind == "cluster" else 1)
    if kind == "cluster":
        info = await redis.cluster_info()  # type: ignore[attr-defined]
        state = _text(info.get("cluster_state", info.get(b"cluster_state", "")))
        primaries = int(info.get("cluster_size", info.get(b"cluster_size", 0)) or 0)
        if state != "ok":
            found.append(
                Finding(
                    Outcome.FAIL,
                    "redis",
                    f"the cluster's state is {state or 'unknown'}, not ok",
                    "check every slot is served: redis-cli --cluster check <node>",
                )
            )
        elif shards < primaries:
            found.append(
                Finding(
                    Outcome.WARN,
                    "redis",
                    f"{shards} stream shard(s) for {primaries} primaries: some primaries hold "
                    "no conversations",
                    "set CITYBOT_REDIS_STREAM_SHARDS to a few per primary before the first "
                    "start (docs/scaling.md)",
                )
            )
        else:
            found.append(
                Finding(Outcome.OK, "redis", f"{primaries} primaries, {shards} stream shards")
            )
    elif kind == "sentinel":
        replication = await redis.info("replication")
        replicas = int(replication.get("connected_slaves", 0))
        if replicas == 0:
            found.append(
                Finding(
                    Outcome.WARN,
                    "redis",
                    "the Sentinel primary has no replica connected: a failover has nowhere to "
                    "go, and writes are not confirmed on a replica",
                    "start the replica (replicaof <primary> <port>) and check the sentinels",
                )
            )
        else:
            found.append(Finding(Outcome.OK, "redis", f"{replicas} replica(s) connected"))
    record = await redis.get(f"{REDIS_PREFIX}layout")
    if record:
        kept = int(orjson.loads(record).get("shards", shards))
        if kept != shards:
            found.append(
                Finding(
                    Outcome.FAIL,
                    "redis",
                    f"Redis's keys are laid out in {kept} stream shard(s), the settings give "
                    f"{shards}: serve and worker would refuse to start",
                    f"set CITYBOT_REDIS_STREAM_SHARDS={kept} (docs/scaling.md)",
                )
            )
    return found


async def _persistence(redis: Redis) -> bool | None:
    """Whether Redis writes to disk (AOF or RDB snapshots); None where CONFIG is not allowed
    (managed Redis services refuse it: their persistence is the provider's setting)."""
    try:
        answers = [await redis.config_get("appendonly"), await redis.config_get("save")]
    except RedisError:
        return None
    # Keys and values come back as bytes unless the client decodes responses.
    config = {_text(k): _text(v) for answer in answers for k, v in answer.items()}
    return config.get("appendonly") == "yes" or bool(config.get("save", "").strip())


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _check_providers(settings: Settings, env: Mapping[str, str]) -> list[Finding]:
    channels = build_channels(settings, env=env)
    fixes = {
        "telegram": "check TELEGRAM_BOT_TOKEN (BotFather's /token) and TELEGRAM_API_BASE_URL",
        "sms": "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (Twilio console, Account info)",
        "whatsapp": "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (Twilio console, Account info)",
        "ussd": "set TWILIO_SMS_FROM, or AFRICASTALKING_USERNAME and AFRICASTALKING_API_KEY "
        "(Africa's Talking dashboard, Settings > API Key); behind a proxy, HTTPS_PROXY",
    }
    found: list[Finding] = []
    asked: set[tuple[str, ...]] = set()
    try:
        for name, channel in channels.items():
            # SMS and WhatsApp share one Twilio account: it is asked once.
            account = getattr(channel, "account", None)
            key = (account.account_sid,) if account is not None else (name,)
            if key in asked:
                continue
            asked.add(key)
            try:
                said = await asyncio.wait_for(channel.check_account(), CHECK_TIMEOUT)
            except AccountCheckFailed as exc:
                found.append(Finding(Outcome.FAIL, name, str(exc), fixes.get(name, "")))
            except TimeoutError:
                found.append(
                    Finding(
                        Outcome.FAIL, name, f"no answer within {CHECK_TIMEOUT:g} s", fixes[name]
                    )
                )
            else:
                found.append(Finding(Outcome.OK, name, said))
    finally:
        for channel in channels.values():
            with contextlib.suppress(Exception):
                await channel.close()
    if not channels:
        found.append(
            Finding(Outcome.OK, "channels", "web chat only (no Telegram or Twilio credentials)")
        )
    return found


async def _check_city(settings: Settings) -> list[Finding]:
    endpoint = settings.open311_endpoint or builtin_open311_endpoint(settings)
    city = Open311Backend(
        endpoint, api_key=settings.open311_key, jurisdiction_id=settings.open311_jurisdiction_id
    )
    try:
        services = await asyncio.wait_for(city.services(), CHECK_TIMEOUT)
    except Exception as exc:  # refused, not GeoReport, a key refused, no answer...
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if settings.builtin_open311:
            # The built-in server is citybot serve itself: down while serve is.
            return [
                Finding(
                    Outcome.WARN,
                    "city",
                    f"the built-in Open311 server at {endpoint} does not answer ({reason})",
                    "start citybot serve; CITYBOT_PUBLIC_URL must reach it from here",
                )
            ]
        return [
            Finding(
                Outcome.FAIL,
                "city",
                f"{endpoint} cannot be used: {reason}",
                "check OPEN311_ENDPOINT, OPEN311_API_KEY and that this host may reach it; "
                "reports wait in the database until it answers",
            )
        ]
    finally:
        with contextlib.suppress(Exception):
            await city.close()
    return [Finding(Outcome.OK, "city", f"{endpoint} answers with {len(services)} service(s)")]


async def _check_operators(settings: Settings) -> list[Finding]:
    """Each second back end (``OPEN311_SERVICE_ENDPOINTS``, a transport operator's): that it
    answers, and offers the services sent to it."""
    found: list[Finding] = []
    backends = service_backends(settings)
    by_backend: dict[int, list[str]] = {}
    for code, backend in backends.items():
        by_backend.setdefault(id(backend), []).append(code)
    for codes in by_backend.values():
        backend = backends[codes[0]]
        endpoint = settings.open311_service_endpoints[codes[0]]
        try:
            offered = await asyncio.wait_for(backend.services(), CHECK_TIMEOUT)
        except Exception as exc:  # refused, not GeoReport, a key refused, no answer...
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            found.append(
                Finding(
                    Outcome.FAIL,
                    "operator",
                    f"{endpoint} ({', '.join(codes)}) cannot be used: {reason}",
                    "check OPEN311_SERVICE_ENDPOINTS, OPEN311_SERVICE_API_KEYS and that this host "
                    "may reach it; those reports wait in the database until it answers",
                )
            )
            continue
        finally:
            with contextlib.suppress(Exception):
                await backend.close()
        missing = sorted(set(codes) - {s.service_code for s in offered})
        if missing:
            found.append(
                Finding(
                    Outcome.FAIL,
                    "operator",
                    f"{endpoint} answers but does not offer {', '.join(missing)}",
                    "ask the operator for the service code their endpoint files under, or take "
                    "the service out of OPEN311_SERVICE_ENDPOINTS",
                )
            )
            continue
        found.append(
            Finding(Outcome.OK, "operator", f"{endpoint} answers and takes {', '.join(codes)}")
        )
    return found


def _check_keys(settings: Settings, env: Mapping[str, str]) -> list[Finding]:
    """The signing keys: which are set, and how many old ones a rotation still accepts."""
    session = "CITYBOT_SESSION_SECRET " + (
        "set" if env.get("CITYBOT_SESSION_SECRET") else "generated"
    )
    old_sessions = len(settings.session_secrets_old)
    old_links = len(settings.media_link_keys_old)
    grace = (
        f"; accepted for a rotation's grace period: {old_sessions} old session secret(s) "
        f"(CITYBOT_SESSION_SECRET_OLD), {old_links} old link key(s) (CITYBOT_MEDIA_LINK_KEY_OLD)"
        if old_sessions or old_links
        else ""
    )
    if settings.media_link_key is None:
        return [
            Finding(
                Outcome.WARN,
                "keys",
                f"{session}; CITYBOT_MEDIA_LINK_KEY is not set, so the session secret also signs "
                f"the photo links filed with the city: rotating it would end them{grace}",
                "set CITYBOT_MEDIA_LINK_KEY to a new random value (openssl rand -base64 32) and "
                "CITYBOT_MEDIA_LINK_KEY_OLD to the session secret until the links made before "
                "expire (CITYBOT_MEDIA_LINK_DAYS)",
            )
        ]
    return [
        Finding(Outcome.OK, "keys", f"{session}; CITYBOT_MEDIA_LINK_KEY set (a key apart){grace}")
    ]


async def check_everything(settings: Settings, env: Mapping[str, str]) -> list[Finding]:
    """Every check, in the order an operator fixes things: settings, stores, providers, city."""
    found = [Finding(Outcome.OK, "settings", "every variable has a usable value")]
    found += startup_warnings(settings, env)
    found += _check_keys(settings, env)
    checks: list[Callable[[], Awaitable[list[Finding]]]] = [
        lambda: _check_database(settings),
        lambda: _check_replica(settings),
        lambda: check_redis(settings),
        lambda: _check_providers(settings, env),
        lambda: _check_city(settings),
        lambda: _check_operators(settings),
    ]
    for check in checks:
        found += await check()
    return found
