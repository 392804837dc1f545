"""``citybot check`` and the start-up validation of ``serve``, ``worker`` and ``db upgrade``,
run as the operator runs them: the real command in a subprocess, against the fake Telegram and
Twilio servers, a real PostgreSQL and Redis, and settings that are wrong in the ways operators
get them wrong."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from storage.migrate import pending_migrations
from tests.city.test_operator_backend import open311_server
from tests.fakes.africastalking_api import API_HOST, BALANCE, FakeAfricasTalking
from tests.fakes.africastalking_api import API_KEY as AT_KEY
from tests.fakes.africastalking_api import USERNAME as AT_USERNAME
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.storage.databases import postgres_database
from tests.web.serve_process import free_port

CITYBOT = Path(sys.executable).with_name("citybot")
SECRET = "never-printed-" + uuid.uuid4().hex


async def citybot(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 60
) -> tuple[int, str, str]:
    """Run ``citybot ARGS`` with only these citybot variables set; (status, stdout, stderr)."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            ("CITYBOT_", "TELEGRAM_", "TWILIO_", "OPEN311_", "USSD_", "AFRICASTALKING_")
        )
    }
    process = await asyncio.create_subprocess_exec(
        str(CITYBOT),
        *args,
        cwd=cwd,
        env={**clean, "CITYBOT_LOG_LEVEL": "WARNING", **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def lines_of(out: str) -> dict[str, str]:
    """``citybot check``'s lines by what each checked."""
    found: dict[str, str] = {}
    for line in out.splitlines():
        outcome, what, _ = line.split(maxsplit=2)
        found[what] = line
        assert outcome in ("ok", "warn", "FAIL"), line
    return found


async def test_check_passes_against_the_providers_database_and_redis(
    tmp_path: Path, redis_url: str
) -> None:
    async with postgres_database() as database, FakeTelegram() as tg, FakeTwilio() as twilio:
        env = {
            "CITYBOT_DATABASE_URL": database,
            "CITYBOT_REDIS_URL": redis_url,
            "CITYBOT_SESSION_SECRET": SECRET,
            "CITYBOT_SESSION_SECRET_OLD": "old-" + SECRET,
            "CITYBOT_MEDIA_LINK_KEY": "link-" + SECRET,
            "CITYBOT_MEDIA_LINK_KEY_OLD": "old-link-" + SECRET + ",older-link-" + SECRET,
            "CITYBOT_PUBLIC_URL": "https://bot.city.example",
            "TELEGRAM_BOT_TOKEN": "123:ABC",
            "TELEGRAM_WEBHOOK_SECRET": "hook-secret",
            "TELEGRAM_API_BASE_URL": tg.url,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_SMS_FROM": "+27211234567",
            "TWILIO_WHATSAPP_FROM": "+27211234568",
            "TWILIO_API_BASE_URL": twilio.url,
            # The city: a port nothing listens on, with its own endpoint (so a failure).
            "OPEN311_ENDPOINT": f"http://127.0.0.1:{free_port()}/open311/v2",
        }
        status, out, err = await citybot("check", env=env, cwd=tmp_path)
        found = lines_of(out)
        assert found["settings"].startswith("ok")
        assert found["database"].startswith("ok") and "schema up to date" in found["database"]
        assert SECRET not in out and "ABC" not in out  # no secret, no token
        # The keys, and how many old ones a rotation still accepts, never their values.
        assert found["keys"].startswith("ok") and "CITYBOT_MEDIA_LINK_KEY set" in found["keys"]
        assert "1 old session secret(s)" in found["keys"] and "2 old link key(s)" in found["keys"]
        assert found["telegram"].startswith("ok") and "@" in found["telegram"]
        assert len(tg.calls("getMe")) == 1
        # SMS and WhatsApp share the account: asked once, read-only.
        assert found["sms"].startswith("ok") and "active" in found["sms"]
        assert "whatsapp" not in found
        assert [r.method for r in twilio.requests] == ["GET"]
        assert twilio.messages() == []
        assert found["city"].startswith("FAIL") and "OPEN311_ENDPOINT" in found["city"]
        assert status == 1, out + err  # the city failed

        # A wrong Twilio token is told as Twilio's error, with what to check. No link key of its
        # own: said, with how to get one without ending the links already made.
        status, out, _ = await citybot(
            "check",
            env={
                **env,
                "TWILIO_AUTH_TOKEN": "wrong",
                "OPEN311_ENDPOINT": "",
                "CITYBOT_MEDIA_LINK_KEY": "",
                "CITYBOT_MEDIA_LINK_KEY_OLD": "",
            },
            cwd=tmp_path,
        )
        found = lines_of(out)
        assert (
            found["keys"].startswith("warn")
            and "CITYBOT_MEDIA_LINK_KEY_OLD to the" in found["keys"]
        )
        assert found["sms"].startswith("FAIL")
        assert "20003" in found["sms"] and "TWILIO_AUTH_TOKEN" in found["sms"]
        assert status == 1


async def test_check_asks_africas_talking_for_the_ussd_follow_up_sms(tmp_path: Path) -> None:
    """USSD with Africa's Talking SMS: one read-only call through the SDK (its application
    data), to the real host name through the proxy requests is given; a wrong key is a FAIL."""
    async with FakeAfricasTalking(tmp_path) as at:
        env = {
            "CITYBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/citybot.sqlite3",
            "USSD_SERVICE_CODE": "*120*311#",
            "USSD_WEBHOOK_SECRET": "ussd-secret-for-check-01",
            "AFRICASTALKING_USERNAME": AT_USERNAME,
            "AFRICASTALKING_API_KEY": AT_KEY,
            "NO_PROXY": "",
            "no_proxy": "",
            **at.environ(),
        }
        status, out, err = await citybot("check", env=env, cwd=tmp_path)
        found = lines_of(out)
        assert found["ussd"].startswith("ok") and BALANCE in found["ussd"], out + err
        assert AT_KEY not in out
        assert [(r.method, r.path) for r in at.requests] == [("GET", "/version1/user")]
        assert at.requests[0].form["username"] == AT_USERNAME and at.sms() == []
        assert at.proxy.tunnels == [(API_HOST, 443)]

        status, out, _ = await citybot(
            "check", env={**env, "AFRICASTALKING_API_KEY": "wrong"}, cwd=tmp_path
        )
        found = lines_of(out)
        assert found["ussd"].startswith("FAIL") and "AFRICASTALKING_API_KEY" in found["ussd"]
        assert status == 1


async def test_check_asks_each_operators_back_end_for_its_services(tmp_path: Path) -> None:
    """Issue 18's second back end: one read of its service list, which must offer the services
    sent there; one that does not answer, or does not offer them, is a FAIL with the fix."""
    async with open311_server(tmp_path / "operator", "operator-key") as (operator_url, _db):
        env = {
            "CITYBOT_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/citybot.sqlite3",
            "OPEN311_SERVICE_ENDPOINTS": f"TRANSPORT-RELIABILITY={operator_url}",
            "OPEN311_SERVICE_API_KEYS": "TRANSPORT-RELIABILITY=operator-key",
        }
        status, out, err = await citybot("check", env=env, cwd=tmp_path)
        found = lines_of(out)
        assert found["operator"].startswith("ok"), out + err
        assert operator_url in found["operator"] and "TRANSPORT-RELIABILITY" in found["operator"]
        assert "operator-key" not in out

        # A service code the operator does not offer (here a typo): its reports would fail.
        typo = {**env, "OPEN311_SERVICE_ENDPOINTS": f"TRANSPORT_RELIABILITY={operator_url}"}
        status, out, _ = await citybot("check", env=typo, cwd=tmp_path)
        found = lines_of(out)
        assert found["operator"].startswith("FAIL") and "TRANSPORT_RELIABILITY" in found["operator"]
        assert status == 1

    nobody = f"http://127.0.0.1:{free_port()}/open311/v2"
    down = {**env, "OPEN311_SERVICE_ENDPOINTS": f"TRANSPORT-RELIABILITY={nobody}"}
    status, out, _ = await citybot("check", env=down, cwd=tmp_path)
    found = lines_of(out)
    assert found["operator"].startswith("FAIL") and "OPEN311_SERVICE_ENDPOINTS" in found["operator"]
    assert status == 1


async def test_check_names_each_broken_part_with_its_fix(tmp_path: Path, postgres_url: str) -> None:
    missing = make_url(postgres_url).set(database=f"nope_{uuid.uuid4().hex[:8]}")
    env = {
        "CITYBOT_DATABASE_URL": missing.render_as_string(hide_password=False),
        "CITYBOT_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
        "TELEGRAM_BOT_TOKEN": "123:ABC",
        "TELEGRAM_API_BASE_URL": f"http://127.0.0.1:{free_port()}",
    }
    status, out, err = await citybot("check", env=env, cwd=tmp_path)
    assert status == 1 and "Traceback" not in out + err
    found = lines_of(out)
    assert "does not exist" in found["database"] and "createdb" in found["database"]
    assert found["redis"].startswith("FAIL") and "CITYBOT_REDIS_URL" in found["redis"]
    assert found["telegram"].startswith("FAIL")
    # The warnings for what would break silently: no shared secret, no webhook secret.
    assert found["secret"].startswith("warn") and "CITYBOT_SESSION_SECRET" in found["secret"]
    assert any("TELEGRAM_WEBHOOK_SECRET" in line for line in out.splitlines())


# Each mistake with another command, so every command is shown to validate (a subprocess each
# costs seconds); all of them go through the same ``Settings.from_env``.
@pytest.mark.parametrize(
    ("variable", "value", "said", "command"),
    [
        (
            "CITYBOT_DATABASE_URL",
            "postgres://citybot:pw@db/citybot",
            "postgresql+asyncpg://",
            ("serve", "--port", "0"),
        ),
        ("CITYBOT_REDIS_URL", "127.0.0.1:6379", "redis://127.0.0.1:6379", ("worker",)),
        ("CITYBOT_PUBLIC_URL", "bot.city.example", "https://bot.city.example", ("db", "upgrade")),
        ("OPEN311_ENDPOINT", "ftp://city.example/open311", "http", ("check",)),
    ],
)
async def test_a_wrong_setting_is_one_line_and_never_a_traceback(
    tmp_path: Path, variable: str, value: str, said: str, command: tuple[str, ...]
) -> None:
    status, out, err = await citybot(*command, env={variable: value}, cwd=tmp_path)
    if command == ("check",):
        assert status == 1 and out.startswith("FAIL settings") and variable in out
        assert out.count("\n") == 1 and said in out
    else:
        assert status == 2, (command, out, err)
        assert err.count("\n") == 1 and variable in err and said in err, err
        assert ":pw@" not in err  # a password is never repeated back


async def test_an_unreachable_database_is_said_as_that_never_as_cannot_listen(
    tmp_path: Path, postgres_url: str
) -> None:
    refused = make_url(postgres_url).set(port=free_port()).render_as_string(hide_password=False)
    missing = make_url(postgres_url).set(database=f"nope_{uuid.uuid4().hex[:8]}")
    cases = [
        (refused, "host and port", ("serve", "--port", "0")),
        (missing.render_as_string(hide_password=False), "createdb", ("worker",)),
        (refused, "host and port", ("db", "upgrade")),
    ]
    for url, fix, command in cases:
        env = {"CITYBOT_DATABASE_URL": url}
        if command != ("worker",):
            env["CITYBOT_SESSION_SECRET"] = "x" * 32
        status, _out, err = await citybot(*command, env=env, cwd=tmp_path)
        assert status == 2, (command, err)
        assert "Traceback" not in err and "cannot listen" not in err
        assert "cannot reach" in err and fix in err, err
        # The start-up warning for processes sharing PostgreSQL without a session secret.
        if command == ("worker",):
            assert '"level": "WARNING"' in err and "CITYBOT_SESSION_SECRET is not set" in err


async def test_db_upgrade_brings_a_new_database_up_to_date(tmp_path: Path) -> None:
    async with postgres_database(migrate=False) as database:
        env = {"CITYBOT_DATABASE_URL": database}
        assert await pending_migrations(database) > 0
        status, out, err = await citybot("db", "upgrade", env=env, cwd=tmp_path)
        assert status == 0, err
        assert "is up to date" in out
        assert await pending_migrations(database) == 0


async def test_version(tmp_path: Path) -> None:
    from bot.version import VERSION

    status, out, _ = await citybot("--version", env={}, cwd=tmp_path)
    assert status == 0 and out.strip() == f"citybot {VERSION}"
