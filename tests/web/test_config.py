"""Settings from the environment: defaults, parsing, clear errors, a session secret that lasts."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path

import pytest

from bot.config import ConfigError, Settings, sqlite_path


def test_defaults_are_the_embedded_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings.from_env({})
    assert settings.database_url == f"sqlite+aiosqlite:///{tmp_path.resolve()}/citybot.sqlite3"
    assert (settings.host, settings.port) == ("127.0.0.1", 8080)
    assert settings.redis_url is None
    assert settings.public_url == "http://127.0.0.1:8080"
    assert settings.builtin_open311
    assert settings.telegram_bot_token is None and settings.twilio_account_sid is None
    assert settings.form_idle_hours == 24.0


def test_every_variable_is_read(tmp_path: Path) -> None:
    env = {
        "CITYBOT_DATABASE_URL": "postgresql+asyncpg://u@127.0.0.1/db",
        "CITYBOT_REDIS_URL": "redis://127.0.0.1:6379/3",
        "CITYBOT_PUBLIC_URL": "https://bot.city.example/",
        "CITYBOT_HOST": "0.0.0.0",
        "CITYBOT_PORT": "9000",
        "TELEGRAM_BOT_TOKEN": "123:abc",
        "TWILIO_ACCOUNT_SID": "AC1",
        "TWILIO_AUTH_TOKEN": "tok",
        "OPEN311_ENDPOINT": "https://city.example/open311/v2",
        "CITYBOT_SESSION_SECRET": "s3cret",
        "CITYBOT_FORM_IDLE_HOURS": "2.5",
        "CITYBOT_RATE_LIMIT_PER_SECOND": "5",
        "CITYBOT_RATE_LIMIT_BURST": "20",
        "CITYBOT_MESSAGE_RETENTION_DAYS": "30",
        "CITYBOT_LOG_LEVEL": "debug",
    }
    s = Settings.from_env(env)
    assert s.port == 9000 and s.host == "0.0.0.0"
    assert s.public_url == "https://bot.city.example"
    assert (s.telegram_bot_token, s.twilio_account_sid, s.twilio_auth_token) == (
        "123:abc",
        "AC1",
        "tok",
    )
    assert not s.builtin_open311
    assert s.session_secret == "s3cret"
    assert (s.form_idle_hours, s.rate_limit_per_second, s.rate_limit_burst) == (2.5, 5.0, 20)
    assert s.message_retention_days == 30 and s.log_level == "DEBUG"
    assert "s3cret" not in repr(s)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CITYBOT_PORT", "eighty"),
        ("CITYBOT_PORT", "70000"),
        ("CITYBOT_FORM_IDLE_HOURS", "-1"),
        ("CITYBOT_LOG_LEVEL", "LOUD"),
        ("CITYBOT_DATABASE_URL", "not a url"),
        ("CITYBOT_DIGEST_TIME", "6pm"),
        ("CITYBOT_OFFICE_HOURS", "weekdays 8 to 5"),
        ("CITYBOT_PUBLIC_HOLIDAYS", "25 December"),
        ("CITYBOT_SUPPORT_UNCLAIMED_MINUTES", "soon"),
        ("CITYBOT_SUPPORT_TEAMS", "water, the zulu team"),
        ("USSD_SERVICE_CODE", "120311"),
        ("USSD_SERVICE_CODE", "*120*311"),
        ("USSD_WEBHOOK_SECRET", "short"),
        ("USSD_WEBHOOK_SECRET", "has/a/slash-in-the-path-segment"),
        ("USSD_ALLOWED_IPS", "196.201.214.0/24, the gateway"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, value: str, tmp_path: Path) -> None:
    env = {"CITYBOT_SESSION_SECRET": "x", name: value}
    with pytest.raises(ConfigError, match=name):
        Settings.from_env(env)


def test_support_settings() -> None:
    s = Settings.from_env(
        {
            "CITYBOT_SESSION_SECRET": "x",
            # The old plain-text value reads as the week it says.
            "CITYBOT_OFFICE_HOURS": "Monday to Friday, 08:00 to 16:30; sat 09:00-12:00",
            "CITYBOT_PUBLIC_HOLIDAYS": "2026-12-16 2026-12-25",
            "CITYBOT_TIMEZONE": "Africa/Johannesburg",
            "CITYBOT_SUPPORT_UNCLAIMED_MINUTES": "off",
            "CITYBOT_SUPPORT_AGENT_SILENT_MINUTES": "5",
            "CITYBOT_SUPPORT_RESIDENT_SILENT_MINUTES": "0",
            "CITYBOT_SUPPORT_TEAMS": "ZU, electricity",
            "CITYBOT_SUPPORT_AFTER_MISSES": "2",
            "CITYBOT_SUPPORT_AGENT_LIMIT": "3",
        }
    )
    assert s.office_hours.describe() == "Mon-Fri 08:00-16:30; Sat 09:00-12:00"
    assert len(s.office_hours.holidays) == 2
    assert (
        s.support_unclaimed_minutes,
        s.support_agent_silent_minutes,
        s.support_resident_silent_minutes,
    ) == (None, 5.0, None)
    assert s.support_teams == ("zu", "electricity")
    assert (s.support_after_misses, s.support_agent_limit) == (2, 3)


def test_session_secret_is_kept_next_to_the_sqlite_file(tmp_path: Path) -> None:
    env = {"CITYBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/data/bot.sqlite3"}
    first = Settings.from_env(env).session_secret
    second = Settings.from_env(env).session_secret
    assert first == second and len(first) >= 32
    stored = tmp_path / "data" / "bot.sqlite3-session-secret"
    assert stored.read_text().strip() == first
    assert stored.stat().st_mode & 0o077 == 0


def test_sqlite_path() -> None:
    assert sqlite_path("sqlite+aiosqlite:////tmp/x.sqlite3") == Path("/tmp/x.sqlite3")
    assert sqlite_path("sqlite+aiosqlite://") is None
    assert sqlite_path("postgresql+asyncpg://u@h/db") is None


def test_every_variable_is_documented() -> None:
    # docs/configuration.md is the operators' table; a variable added here must be added there.
    root = Path(__file__).resolve().parents[2]
    source = (root / "bot" / "config.py").read_text()
    read = set(re.findall(r'"((?:CITYBOT|TELEGRAM|TWILIO|OPEN311)_[A-Z0-9_]+)"', source))
    documented = set(
        re.findall(r"\| `([A-Z0-9_]+)` \|", (root / "docs/configuration.md").read_text())
    )
    assert len(read) > 30
    assert read - documented == set()


def test_early_warning_false_alarms_per_day() -> None:
    env = {"CITYBOT_SESSION_SECRET": "x"}
    name = "CITYBOT_EARLY_WARNING_FALSE_ALARMS_PER_DAY"
    assert Settings.from_env(env).early_warning_false_alarms_per_day == 1.0
    assert Settings.from_env(env | {name: "0.5"}).early_warning_false_alarms_per_day == 0.5
    assert Settings.from_env(env | {name: "off"}).early_warning_false_alarms_per_day is None
    for bad in ("0", "-1", "many", "1000"):
        with pytest.raises(ConfigError, match=name):
            Settings.from_env(env | {name: bad})


def test_the_digest_time(tmp_path: Path) -> None:
    env = {"CITYBOT_SESSION_SECRET": "x"}
    assert Settings.from_env(env).digest_time == time(18, 0)
    assert Settings.from_env(env | {"CITYBOT_DIGEST_TIME": "07:30"}).digest_time == time(7, 30)
    assert Settings.from_env(env | {"CITYBOT_DIGEST_TIME": "off"}).digest_time is None


_PRIMARY = "postgresql+asyncpg://citybot@db/citybot"
_REPLICA = "postgresql+asyncpg://citybot@replica/citybot"


def test_a_read_replica_and_its_lag_are_read() -> None:
    env = {"CITYBOT_DATABASE_URL": _PRIMARY, "CITYBOT_SESSION_SECRET": "s"}
    settings = Settings.from_env(
        {**env, "CITYBOT_DATABASE_REPLICA_URL": _REPLICA, "CITYBOT_DATABASE_REPLICA_MAX_LAG": "5"}
    )
    assert (settings.database_replica_url, settings.database_replica_max_lag) == (_REPLICA, 5.0)
    assert Settings.from_env(env).database_replica_url is None


@pytest.mark.parametrize(
    ("primary", "replica"),
    [(_PRIMARY, "sqlite+aiosqlite:///r.sqlite3"), ("sqlite+aiosqlite:///p.sqlite3", _REPLICA)],
)
def test_a_read_replica_is_postgresql_beside_a_postgresql_primary(
    primary: str, replica: str
) -> None:
    env = {
        "CITYBOT_DATABASE_URL": primary,
        "CITYBOT_DATABASE_REPLICA_URL": replica,
        "CITYBOT_SESSION_SECRET": "s",
    }
    with pytest.raises(ConfigError, match="CITYBOT_DATABASE_REPLICA_URL"):
        Settings.from_env(env)


def test_the_ussd_variables_are_read() -> None:
    env = {
        "CITYBOT_SESSION_SECRET": "x",
        "USSD_SERVICE_CODE": "*120*311#",
        "USSD_WEBHOOK_SECRET": "ussd-secret-0123456789",
        "USSD_ALLOWED_IPS": "196.201.214.0/24, 2001:db8::1",
    }
    s = Settings.from_env(env)
    assert (s.ussd_service_code, s.ussd_webhook_secret) == ("*120*311#", "ussd-secret-0123456789")
    assert [str(n) for n in s.ussd_allowed_ips] == ["196.201.214.0/24", "2001:db8::1/128"]
    # The secret is a credential: never in a printed Settings.
    assert "ussd-secret-0123456789" not in repr(s)
