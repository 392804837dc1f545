"""Settings: every knob citybot has, read once from the environment.

All variables are optional; with none set, ``citybot serve`` runs on the embedded default (a
SQLite file in the working directory, no Redis, the built-in Open311 server). The table of
variables is the black-box contract in DESIGN.md; the extra knobs below it are ours.

Example::

    settings = Settings.from_env({"CITYBOT_PORT": "9000"})
    settings.port            # 9000
    settings.database_url    # 'sqlite+aiosqlite:////current/dir/citybot.sqlite3'
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import time
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import make_url

from conversations.office_hours import DEFAULT_OFFICE_HOURS, OfficeHours
from staff.sso import OidcSettings, parse_role_map
from storage.redis import redis_topology

__all__ = ["ConfigError", "Settings", "default_database_url", "listener_url", "sqlite_path"]

_N = TypeVar("_N", int, float)

DEFAULT_SQLITE_FILE = "citybot.sqlite3"
# Next to the SQLite file and matched by .gitignore's ``*.sqlite3-*``, so it is never committed.
SECRET_SUFFIX = "-session-secret"


class ConfigError(ValueError):
    """An environment variable has a value citybot cannot use; the message names it."""


def default_database_url(cwd: Path | None = None) -> str:
    path = (cwd or Path.cwd()) / DEFAULT_SQLITE_FILE
    return f"sqlite+aiosqlite:///{path.resolve()}"


def listener_url(host: str, port: int) -> str:
    """The address of a ``serve`` listening on ``host:port``, as this machine reaches it: the
    public URL when ``CITYBOT_PUBLIC_URL`` is not set."""
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "localhost"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def sqlite_path(database_url: str) -> Path | None:
    """The file behind a SQLite URL, or None for other databases and in-memory SQLite."""
    url = make_url(database_url)
    if not url.get_backend_name().startswith("sqlite") or not url.database:
        return None
    if url.database == ":memory:":
        return None
    return Path(url.database)


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = field(default_factory=default_database_url)
    # A streaming replica of the PostgreSQL database for analytics and open data (None: every
    # read on the primary); reads go back to the primary while it is down or lags more than
    # ``database_replica_max_lag`` seconds (``storage.replica``).
    database_replica_url: str | None = None
    database_replica_max_lag: float = 30.0
    redis_url: str | None = None
    # Keys the hash that names each conversation's Redis keys (``storage.redis_layout``), so no
    # phone number shows in Redis. None: derived from the session secret. It must stay the same
    # for as long as conversations in Redis should last: a new one starts every one afresh.
    redis_key_secret: str | None = field(default=None, repr=False)
    # How many shards the reply and dispatch streams have; None: 1 on one Redis or Sentinel,
    # ``CLUSTER_STREAM_SHARDS`` on a cluster (docs/scaling.md).
    redis_stream_shards: int | None = None
    # Replicas that must have a turn's Redis writes before it goes on (``storage.redis``); None:
    # one behind Sentinel, none otherwise.
    redis_wait_replicas: int | None = None
    public_url: str = "http://localhost:8080"
    host: str = "127.0.0.1"
    port: int = 8080
    # Reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are believed (none: the peer
    # is the client).
    trusted_proxies: tuple[IPv4Network | IPv6Network, ...] = ()
    # ``citybot worker`` serves /metrics, /healthz and /readyz on CITYBOT_HOST and this port
    # (None: no listener).
    worker_metrics_port: int | None = None

    telegram_bot_token: str | None = None
    telegram_webhook_secret: str | None = None
    telegram_api_base_url: str | None = None
    # ``citybot serve --telegram-polling`` (or CITYBOT_TELEGRAM_POLLING=1): getUpdates instead of
    # a webhook, for a machine with no public URL. One process per bot only.
    telegram_polling: bool = False
    # With Redis, whether this process sends the replies queued on the reply streams. Off
    # (``citybot serve --no-replies`` or CITYBOT_SEND_REPLIES=0), a web process only takes
    # messages in, and ``citybot worker`` processes send the replies.
    send_replies: bool = True

    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_sms_from: str | None = None
    twilio_whatsapp_from: str | None = None
    twilio_api_base_url: str | None = None

    # USSD (channels.ussd): on with a service code and a webhook secret; the gateway's addresses
    # (empty: any); Africa's Talking's account for the SMS that follows a session.
    ussd_service_code: str | None = None
    ussd_webhook_secret: str | None = field(default=None, repr=False)
    ussd_allowed_ips: tuple[IPv4Network | IPv6Network, ...] = ()
    africastalking_username: str | None = None
    africastalking_api_key: str | None = field(default=None, repr=False)
    africastalking_sms_from: str | None = None

    open311_endpoint: str | None = None
    open311_api_key: str | None = None
    open311_jurisdiction_id: str | None = None
    # The built-in server's public answers carry descriptions, typed addresses and photo links
    # (off: those may name a resident or show their home; the api_key holder sees them anyway).
    open311_public_details: bool = False
    # A second back end per service (a transport operator's Open311 endpoint): service code ->
    # endpoint, and its api_key; other services go to the city's (``OPEN311_ENDPOINT``).
    open311_service_endpoints: Mapping[str, str] = field(default_factory=dict)
    open311_service_api_keys: Mapping[str, str] = field(default_factory=dict)

    # Signs the web chat session cookie. Unset: generated once and kept next to the SQLite file,
    # so a restart keeps residents' sessions (see ``from_env``).
    session_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    # Session secrets being rotated out (CITYBOT_SESSION_SECRET_OLD): cookies sealed with them
    # are still accepted, new ones are sealed with ``session_secret``.
    session_secrets_old: tuple[str, ...] = field(default=(), repr=False)
    # Signs the links citybot hands out (photos for the city, residents' exports): a key apart
    # from the session secret, so rotating one never ends what the other signed. None: the
    # session secrets sign them (as before the key existed; ``citybot check`` says to set it).
    media_link_key: str | None = field(default=None, repr=False)
    media_link_keys_old: tuple[str, ...] = field(default=(), repr=False)
    # An open form idle for longer than this is offered to continue or start over.
    form_idle_hours: float = 24.0
    # Per-resident token bucket: a steady rate and a burst on top of it.
    rate_limit_per_second: float = 1.0
    rate_limit_burst: int = 12
    # The message log (in and out) is purged after this many days.
    message_retention_days: int = 90
    # The photo links sent to the city (``/media/<token>``) stop working after this many days.
    media_link_days: float = 90.0
    log_level: str = "INFO"
    # Seconds a graceful shutdown waits for turns in flight.
    shutdown_timeout: float = 10.0
    # With Redis: seconds a queued reply taken by a process that stopped waits before another
    # process takes it over (``notifier.replies``).
    reply_claim_seconds: float = 60.0

    # The filer: how long it sleeps when nothing is due, and the waits before each retry (the
    # last repeats forever); an alert is raised after ``filer_alert_after`` failures of a report.
    filer_idle_seconds: float = 1.0
    filer_retry_delays: tuple[float, ...] = (60.0, 300.0, 1800.0)
    filer_alert_after: int = 5
    # How long a report a filer took stays its own: a filer killed mid-filing holds its reports
    # that long before another takes them over. It must outlast the city's HTTP timeout.
    filer_lease_seconds: float = 120.0
    # The notification dispatcher: how long it sleeps when nothing is due, and how many times it
    # tries one message before giving up (logged as an alert).
    dispatch_idle_seconds: float = 1.0
    dispatch_max_attempts: int = 8
    # The status poller asks the city about every open request this often.
    status_poll_seconds: float = 300.0
    # No status messages between these local times (None: send at any hour), in ``city_timezone``.
    quiet_hours: tuple[time, time] | None = (time(21, 0), time(7, 0))
    city_timezone: str = "Africa/Johannesburg"
    # The daily digest of reports goes at this local time (None: no digest); it waits out quiet
    # hours.
    digest_time: time | None = time(18, 0)
    # Early warning: how many false suggested incidents a day, across the city, the city
    # accepts from the burst detector (None: the detector is off).
    early_warning_false_alarms_per_day: float | None = 1.0
    # Broadcasts: above this many recipients a second person (an approver) must agree; the
    # preview prices SMS at this much a segment.
    broadcast_approval_size: int = 10_000
    # A broadcast sender holds the rows it took this long; after it, they are taken to be the
    # rows of a sender that died. Longer than any one send (they are cut off at 60 s).
    broadcast_lease_seconds: float = 120.0
    sms_segment_price: float = 0.30
    # Support takeover: how many conversations one agent may hold at once, and when staff
    # answer (per day, public holidays closed, in ``city_timezone``).
    support_agent_limit: int = 5
    office_hours: OfficeHours = field(
        default_factory=lambda: OfficeHours.parse(DEFAULT_OFFICE_HOURS)
    )
    # The same question misunderstood this many times in a row asks a person to help (0: never).
    support_after_misses: int = 3
    # The three timeouts, in minutes (None: off): waiting unclaimed (of open office time), an
    # agent owing an answer, a resident not answering the agent.
    support_unclaimed_minutes: float | None = 15.0
    support_agent_silent_minutes: float | None = 10.0
    support_resident_silent_minutes: float | None = 30.0
    # The teams a conversation may be transferred to (empty: any short name).
    support_teams: tuple[str, ...] = ()
    sms_currency: str = "ZAR"
    # Open data: how often the performance rollup is refreshed; the equity watch's threshold
    # (informal over formal median time to close) and the periods it compares.
    open_data_refresh_seconds: float = 300.0
    equity_threshold: float = 1.5
    equity_period: str = "month"
    # Staff single sign-on with OpenID Connect (None: off, password and TOTP only).
    oidc: OidcSettings | None = None

    @property
    def builtin_open311(self) -> bool:
        """No city endpoint configured: file with the built-in GeoReport v2 server."""
        return not self.open311_endpoint

    @property
    def session_secrets(self) -> tuple[str, ...]:
        """The session secret to seal with, then the old ones still accepted."""
        return (self.session_secret, *self.session_secrets_old)

    @property
    def link_keys(self) -> tuple[str, ...]:
        """The key to sign links with, then the old ones still accepted."""
        if self.media_link_key is None:
            return (*self.session_secrets, *self.media_link_keys_old)
        return (self.media_link_key, *self.media_link_keys_old)

    @property
    def redis_key_names_secret(self) -> bytes:
        """The HMAC key of Redis key names: ``CITYBOT_REDIS_KEY_SECRET``, else one derived from
        the session secret (the same in every process that shares it)."""
        if self.redis_key_secret is not None:
            return self.redis_key_secret.encode()
        return hmac.new(self.session_secret.encode(), b"citybot redis key names", "sha256").digest()

    @property
    def open311_key(self) -> str | None:
        """The api_key filing uses: ``OPEN311_API_KEY``, or for the built-in server (which never
        runs open) one derived from the session secret, so it is made on first start, kept with
        that secret, and the same in every process that shares it."""
        if self.open311_api_key or not self.builtin_open311:
            return self.open311_api_key
        digest = hmac.new(self.session_secret.encode(), b"citybot open311 api_key", "sha256")
        return digest.hexdigest()[:32]

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        """Read the environment; raise ``ConfigError`` naming the variable that is wrong."""

        def text(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        host = text("CITYBOT_HOST") or "127.0.0.1"
        port = _number(env, "CITYBOT_PORT", 8080, int, minimum=0, maximum=65535)
        public_url = _web_url("CITYBOT_PUBLIC_URL", text("CITYBOT_PUBLIC_URL")) or listener_url(
            host, port
        )
        database_url = _database_url(text("CITYBOT_DATABASE_URL") or default_database_url())
        for name in ("OPEN311_ENDPOINT", "TELEGRAM_API_BASE_URL", "TWILIO_API_BASE_URL"):
            _web_url(name, text(name))

        return cls(
            database_url=database_url,
            database_replica_url=_replica_url(database_url, text("CITYBOT_DATABASE_REPLICA_URL")),
            database_replica_max_lag=_number(
                env, "CITYBOT_DATABASE_REPLICA_MAX_LAG", 30.0, float, minimum=0
            ),
            redis_url=_redis_url(text("CITYBOT_REDIS_URL")),
            redis_key_secret=_redis_key_secret(text("CITYBOT_REDIS_KEY_SECRET")),
            redis_stream_shards=(
                _number(env, "CITYBOT_REDIS_STREAM_SHARDS", 1, int, minimum=1, maximum=1024)
                if text("CITYBOT_REDIS_STREAM_SHARDS")
                else None
            ),
            redis_wait_replicas=(
                _number(env, "CITYBOT_REDIS_WAIT_REPLICAS", 0, int, minimum=0, maximum=16)
                if text("CITYBOT_REDIS_WAIT_REPLICAS")
                else None
            ),
            public_url=public_url,
            host=host,
            trusted_proxies=_networks(text("CITYBOT_TRUSTED_PROXIES")),
            worker_metrics_port=(
                _number(env, "CITYBOT_WORKER_METRICS_PORT", 0, int, minimum=1, maximum=65535)
                if text("CITYBOT_WORKER_METRICS_PORT")
                else None
            ),
            port=port,
            telegram_bot_token=text("TELEGRAM_BOT_TOKEN"),
            telegram_webhook_secret=text("TELEGRAM_WEBHOOK_SECRET"),
            telegram_api_base_url=text("TELEGRAM_API_BASE_URL"),
            telegram_polling=(text("CITYBOT_TELEGRAM_POLLING") or "").lower()
            in ("1", "true", "yes", "on"),
            send_replies=(text("CITYBOT_SEND_REPLIES") or "on").lower()
            not in ("0", "false", "no", "off"),
            twilio_account_sid=text("TWILIO_ACCOUNT_SID"),
            twilio_auth_token=text("TWILIO_AUTH_TOKEN"),
            twilio_sms_from=text("TWILIO_SMS_FROM"),
            twilio_whatsapp_from=text("TWILIO_WHATSAPP_FROM"),
            twilio_api_base_url=text("TWILIO_API_BASE_URL"),
            ussd_service_code=_ussd_code(text("USSD_SERVICE_CODE")),
            ussd_webhook_secret=_ussd_secret(text("USSD_WEBHOOK_SECRET")),
            ussd_allowed_ips=_networks(text("USSD_ALLOWED_IPS"), "USSD_ALLOWED_IPS"),
            africastalking_username=text("AFRICASTALKING_USERNAME"),
            africastalking_api_key=text("AFRICASTALKING_API_KEY"),
            africastalking_sms_from=text("AFRICASTALKING_SMS_FROM"),
            open311_endpoint=text("OPEN311_ENDPOINT"),
            open311_api_key=text("OPEN311_API_KEY"),
            open311_jurisdiction_id=text("OPEN311_JURISDICTION_ID"),
            open311_public_details=(text("OPEN311_PUBLIC_DETAILS") or "").lower()
            in ("1", "true", "yes", "on"),
            open311_service_endpoints={
                code: str(_web_url(f"OPEN311_SERVICE_ENDPOINTS ({code})", url))
                for code, url in _by_service(
                    "OPEN311_SERVICE_ENDPOINTS", text("OPEN311_SERVICE_ENDPOINTS")
                ).items()
            },
            open311_service_api_keys=_by_service(
                "OPEN311_SERVICE_API_KEYS", text("OPEN311_SERVICE_API_KEYS")
            ),
            session_secret=text("CITYBOT_SESSION_SECRET") or _stored_secret(database_url),
            session_secrets_old=_old_keys(env, "CITYBOT_SESSION_SECRET"),
            media_link_key=_media_link_key(text),
            media_link_keys_old=_old_keys(env, "CITYBOT_MEDIA_LINK_KEY"),
            form_idle_hours=_number(env, "CITYBOT_FORM_IDLE_HOURS", 24.0, float, minimum=0.01),
            rate_limit_per_second=_number(
                env, "CITYBOT_RATE_LIMIT_PER_SECOND", 1.0, float, minimum=0.01
            ),
            rate_limit_burst=_number(env, "CITYBOT_RATE_LIMIT_BURST", 12, int, minimum=1),
            message_retention_days=_number(
                env, "CITYBOT_MESSAGE_RETENTION_DAYS", 90, int, minimum=1
            ),
            media_link_days=_number(env, "CITYBOT_MEDIA_LINK_DAYS", 90.0, float, minimum=0.01),
            log_level=_log_level(text("CITYBOT_LOG_LEVEL") or "INFO"),
            shutdown_timeout=_number(env, "CITYBOT_SHUTDOWN_TIMEOUT", 10.0, float, minimum=0),
            reply_claim_seconds=_number(
                env, "CITYBOT_REPLY_CLAIM_SECONDS", 60.0, float, minimum=0.1
            ),
            filer_idle_seconds=_number(env, "CITYBOT_FILER_IDLE_SECONDS", 1.0, float, minimum=0.01),
            filer_retry_delays=_delays(text("CITYBOT_FILER_RETRY_DELAYS")),
            filer_alert_after=_number(env, "CITYBOT_FILER_ALERT_AFTER", 5, int, minimum=1),
            filer_lease_seconds=_number(
                env, "CITYBOT_FILER_LEASE_SECONDS", 120.0, float, minimum=1
            ),
            dispatch_idle_seconds=_number(
                env, "CITYBOT_DISPATCH_IDLE_SECONDS", 1.0, float, minimum=0.01
            ),
            dispatch_max_attempts=_number(env, "CITYBOT_DISPATCH_MAX_ATTEMPTS", 8, int, minimum=1),
            status_poll_seconds=_number(
                env, "CITYBOT_STATUS_POLL_SECONDS", 300.0, float, minimum=0.01
            ),
            quiet_hours=_quiet_hours(text("CITYBOT_QUIET_HOURS")),
            city_timezone=_timezone(text("CITYBOT_TIMEZONE") or "Africa/Johannesburg"),
            digest_time=_digest_time(text("CITYBOT_DIGEST_TIME")),
            early_warning_false_alarms_per_day=_early_warning(
                text("CITYBOT_EARLY_WARNING_FALSE_ALARMS_PER_DAY")
            ),
            broadcast_approval_size=_number(
                env, "CITYBOT_BROADCAST_APPROVAL_SIZE", 10_000, int, minimum=0
            ),
            broadcast_lease_seconds=_number(
                env, "CITYBOT_BROADCAST_LEASE_SECONDS", 120.0, float, minimum=1
            ),
            sms_segment_price=_number(env, "CITYBOT_SMS_SEGMENT_PRICE", 0.30, float, minimum=0),
            sms_currency=(text("CITYBOT_SMS_CURRENCY") or "ZAR").upper()[:8],
            oidc=_oidc(text, public_url),
            support_agent_limit=_number(env, "CITYBOT_SUPPORT_AGENT_LIMIT", 5, int, minimum=1),
            office_hours=_office_hours(
                text("CITYBOT_OFFICE_HOURS") or DEFAULT_OFFICE_HOURS,
                text("CITYBOT_PUBLIC_HOLIDAYS") or "",
                _timezone(text("CITYBOT_TIMEZONE") or "Africa/Johannesburg"),
            ),
            support_after_misses=_number(env, "CITYBOT_SUPPORT_AFTER_MISSES", 3, int, minimum=0),
            open_data_refresh_seconds=_number(
                env, "CITYBOT_OPEN_DATA_REFRESH_SECONDS", 300.0, float, minimum=1
            ),
            equity_threshold=_number(env, "CITYBOT_EQUITY_THRESHOLD", 1.5, float, minimum=1),
            equity_period=_equity_period(text("CITYBOT_EQUITY_PERIOD") or "month"),
            support_unclaimed_minutes=_minutes(env, "CITYBOT_SUPPORT_UNCLAIMED_MINUTES", 15.0),
            support_agent_silent_minutes=_minutes(
                env, "CITYBOT_SUPPORT_AGENT_SILENT_MINUTES", 10.0
            ),
            support_resident_silent_minutes=_minutes(
                env, "CITYBOT_SUPPORT_RESIDENT_SILENT_MINUTES", 30.0
            ),
            support_teams=_teams(text("CITYBOT_SUPPORT_TEAMS")),
        )


# A key shorter than this is guessable offline from any token signed with it.
_MIN_KEY_LENGTH = 16


def _media_link_key(text: Callable[[str], str | None]) -> str | None:
    key = text("CITYBOT_MEDIA_LINK_KEY")
    if key is None:
        return None
    if len(key) < _MIN_KEY_LENGTH:
        raise ConfigError(
            f"CITYBOT_MEDIA_LINK_KEY must be at least {_MIN_KEY_LENGTH} characters "
            "(openssl rand -base64 32 makes one)"
        )
    if key == text("CITYBOT_SESSION_SECRET"):
        raise ConfigError(
            "CITYBOT_MEDIA_LINK_KEY must differ from CITYBOT_SESSION_SECRET: they are separate "
            "keys so that rotating one does not end what the other signed"
        )
    return key


def _old_keys(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """``<name>_OLD``: keys being rotated out, comma-separated, still accepted for a while."""
    raw = env.get(f"{name}_OLD", "")
    keys = tuple(dict.fromkeys(part.strip() for part in raw.split(",") if part.strip()))
    current = env.get(name, "").strip()
    if current and current in keys:
        raise ConfigError(
            f"{name}_OLD holds the current {name}: list only the keys being rotated out"
        )
    return keys


def _oidc(text: Callable[[str], str | None], public_url: str) -> OidcSettings | None:
    issuer = _web_url("CITYBOT_OIDC_ISSUER", text("CITYBOT_OIDC_ISSUER"))
    if issuer is None:
        return None
    client_id, secret = text("CITYBOT_OIDC_CLIENT_ID"), text("CITYBOT_OIDC_CLIENT_SECRET")
    if client_id is None or secret is None:
        raise ConfigError(
            "CITYBOT_OIDC_ISSUER is set: CITYBOT_OIDC_CLIENT_ID and CITYBOT_OIDC_CLIENT_SECRET "
            "are needed too"
        )
    try:
        role_map = parse_role_map(text("CITYBOT_OIDC_ROLE_MAP") or "")
    except ValueError as exc:
        raise ConfigError(
            f"CITYBOT_OIDC_ROLE_MAP: {exc} (e.g. cpt-admins=admin,cpt-agents=agent)"
        ) from None
    if not role_map:
        raise ConfigError("CITYBOT_OIDC_ROLE_MAP is needed: which claim values give which roles")
    return OidcSettings(
        issuer=issuer.rstrip("/"),
        client_id=client_id,
        client_secret=secret,
        redirect_uri=f"{public_url}/api/v1/session/sso/callback",
        role_map=role_map,
        roles_claim=text("CITYBOT_OIDC_ROLES_CLAIM") or "roles",
        wards_claim=text("CITYBOT_OIDC_WARDS_CLAIM"),
    )


# What operators write by habit (Heroku, psql, Django) that SQLAlchemy does not take.
_DATABASE_SCHEMES = {"postgres": "postgresql+asyncpg", "postgis": "postgresql+asyncpg"}
_REDIS_SCHEMES = (
    "redis://",
    "rediss://",
    "unix://",
    "redis+cluster://",
    "rediss+cluster://",
    "redis+sentinel://",
    "rediss+sentinel://",
)


def _replica_url(primary: str, raw: str | None) -> str | None:
    """A replica only makes sense beside a PostgreSQL primary, and is PostgreSQL itself."""
    if raw is None:
        return None
    name = "CITYBOT_DATABASE_REPLICA_URL"
    replica = _database_url(raw, name=name)
    if make_url(replica).get_backend_name() != "postgresql":
        raise ConfigError(
            f"{name} must be a PostgreSQL streaming replica (postgresql+asyncpg://...)"
        )
    if make_url(primary).get_backend_name() != "postgresql":
        raise ConfigError(f"{name} is set but CITYBOT_DATABASE_URL is not PostgreSQL")
    return replica


def _database_url(raw: str, *, name: str = "CITYBOT_DATABASE_URL") -> str:
    """A URL for SQLite or PostgreSQL, the two databases citybot is tested on."""
    scheme = raw.partition("://")[0] if "://" in raw else ""
    if scheme.split("+")[0] in _DATABASE_SCHEMES:
        right = _DATABASE_SCHEMES[scheme.split("+")[0]] + "://" + raw.partition("://")[2]
        raise ConfigError(
            f"{name} must start with postgresql+asyncpg://, not {scheme}:// "
            f"(SQLAlchemy's name for PostgreSQL), e.g. {_hide_password(right)}"
        )
    try:
        backend = make_url(raw).get_backend_name()
    except Exception as exc:
        raise ConfigError(
            f"{name} is not a SQLAlchemy URL ({exc}); e.g. "
            "postgresql+asyncpg://citybot@db.internal/citybot or sqlite+aiosqlite:////srv/citybot.sqlite3"
        ) from None
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(
            f"{name} names {backend}; citybot runs on PostgreSQL "
            "(postgresql+asyncpg://...) or SQLite (sqlite+aiosqlite:///...)"
        )
    return raw


def _networks(
    raw: str | None, name: str = "CITYBOT_TRUSTED_PROXIES"
) -> tuple[IPv4Network | IPv6Network, ...]:
    """``"127.0.0.1, 10.0.0.0/8"``: addresses or networks, comma-separated."""
    if raw is None:
        return ()
    try:
        return tuple(
            ip_network(part.strip(), strict=False) for part in raw.split(",") if part.strip()
        )
    except ValueError as exc:
        raise ConfigError(
            f"{name} must be addresses or networks separated by commas, "
            f"e.g. 127.0.0.1,10.0.0.0/8: {exc}"
        ) from None


# A USSD code as dialled: *120*311# (digits and stars between a star and a hash).
_USSD_CODE = re.compile(r"^\*[0-9]+(\*[0-9]+)*#$")


def _ussd_code(raw: str | None) -> str | None:
    if raw is not None and not _USSD_CODE.match(raw):
        raise ConfigError(
            f"USSD_SERVICE_CODE must be a code as dialled, e.g. *120*311#, got {raw!r}"
        )
    return raw


def _ussd_secret(raw: str | None) -> str | None:
    # It is a path segment the gateway is given: long enough not to guess, and URL-safe.
    if raw is not None and not re.fullmatch(r"[A-Za-z0-9_-]{16,128}", raw):
        raise ConfigError(
            "USSD_WEBHOOK_SECRET must be 16 to 128 letters, digits, - or _ "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(24))')"
        )
    return raw


def _redis_url(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not raw.startswith(_REDIS_SCHEMES):
        raise ConfigError(
            "CITYBOT_REDIS_URL must start with redis://, rediss:// (TLS), unix://, "
            "redis+cluster:// or redis+sentinel://, "
            f"e.g. redis://{raw.split('://')[-1]}, got {_hide_password(raw)!r}"
        )
    try:
        redis_topology(raw)
    except ValueError as exc:
        raise ConfigError(
            f"CITYBOT_REDIS_URL {_hide_password(raw)!r}: {exc} (e.g. "
            "redis+cluster://10.0.0.1:7000,10.0.0.2:7000 or "
            "redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/citybot/0)"
        ) from None
    return raw


def _redis_key_secret(raw: str | None) -> str | None:
    if raw is not None and len(raw) < _MIN_KEY_LENGTH:
        raise ConfigError(
            f"CITYBOT_REDIS_KEY_SECRET must be at least {_MIN_KEY_LENGTH} characters "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return raw


def _by_service(name: str, raw: str | None) -> dict[str, str]:
    """``"TRANSPORT-RELIABILITY=https://...,OTHER=..."``: a value per service code."""
    found: dict[str, str] = {}
    for part in (raw or "").split(","):
        if not part.strip():
            continue
        code, sep, value = part.partition("=")
        if not sep or not code.strip() or not value.strip():
            raise ConfigError(
                f"{name} must be SERVICE_CODE=value pairs separated by commas, e.g. "
                f"TRANSPORT-RELIABILITY=https://open311.operator.example/v2, got {part.strip()!r}"
            )
        found[code.strip()] = value.strip()
    return found


def _web_url(name: str, raw: str | None) -> str | None:
    """An http(s) URL with a host, without its trailing ``/``; None when unset."""
    if raw is None:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"{name} must be an http:// or https:// URL with a host, e.g. "
            f"https://{raw.split('://')[-1].strip('/') or 'bot.city.example'}, got {raw!r}"
        )
    return raw.rstrip("/")


def _hide_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _number(
    env: Mapping[str, str],
    name: str,
    default: _N,
    kind: type[_N],
    *,
    minimum: float | None = None,
    maximum: float | None = None,
) -> _N:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(
            f"{name} must be a{'n integer' if kind is int else ' number'}, got {raw!r}"
        ) from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {raw!r}")
    return value


def _equity_period(raw: str) -> str:
    if raw.lower() not in ("week", "month"):
        raise ConfigError(f"CITYBOT_EQUITY_PERIOD must be week or month, got {raw!r}")
    return raw.lower()


def _log_level(raw: str) -> str:
    level = raw.upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
        raise ConfigError(
            f"CITYBOT_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {raw!r}"
        )
    return level


def _delays(raw: str | None) -> tuple[float, ...]:
    """``"60,300,1800"``: seconds before the 1st, 2nd, 3rd... filing retry."""
    if raw is None:
        return (60.0, 300.0, 1800.0)
    try:
        delays = tuple(float(part) for part in raw.split(","))
    except ValueError:
        delays = ()
    if not delays or any(d < 0 for d in delays):
        raise ConfigError(
            f"CITYBOT_FILER_RETRY_DELAYS must be seconds separated by commas, e.g. 60,300,1800, got {raw!r}"
        )
    return delays


def _quiet_hours(raw: str | None) -> tuple[time, time] | None:
    """``"21:00-07:00"`` (may span midnight); ``"off"`` sends status messages at any hour."""
    if raw is None:
        return (time(21, 0), time(7, 0))
    if raw.lower() in ("off", "none", "no"):
        return None
    start, _, end = raw.partition("-")
    try:
        return (time.fromisoformat(start.strip()), time.fromisoformat(end.strip()))
    except ValueError:
        raise ConfigError(
            f"CITYBOT_QUIET_HOURS must be HH:MM-HH:MM or off, e.g. 21:00-07:00, got {raw!r}"
        ) from None


def _digest_time(raw: str | None) -> time | None:
    """``"18:00"``: the local time of the daily digest of reports; ``"off"``: none."""
    if raw is None:
        return time(18, 0)
    if raw.lower() in ("off", "none", "no"):
        return None
    try:
        return time.fromisoformat(raw)
    except ValueError:
        raise ConfigError(
            f"CITYBOT_DIGEST_TIME must be HH:MM or off, e.g. 18:00, got {raw!r}"
        ) from None


def _early_warning(raw: str | None) -> float | None:
    """False suggestions a day the city accepts (``"1"``, ``"0.5"``), or ``"off"``."""
    if raw is None:
        return 1.0
    if raw.lower() in ("off", "none", "no"):
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0.0 < value <= 100.0:
        raise ConfigError(
            "CITYBOT_EARLY_WARNING_FALSE_ALARMS_PER_DAY must be a number above 0 (at most 100) "
            f"or off, e.g. 1, got {raw!r}"
        )
    return value


def _office_hours(raw: str, holidays: str, zone: str) -> OfficeHours:
    """``mon-fri 08:00-16:30; sat 09:00-12:00`` with ISO holidays, or a clear error at start-up."""
    try:
        return OfficeHours.parse(raw, holidays=holidays, zone=zone)
    except ValueError as exc:
        name = "CITYBOT_PUBLIC_HOLIDAYS" if "ISO date" in str(exc) else "CITYBOT_OFFICE_HOURS"
        example = (
            "2026-12-16,2026-12-25"
            if name == "CITYBOT_PUBLIC_HOLIDAYS"
            else "mon-fri 08:00-16:30; sat 09:00-12:00"
        )
        raise ConfigError(f"{name}: {exc}, e.g. {example}") from None


def _minutes(env: Mapping[str, str], name: str, default: float) -> float | None:
    """Minutes, or ``0``/``off`` for a timeout that never fires."""
    raw = env.get(name, "").strip().lower()
    if raw in ("off", "none", "no"):
        return None
    value = _number(env, name, default, float, minimum=0)
    return value or None


def _teams(raw: str | None) -> tuple[str, ...]:
    teams = tuple(dict.fromkeys(t.strip().lower() for t in (raw or "").split(",") if t.strip()))
    for team in teams:
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", team):
            raise ConfigError(
                f"CITYBOT_SUPPORT_TEAMS: {team!r} is not a team name (letters, digits, - and _), "
                "e.g. zu,xh,af,electricity,water"
            )
    return teams


def _timezone(raw: str) -> str:
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"CITYBOT_TIMEZONE must be an IANA time zone, e.g. Africa/Johannesburg, got {raw!r}"
        ) from None
    return raw


def _stored_secret(database_url: str) -> str:
    """The session secret kept beside the SQLite file, created on first use.

    Without a SQLite file (PostgreSQL, several processes) there is nowhere shared to keep it, so
    a fresh secret is made per process; production sets CITYBOT_SESSION_SECRET.
    """
    db_file = sqlite_path(database_url)
    if db_file is None:
        return secrets.token_urlsafe(32)
    path = db_file.with_name(db_file.name + SECRET_SUFFIX)
    try:
        existing = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    # O_EXCL: two processes starting together agree on whichever secret was written first.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip() or secret
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secret + "\n")
    return secret
