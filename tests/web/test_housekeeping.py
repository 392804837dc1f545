"""The housekeeping worker forgets message texts after the retention period, and is registered."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.app import registered_workers
from bot.db.models import MessageLog
from bot.db.types import utc_now
from bot.housekeeping import purge_expired, run_housekeeping
from bot.services import Services


async def test_old_message_texts_are_cleared_and_recent_ones_kept(services: Services) -> None:
    old = utc_now() - timedelta(days=services.settings.message_retention_days + 1)
    async with services.session_factory() as db, db.begin():
        db.add(MessageLog(direction="in", channel="sms", text="old words", created_at=old))
        db.add(MessageLog(direction="in", channel="sms", text="new words", created_at=utc_now()))
    purged = await purge_expired(services)
    assert purged["message_texts"] == 1
    async with services.session_factory() as db:
        texts = (await db.scalars(select(MessageLog.text).order_by(MessageLog.id))).all()
    assert texts == [None, "new words"]
    assert (await purge_expired(services))["message_texts"] == 0


def test_housekeeping_is_a_registered_worker() -> None:
    assert registered_workers()["housekeeping"] is run_housekeeping
