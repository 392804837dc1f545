"""``citybot demo seed`` and ``demo clear`` on the embedded default: demo requests across the real
wards and settlements, published as demo, and gone again after a clear."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.cli import main
from storage.models import AuditLog, Submission, TrackedRequest, open_data_rollup
from storage.session import create_engine, create_sessionmaker


async def _counts(url: str) -> tuple[int, int, int, int, int]:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            demo = await session.scalar(
                select(func.count()).select_from(Submission).where(Submission.demo)
            )
            wards = await session.scalar(select(func.count(func.distinct(Submission.ward))))
            tracked = await session.scalar(select(func.count()).select_from(TrackedRequest))
            rolled = await session.scalar(select(func.count()).select_from(open_data_rollup))
            audited = await session.scalar(
                select(func.count()).select_from(AuditLog).where(AuditLog.action.like("demo.%"))
            )
    finally:
        await engine.dispose()
    return demo or 0, wards or 0, tracked or 0, rolled or 0, audited or 0


def test_seed_then_clear(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    url = f"sqlite+aiosqlite:///{tmp_path}/citybot.sqlite3"
    monkeypatch.setenv("CITYBOT_DATABASE_URL", url)
    monkeypatch.setenv("CITYBOT_SESSION_SECRET", "test")
    assert main(["demo", "seed", "--requests", "1500", "--days", "30"]) == 0
    assert "1500 demo requests written" in capsys.readouterr().out
    demo, wards, tracked, rolled, audited = asyncio.run(_counts(url))
    assert demo == 1500 and wards > 60 and 1200 < tracked <= 1500 and rolled > 0
    assert audited == 1
    assert main(["demo", "clear"]) == 0
    assert "1500 demo requests removed" in capsys.readouterr().out
    demo, _, tracked, rolled, audited = asyncio.run(_counts(url))
    assert (demo, tracked, rolled, audited) == (0, 0, 0, 2)
