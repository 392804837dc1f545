"""serve and worker run on uvloop where it is installed, and on asyncio's loop when told to."""

from __future__ import annotations

import asyncio

import pytest

from bot import event_loop


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_uvloop_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("uvloop", reason="uvloop is not installed on this platform")
    monkeypatch.delenv("CITYBOT_EVENT_LOOP", raising=False)
    assert event_loop.run(_loop_module()).startswith("uvloop")


@pytest.mark.parametrize("value", ["asyncio", " ASYNCIO "])
def test_asyncio_when_asked(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CITYBOT_EVENT_LOOP", value)
    assert event_loop.loop_factory() is None
    assert event_loop.run(_loop_module()).startswith("asyncio")
