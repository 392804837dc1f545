"""The housekeeping worker forgets message texts after the retention period, and is registered."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.app import registered_workers
from bot.db.models import MessageLog, Resident, Submission
from bot.db.models_notifications import ResidentNotification
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


async def test_personal_answers_go_when_the_forms_retention_runs_out(services: Services) -> None:
    form = services.turn_loop.forms["pothole"]
    personal = {s.id for s in form.steps if s.personal}
    assert personal, "the pothole form collects a phone number for a call back"
    answers = {"danger": True, **{step: "+27831234567" for step in personal}}
    expired = utc_now() - timedelta(days=form.retention_days + 1)
    async with services.session_factory() as db, db.begin():
        resident = Resident(locale="en")
        db.add(resident)
        await db.flush()
        for reference, created in (("CT-OLD111", expired), ("CT-NEW222", utc_now())):
            db.add(
                Submission(
                    reference=reference,
                    resident_id=resident.id,
                    form_id="pothole",
                    form_version=form.version,
                    service_code=form.service_code,
                    locale="en",
                    answers=answers,
                    ward="94",
                    created_at=created,
                )
            )
        db.add(
            ResidentNotification(
                resident_id=resident.id,
                channel="sms",
                locale="en",
                purpose="status_update",
                reference="CT-OLD111",
                text="Report CT-OLD111 is closed",
                state="failed",
                created_at=utc_now() - timedelta(days=services.settings.message_retention_days + 1),
            )
        )
    purged = await purge_expired(services)
    assert purged["personal_answers"] == 1 and purged["notification_texts"] == 1
    async with services.session_factory() as db:
        rows = {s.reference: s for s in (await db.scalars(select(Submission))).all()}
        text = await db.scalar(select(ResidentNotification.text))
    assert rows["CT-OLD111"].answers == {"danger": True}
    assert rows["CT-OLD111"].ward == "94" and rows["CT-OLD111"].personal_removed_at is not None
    assert rows["CT-NEW222"].answers == answers and rows["CT-NEW222"].personal_removed_at is None
    assert text == ""
    again = await purge_expired(services)
    assert again["personal_answers"] == 0 and again["notification_texts"] == 0
