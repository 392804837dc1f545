"""Retention: message texts are forgotten after the retention period, personal answers after
their form's; the housekeeping worker runs it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.services import Services
from bot.workers import WORKERS
from conversations.ussd_sessions import KEEP as USSD_KEEP
from conversations.ussd_sessions import RESUME_WITHIN
from storage.models import MessageLog, Resident, ResidentNotification, Submission, UssdSession
from storage.types import utc_now


async def test_old_message_texts_are_cleared_and_recent_ones_kept(services: Services) -> None:
    old = utc_now() - timedelta(days=services.settings.message_retention_days + 1)
    async with services.session_factory() as db, db.begin():
        db.add(MessageLog(direction="in", channel="sms", text="old words", created_at=old))
        db.add(MessageLog(direction="in", channel="sms", text="new words", created_at=utc_now()))
    purged = await services.retention.purge_expired()
    assert purged["message_texts"] == 1
    async with services.session_factory() as db:
        texts = (await db.scalars(select(MessageLog.text).order_by(MessageLog.id))).all()
    assert texts == [None, "new words"]
    assert (await services.retention.purge_expired())["message_texts"] == 0


def test_housekeeping_is_a_worker() -> None:
    assert "housekeeping" in WORKERS


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
    purged = await services.retention.purge_expired()
    assert purged["personal_answers"] == 1 and purged["notification_texts"] == 1
    async with services.session_factory() as db:
        rows = {s.reference: s for s in (await db.scalars(select(Submission))).all()}
        text = await db.scalar(select(ResidentNotification.text))
    assert rows["CT-OLD111"].answers == {"danger": True}
    assert rows["CT-OLD111"].ward == "94" and rows["CT-OLD111"].personal_removed_at is not None
    assert rows["CT-NEW222"].answers == answers and rows["CT-NEW222"].personal_removed_at is None
    assert text == ""
    again = await services.retention.purge_expired()
    assert again["personal_answers"] == 0 and again["notification_texts"] == 0


async def test_ussd_sessions_go_once_no_resume_or_retry_can_use_them(services: Services) -> None:
    """Where a phone stood in its USSD dialogue is kept for the ten-minute resume, then goes."""
    now = utc_now()
    async with services.session_factory() as db, db.begin():
        for phone, at in (
            ("+27831230001", now - USSD_KEEP - timedelta(minutes=1)),
            ("+27831230002", now - RESUME_WITHIN),
            ("+27831230003", now),
        ):
            db.add(
                UssdSession(
                    phone=phone,
                    session_id="ATUid_" + phone,
                    consumed=2,
                    screen={"mode": "form", "locale": "en", "text": "Street?"},
                    answer="CON Street?",
                    updated_at=at,
                )
            )
    purged = await services.retention.purge_expired()
    assert purged["ussd_sessions"] == 1
    async with services.session_factory() as db:
        kept = (await db.scalars(select(UssdSession.phone).order_by(UssdSession.phone))).all()
    assert kept == ["+27831230002", "+27831230003"]
    assert (await services.retention.purge_expired())["ussd_sessions"] == 0
