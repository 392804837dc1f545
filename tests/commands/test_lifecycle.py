"""A command with a wrong setting says which in one line and gets no Settings (exit 2)."""

from __future__ import annotations

import argparse

import pytest

from bot.commands import serve, worker
from bot.commands.lifecycle import settings_or_none


def test_a_bad_setting_is_one_line_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITYBOT_PORT", "eighty")
    assert settings_or_none("citybot worker") is None
    err = capsys.readouterr().err
    assert err.startswith("citybot worker: ") and "CITYBOT_PORT" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize("command", [serve, worker])
def test_serve_and_worker_exit_2_on_a_bad_setting(
    command, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CITYBOT_LOG_LEVEL", "LOUD")
    assert command.run(argparse.Namespace()) == 2
    assert "CITYBOT_LOG_LEVEL" in capsys.readouterr().err
