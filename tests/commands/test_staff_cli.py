"""``citybot staff add|list|disable|token`` and ``citybot audit verify``, run for real on a
SQLite file; ``citybot serve`` saying how to create the first admin."""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
from pathlib import Path

import pyotp
import pytest

from bot.cli import main
from bot.commands import audit_verify
from staff.authentication import StaffAuthentication
from staff.identity import StaffIdentity
from storage.session import create_engine, create_sessionmaker
from tests.web.serve_process import ServeProcess


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "staff.sqlite3"
    monkeypatch.setenv("CITYBOT_DATABASE_URL", f"sqlite:///{path}")
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:  # argparse's own refusals
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


async def _sign_in(path: Path, email: str, password: str, code: str | None = None) -> object:
    engine = create_engine(f"sqlite:///{path}")
    try:
        auth = StaffAuthentication(create_sessionmaker(engine))
        return await auth.sign_in(email, password, code, address="127.0.0.1")
    finally:
        await engine.dispose()


def test_add_list_disable_and_sign_in_with_what_was_printed(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(
        capsys, "staff", "add", "Sipho@City.gov", "--role", "agent", "supervisor",
        "--name", "Sipho Dlamini", "--ward", "115", "--ward", "116", "--language", "zu", "en",
    )  # fmt: skip
    assert code == 0
    assert "created staff account sipho@city.gov (agent, supervisor) in ward(s) 115, 116" in out
    assert "otpauth://" not in out
    password = re.search(r"one-time password .*: (\S+)$", out, re.M).group(1)  # type: ignore[union-attr]
    identity = asyncio.run(_sign_in(database, "sipho@city.gov", password))
    assert isinstance(identity, StaffIdentity) and identity.wards == frozenset({"115", "116"})

    code, out, _ = _run(capsys, "staff", "add", "admin@city.gov", "--role", "admin")
    assert code == 0
    uri = re.search(r"^(otpauth://totp/\S+)$", out, re.M).group(1)  # type: ignore[union-attr]
    password = re.search(r"one-time password .*: (\S+)$", out, re.M).group(1)  # type: ignore[union-attr]
    totp = pyotp.parse_uri(uri)
    assert isinstance(totp, pyotp.TOTP)
    identity = asyncio.run(_sign_in(database, "admin@city.gov", password, totp.now()))
    assert isinstance(identity, StaffIdentity)

    code, out, _ = _run(capsys, "staff", "list")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == [
        "email", "name", "roles", "wards", "languages", "status", "totp",
    ]  # fmt: skip
    assert lines[1].split() == ["admin@city.gov", "-", "admin", "all", "-", "active", "yes"]
    assert lines[2].split()[0] == "sipho@city.gov" and "Sipho Dlamini" in lines[2]
    assert lines[2].split()[-5:] == ["agent,supervisor", "115,116", "en,zu", "active", "no"]

    code, out, _ = _run(capsys, "staff", "disable", "SIPHO@city.gov")
    assert code == 0 and "disabled sipho@city.gov" in out
    assert "disabled" in _run(capsys, "staff", "list")[1].splitlines()[2]

    code, out, _ = _run(capsys, "audit", "verify")
    assert code == 0 and out.startswith("audit log intact: ")
    rows = sqlite3.connect(database).execute("SELECT actor, action FROM audit_log").fetchall()
    assert ("cli", "account.create") in rows and ("cli", "account.disable") in rows
    assert ("staff:2", "sign_in") in rows


def test_token_is_printed_once_and_works(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(capsys, "staff", "add", "etl@city.gov", "--role", "analyst", "agent")[0] == 0
    code, out, _ = _run(
        capsys, "staff", "token", "etl@city.gov", "--role", "analyst", "--days", "7"
    )
    assert code == 0 and "(analyst), valid until" in out
    token = out.splitlines()[-1]
    assert token.startswith("cbt_")
    hashes = sqlite3.connect(database).execute("SELECT token_hash FROM staff_tokens").fetchall()
    assert hashes and token not in str(hashes)

    async def check() -> object:
        engine = create_engine(f"sqlite:///{database}")
        try:
            return await StaffAuthentication(create_sessionmaker(engine)).verify_token(
                token, address="10.0.0.1"
            )
        finally:
            await engine.dispose()

    identity = asyncio.run(check())
    assert isinstance(identity, StaffIdentity) and {r.value for r in identity.roles} == {"analyst"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("staff", "add", "not-an-email", "--role", "agent"), "not an email address"),
        (("staff", "add", "a@city.gov", "--role", "root"), "invalid choice: 'root'"),
        (("staff", "add", "a@city.gov"), "--role"),
        (("staff", "add", "a@city.gov", "--role", "agent", "--ward", "../x"), "not a ward"),
        (("staff", "add", "a@city.gov", "--role", "agent", "--name", "x" * 300), "longer than 200"),
        (("staff", "add", "a" * 300 + "@city.gov", "--role", "agent"), "longer than 254"),
        (("staff", "token", "a@city.gov", "--role", "agent", "--days", "soon"), "invalid int"),
        (("staff", "token", "a@city.gov", "--role", "agent", "--days", "9999"), "1 to 365 days"),
        (("staff", "token", "a@city.gov", "--role", "admin"), "does not hold admin"),
        (("staff", "frobnicate"), "invalid choice"),
        (("audit",), "required"),
    ],
)
def test_bad_input_exits_2_with_a_reason(
    database: Path, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    if argv[1:2] == ("token",):
        assert _run(capsys, "staff", "add", "a@city.gov", "--role", "agent")[0] == 0
    code, _, err = _run(capsys, *argv)
    assert code == 2
    assert message in err and "Traceback" not in err


def test_unknown_and_duplicate_accounts_exit_1(
    database: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(capsys, "staff", "add", "a@city.gov", "--role", "agent")[0] == 0
    code, _, err = _run(capsys, "staff", "add", "A@CITY.GOV", "--role", "admin")
    assert code == 1 and "already a staff account for a@city.gov" in err
    code, _, err = _run(capsys, "staff", "disable", "b@city.gov")
    assert code == 1 and "no staff account for b@city.gov" in err
    assert _run(capsys, "staff", "token", "b@city.gov", "--role", "agent")[0] == 1


def test_audit_verify_names_the_first_tampered_row(
    database: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(3):
        assert _run(capsys, "staff", "add", f"u{n}@city.gov", "--role", "agent")[0] == 0
    with sqlite3.connect(database) as db:
        # Residents' turns append rows with no hash: verify seals them first, a few at a time.
        db.executemany(
            "INSERT INTO audit_log (at, actor, action, subject, details) "
            "VALUES ('2026-03-02 09:00:00.000000', ?, 'opt_out', ?, '{}')",
            [(f"resident:{n}", f"resident:{n}") for n in range(5)],
        )
    monkeypatch.setattr(audit_verify, "_SEAL_PER_TRANSACTION", 2)
    code, out, _ = _run(capsys, "audit", "verify")
    assert code == 0 and "8 rows chained (5 sealed now)" in out
    with sqlite3.connect(database) as db:
        row_id = db.execute("SELECT id FROM audit_log WHERE seq = 2").fetchone()[0]
        db.execute("UPDATE audit_log SET actor = 'staff:99' WHERE id = ?", (row_id,))
    code, out, _ = _run(capsys, "audit", "verify")
    assert code == 1
    assert (
        f"audit log BROKEN at row id {row_id} (place 2): it was changed after it was sealed" in out
    )
    assert "the 1 rows before it hold" in out


def test_a_database_that_cannot_be_reached_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITYBOT_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/citybot")
    for argv in (("staff", "list"), ("audit", "verify")):
        code, _, err = _run(capsys, *argv)
        assert code == 1 and "cannot use the database" in err and "Traceback" not in err


def _output_after_stop(serve: ServeProcess) -> str:
    assert serve.process is not None and serve.process.stdout is not None
    serve.process.send_signal(signal.SIGTERM)
    rest = serve.process.stdout.read()
    assert serve.stop() == 0
    return rest


def test_serve_says_how_to_create_the_first_admin_until_there_is_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    serve = ServeProcess(tmp_path)
    serve.start()
    assert serve.first_line.startswith("citybot is running")
    assert "citybot staff add you@city.gov --role admin" in _output_after_stop(serve)

    monkeypatch.setenv("CITYBOT_DATABASE_URL", serve.env["CITYBOT_DATABASE_URL"])
    assert _run(capsys, "staff", "add", "admin@city.gov", "--role", "admin")[0] == 0
    serve.start()
    assert "staff add" not in _output_after_stop(serve)
