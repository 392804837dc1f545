"""deploy/systemd/: the units pass ``systemd-analyze verify`` (and its security review), and the
example environment file lists exactly the variables docs/configuration.md documents."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD = ROOT / "deploy" / "systemd"
UNITS = ("citybot-serve.service", "citybot-worker.service")
INSTALLED = "/opt/citybot/venv/bin/citybot"
CITYBOT = Path(sys.executable).with_name("citybot")


def _systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        message = "systemd-analyze is not installed (Debian: apt-get install systemd)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture
def units(tmp_path: Path) -> list[Path]:
    """The units as shipped, with ExecStart pointing at this venv's citybot: verify checks
    that the command exists, and /opt/citybot is where an install puts it, not a test."""
    copies = []
    for name in UNITS:
        text = (SYSTEMD / name).read_text()
        assert f"ExecStart={INSTALLED} " in text
        copy = tmp_path / name
        copy.write_text(text.replace(INSTALLED, str(CITYBOT)))
        copies.append(copy)
    return copies


def test_units_verify_without_a_warning(units: list[Path]) -> None:
    analyze = _systemd_analyze()
    done = subprocess.run(
        [analyze, "verify", "--man=no", *map(str, units)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=units[0].parent,
    )
    # verify exits 0 for an unknown key or a bad value ("ignoring"): any output is a mistake.
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr


def test_units_are_hardened(units: list[Path]) -> None:
    analyze = _systemd_analyze()
    for unit in units:
        # systemd's own exposure score, 0 (locked down) to 10; the threshold is in tenths.
        done = subprocess.run(
            [analyze, "security", "--offline=true", "--threshold=20", str(unit)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=unit.parent,
        )
        assert done.returncode == 0, done.stdout[-600:] + done.stderr
        text = unit.read_text()
        for setting in (
            "User=citybot",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "PrivateTmp=yes",
            "Restart=on-failure",
            "RestartPreventExitStatus=2",
            "EnvironmentFile=/etc/citybot/citybot.env",
        ):
            assert setting in text, (unit.name, setting)
        # ProtectSystem=strict: the only place it may write is its state directory.
        assert "StateDirectory=citybot" in text and "ReadWritePaths" not in text


def test_stop_timeout_outlasts_the_graceful_stop() -> None:
    from bot.commands.lifecycle import STOP_MARGIN
    from bot.config import Settings

    for name in UNITS:
        text = (SYSTEMD / name).read_text()
        stop = float(re.search(r"^TimeoutStopSec=(\d+)", text, re.M).group(1))  # type: ignore[union-attr]
        assert stop > Settings().shutdown_timeout + STOP_MARGIN


def _documented() -> set[str]:
    doc = (ROOT / "docs" / "configuration.md").read_text()
    return set(re.findall(r"^\| `([A-Z0-9_]+)` \|", doc, re.M))


def test_example_environment_lists_every_documented_variable() -> None:
    example = (SYSTEMD / "citybot.env.example").read_text()
    listed = re.findall(r"^#?([A-Z][A-Z0-9_]+)=", example, re.M)
    assert len(listed) == len(set(listed)), "a variable is listed twice"
    assert set(listed) == _documented()
    # Each one says what it means, in the comment just above it.
    for name in listed:
        assert re.search(rf"^# {name}: \S", example, re.M), name
    # What is set must be accepted as it stands (a secret left empty counts as unset).
    from bot.config import Settings

    values = dict(re.findall(r"^([A-Z][A-Z0-9_]+)=(.*)$", example, re.M))
    assert {"CITYBOT_DATABASE_URL", "CITYBOT_REDIS_URL", "CITYBOT_PUBLIC_URL"} <= set(values)
    assert Settings.from_env({**values, "CITYBOT_SESSION_SECRET": "x"}).redis_url
