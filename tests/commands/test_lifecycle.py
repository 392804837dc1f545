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


def test_serve_refuses_no_replies_without_redis(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Without Redis a reply lives only in the web process: leaving it to workers would lose it.
    monkeypatch.delenv("CITYBOT_REDIS_URL", raising=False)
    assert serve.run(argparse.Namespace(no_replies=True)) == 2
    err = capsys.readouterr().err
    assert "--no-replies" in err and "CITYBOT_REDIS_URL" in err


@pytest.mark.parametrize("only", ["nonsense", "replies,nonsense", " , "])
def test_worker_only_names_known_workers(
    only: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert worker.run(argparse.Namespace(only=only)) == 2
    err = capsys.readouterr().err
    assert err.startswith("citybot worker: no worker named ")
    assert "replies" in err.split("the workers are", 1)[1]
    assert "nonsense" not in err.split("the workers are", 1)[1]
