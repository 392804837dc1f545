"""Whole conversations through the web chat API, as a browser has them.

The turn loop's own tests cover its rules turn by turn; these check that the same conversations
work end to end over HTTP: cookie, JSON, turn loop, database, JSON back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.services import Services
from forms_runtime.loader import standard_forms
from storage.models import MessageLog, Resident, Submission, SubmissionOutbox
from storage.types import utc_now
from tests.web.webchat_residents import WebResident

FORMS = standard_forms()


@pytest.mark.parametrize("form_id", sorted(FORMS))
async def test_every_standard_form_end_to_end(
    form_id: str, resident_factory: Callable[..., WebResident], services: Services
) -> None:
    form = FORMS[form_id]
    resident = resident_factory(seed=len(form_id))
    await resident.choose_service(form_id, form.keywords["en"][0])
    done = await resident.finish(consent=True)
    reference = done["reference"]
    assert reference.startswith("CT-")
    texts = [m["text"] for m in done["messages"]]
    # The confirmation with the reference, then (a report somewhere the resident does not
    # follow yet) the offer of news for that area.
    confirmation = next(t for t in texts if reference in t)
    if form.aggregate_steps:
        # Optional questions follow the report (the transport form's gender and disability).
        assert texts[-1].startswith("Optional") and texts.index(confirmation) < len(texts) - 1
    else:
        assert texts[-1] == confirmation or texts[-1].startswith("Do you want news for this area")
    async with services.session_factory() as db:
        submission = await db.scalar(select(Submission).where(Submission.reference == reference))
        assert submission is not None
        assert (submission.form_id, submission.status, submission.channel) == (
            form_id,
            "pending",
            "webchat",
        )
        outbox = await db.scalar(
            select(SubmissionOutbox).where(SubmissionOutbox.submission_id == submission.id)
        )
        assert outbox is not None and outbox.done_at is None


async def test_progress_is_shown_on_questions(resident_factory: Callable[..., WebResident]) -> None:
    resident = resident_factory()
    await resident.choose_service("pothole", "pothole")
    await resident.answer()  # consent
    ask = resident.asked()
    assert ask["progress"]["position"] == 1 and ask["progress"]["total"] >= 3
    assert ask["input"] == "location"


async def test_the_picker_reads_a_residents_own_words(
    resident_factory: Callable[..., WebResident],
) -> None:
    resident = resident_factory()
    await resident.say(text="there's water pouring out of the road")
    offered = [o["id"] for o in resident.asked()["options"]]
    assert offered[0] == "water_leak"
    menu = await resident.say(text="menu")
    ids = {o["id"] for m in menu["messages"] if m["type"] == "ask" for o in m["options"]}
    assert ids == set(FORMS)


async def test_switching_language_mid_form(resident_factory: Callable[..., WebResident]) -> None:
    resident = resident_factory()
    await resident.choose_service("pothole", "pothole")
    await resident.answer()  # consent
    english = resident.asked()["text"]
    switched = await resident.say(text="language zu")
    assert switched["locale"] == "zu"
    assert resident.asked()["step_id"] == "location"
    assert resident.asked()["text"] != english
    done = await resident.finish()
    assert done["locale"] == "zu" and done["reference"]


async def test_declining_consent_skips_personal_questions(
    resident_factory: Callable[..., WebResident], services: Services
) -> None:
    resident = resident_factory(seed=3)
    await resident.choose_service("pothole", "pothole")
    asked: list[str] = []
    for _ in range(30):
        payload = await resident.answer(consent=False)
        asked += [m["step_id"] for m in payload["messages"] if m["type"] == "ask"]
        if payload.get("reference"):
            break
    personal = {s.id for s in FORMS["pothole"].steps if s.personal}
    assert personal and not personal & set(asked)
    async with services.session_factory() as db:
        resident_row = await db.scalar(select(Resident))
        assert resident_row is not None and resident_row.consent_declined_at is not None


async def test_delete_my_data(
    resident_factory: Callable[..., WebResident], services: Services
) -> None:
    resident = resident_factory(seed=5)
    await resident.choose_service("pothole", "pothole")
    await resident.finish(consent=True)
    await resident.say(text="delete my data")
    assert resident.asked()["input"] == "yes_no"
    done = await resident.say(option_id="yes")
    assert "deleted" in done["messages"][0]["text"].lower()
    async with services.session_factory() as db:
        row = await db.scalar(select(Resident))
        assert row is not None and row.erased_at is not None
        texts = (
            await db.scalars(select(MessageLog.text).where(MessageLog.text.is_not(None)))
        ).all()
        submission = await db.scalar(select(Submission))
    # Only the confirmation of the erasure itself (and its request) may remain as text.
    assert all("pothole" not in (t or "").lower() for t in texts)
    assert submission is not None and "phone" not in submission.answers


async def test_an_idle_form_is_offered_to_continue(
    resident_factory: Callable[..., WebResident], services: Services
) -> None:
    resident = resident_factory(seed=7)
    await resident.choose_service("pothole", "pothole")
    await resident.answer()  # consent
    await resident.answer()  # the location
    where = resident.asked()["step_id"]
    later = utc_now() + timedelta(hours=25)
    services.turn_loop.clock = lambda: later  # the resident comes back the next day
    back = await resident.say(text="hello")
    offer = resident.asked()
    assert offer["step_id"] == "resume", back
    assert {o["id"] for o in offer["options"]} == {"continue", "restart"}
    await resident.say(option_id="continue")
    assert resident.asked()["step_id"] == where
    assert (await resident.finish())["reference"]


async def test_an_idle_form_can_be_started_over(
    resident_factory: Callable[..., WebResident], services: Services
) -> None:
    resident = resident_factory(seed=8)
    await resident.choose_service("streetlight", "streetlight")
    await resident.answer()
    later = utc_now() + timedelta(hours=30)
    services.turn_loop.clock = lambda: later
    await resident.say(text="hi")
    assert resident.asked()["step_id"] == "resume"
    await resident.say(option_id="restart")
    assert resident.asked()["step_id"] == "service"
