"""Turn-loop scenarios on a real SQLite database with the standard forms."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.exc import OperationalError

from channels.types import InboundKind
from conversations.keys import ConversationKey
from conversations.turn import TurnResult
from forms_runtime.effects import Ask, Cancelled, GeoPoint, Inbound, Notice, Reject, Review
from forms_runtime.loader import standard_forms
from forms_runtime.sample_answers import sample_answer
from storage.models import (
    AuditLog,
    MessageLog,
    ProcessedMessage,
    Resident,
    ResidentAddress,
    ResidentNotification,
    Submission,
    SubmissionOutbox,
    Subscription,
    SupportTicket,
)
from tests.conversations.conftest import Harness


@pytest.fixture
def h(harness: Harness) -> Harness:
    return harness


def _asks(result: TurnResult) -> list[Ask]:
    return [e for e in result.effects if isinstance(e, Ask)]


def _texts(result: TurnResult) -> str:
    return " ".join(getattr(e, "message", "") or getattr(e, "prompt", "") for e in result.effects)


async def _count(h: Harness, model: type, *where: Any) -> int:
    async with h.sessionmaker() as session:
        return int(
            (
                await session.execute(select(func.count()).select_from(model).where(*where))
            ).scalar_one()
        )


async def _answer(h: Harness, result: TurnResult, rng: random.Random) -> TurnResult:
    if result.effects and not isinstance(result.effects[-1], Ask | Review):
        result = await _back_from_person(h)
    last = result.effects[-1]
    assert isinstance(last, Ask | Review), result.effects
    inbound: Inbound = sample_answer(last, rng, typos=False)
    if isinstance(last, Ask) and last.step_id == "consent":
        inbound = Inbound(text="yes")
    rejected = any(isinstance(e, Reject) for e in result.effects)
    if isinstance(last, Ask) and last.optional and rejected:
        inbound = Inbound(text="skip")  # a pattern the sample answers cannot meet
    if isinstance(last, Ask) and last.kind == "location":
        inbound = Inbound(location=GeoPoint(-34.0363, 18.6776))  # Khayelitsha, ward 94
    return await h.say(
        inbound.text,
        option_id=inbound.option_id,
        location=inbound.location,
        media=(inbound.media,) if inbound.media else (),
    )


async def _back_from_person(h: Harness) -> TurnResult:
    """A form answer handed the resident to a person (a live wire down): an agent hands them
    back, and the next message hears the form's next question again."""
    async with h.sessionmaker() as session, session.begin():
        closed = await session.execute(
            update(SupportTicket)
            .where(SupportTicket.state.in_(("waiting", "held")))
            .values(state="closed", outcome="handed_back")
        )
    assert getattr(closed, "rowcount", 0) == 1, "only a person explains a turn without a question"
    back = await h.say("thanks")
    assert "Back to your report" in _texts(back)
    return back


async def _complete(h: Harness, result: TurnResult, seed: int = 1) -> TurnResult:
    rng = random.Random(seed)
    for _ in range(40):
        if result.reference is not None:
            return result
        result = await _answer(h, result, rng)
    raise AssertionError(f"form did not finish: {result.effects}")


async def test_free_text_offers_the_water_leak_form_and_a_full_report_is_stored(h: Harness) -> None:
    first = await h.say("there's water pouring out of the road")
    assert isinstance(first.effects[0], Notice)  # the privacy notice on first contact
    offer = _asks(first)[-1]
    assert offer.options[0].id == "water_leak"
    result = await h.say("1")
    assert _asks(result)[-1].step_id == "consent"
    done = await _complete(h, result)
    assert done.reference is not None and done.reference.startswith("CT-")
    assert done.reference in _texts(done)
    async with h.sessionmaker() as session:
        submission = (await session.execute(select(Submission))).scalar_one()
        outbox = (await session.execute(select(SubmissionOutbox))).scalar_one()
    assert submission.form_id == "water_leak"
    assert submission.status == "pending"
    assert submission.reference == done.reference
    assert submission.ward == "94" and submission.lat == -34.0363
    assert outbox.submission_id == submission.id and outbox.done_at is None
    # After the report: a new message goes to the picker again, the form is closed.
    again = await h.say("potole")
    assert _asks(again)[-1].options[0].id == "pothole"


@pytest.mark.parametrize("form_id", sorted(standard_forms()))
async def test_every_standard_form_end_to_end(h: Harness, form_id: str) -> None:
    await h.say("menu")
    result = await h.say(option_id=form_id)
    done = await _complete(h, result, seed=len(form_id))
    assert await _count(h, Submission, Submission.form_id == form_id) == 1
    assert await _count(h, SubmissionOutbox) == 1
    assert done.reference is not None


async def test_menu_lists_every_service_and_a_miss_offers_the_general_form(h: Harness) -> None:
    menu = _asks(await h.say("menu"))[-1]
    assert {o.id for o in menu.options} == set(standard_forms())
    miss = _asks(await h.say("xyzzy qwerty"))[-1]
    assert [o.id for o in miss.options] == ["general_enquiry", "menu"]


async def test_language_switch_mid_form_re_asks_in_the_new_language(h: Harness) -> None:
    await h.say("pothole")
    asked = await h.say("1")
    await h.say("yes") if _asks(asked)[-1].step_id == "consent" else None
    switched = await h.say("isiZulu")
    assert "isiZulu" in _texts(switched)
    assert switched.locale == "zu"
    assert _asks(switched)[-1].step_id == "location"
    async with h.sessionmaker() as session:
        assert (await session.execute(select(Resident.locale))).scalar_one() == "zu"
    chooser = await h.say("language")
    assert [o.id for o in _asks(chooser)[-1].options] == ["en", "af", "zu", "xh"]
    back = await h.say(option_id="af")
    assert back.locale == "af"


async def test_consent_declined_skips_personal_steps(h: Harness) -> None:
    await h.say("pothole")
    consent = await h.say("1")
    assert _asks(consent)[-1].step_id == "consent"
    declined = await h.say("no")
    assert any(isinstance(e, Notice) for e in declined.effects)
    rng = random.Random(3)
    result = declined
    seen_steps = set()
    for _ in range(30):
        if result.reference:
            break
        last = result.effects[-1]
        if isinstance(last, Ask):
            seen_steps.add(last.step_id)
        result = await _answer(h, result, rng)
    personal = {s.id for s in standard_forms()["pothole"].steps if s.personal}
    assert result.reference and not (seen_steps & personal)
    async with h.sessionmaker() as session:
        resident = (await session.execute(select(Resident))).scalar_one()
    assert resident.consent_at is None and resident.consent_declined_at is not None


async def test_delete_my_data_erases_personal_data_and_keeps_counts(h: Harness) -> None:
    await h.say("pothole")
    await h.say("1")
    result = await h.say("yes")  # consent
    rng = random.Random(7)
    while result.reference is None:
        last = result.effects[-1]
        if isinstance(last, Ask) and last.kind == "yes_no":
            result = await h.say("yes")  # so the personal phone step is asked
        elif isinstance(last, Ask) and last.kind == "phone":
            result = await h.say("083 123 4567")
        else:
            result = await _answer(h, result, rng)
    async with h.sessionmaker() as session:
        answers = (await session.execute(select(Submission.answers))).scalar_one()
    assert "phone" in answers
    await h.say("subscribe")
    async with h.sessionmaker() as session, session.begin():
        submission = (await session.execute(select(Submission))).scalar_one()
        for state in ("pending", "failed"):
            session.add(
                ResidentNotification(
                    resident_id=submission.resident_id,
                    submission_id=submission.id,
                    channel="webchat",
                    locale="en",
                    purpose="status_update",
                    reference=submission.reference,
                    text=f"Report {submission.reference} is closed",
                    state=state,
                )
            )
    asked = await h.say("delete my data")
    assert _asks(asked)[-1].step_id == "erase"
    erased = await h.say("yes")
    assert "1" in _texts(erased)
    async with h.sessionmaker() as session:
        submission = (await session.execute(select(Submission))).scalar_one()
        texts = (await session.execute(select(MessageLog.text, MessageLog.address))).all()
        resident = (await session.execute(select(Resident))).scalar_one()
    assert "phone" not in submission.answers and submission.answers  # the report itself stays
    assert all(text is None and address is None for text, address in texts[:-2])
    assert resident.erased_at is not None
    assert await _count(h, ResidentAddress, ResidentAddress.resident_id == resident.id) == 0
    assert await _count(h, Subscription) == 0
    assert await _count(h, AuditLog, AuditLog.action == "erase") == 1
    async with h.sessionmaker() as session:
        outbox = (await session.execute(select(ResidentNotification))).scalars().all()
    assert sorted(n.state for n in outbox) == ["failed", "skipped"]
    assert all(n.text == "" for n in outbox)


async def test_opt_out_mid_form_then_opt_in_offers_to_continue(h: Harness) -> None:
    h.channel, h.address = "sms", "+27831234567"
    await h.say("pothole")
    await h.say("1")
    await h.say("yes")
    stopped = await h.say("STOP")
    assert stopped.effects == []  # Twilio confirms STOP on SMS itself
    assert (await h.say("Site C Khayelitsha")).effects == []  # nothing sent while opted out
    assert (await h.say("cancel")).effects == []
    back = await h.say("START")
    assert _asks(back)[-1].step_id == "resume"
    resumed = await h.say(option_id="continue")
    assert _asks(resumed)[-1].step_id == "location"


async def test_cancel_is_an_opt_out_on_sms_only(h: Harness) -> None:
    await h.say("pothole")
    await h.say("1")
    await h.say("yes")
    cancelled = await h.say("cancel")  # web chat: cancels the form
    assert any(isinstance(e, Cancelled) for e in cancelled.effects)
    async with h.sessionmaker() as session:
        assert (await session.execute(select(Resident.opted_out_at))).scalar_one() is None


async def test_an_idle_form_asks_to_continue_or_start_over(h: Harness) -> None:
    await h.say("pothole")
    await h.say("1")
    await h.say("yes")
    h.clock.advance(timedelta(hours=25))
    asked = await h.say("Site C Khayelitsha")
    assert _asks(asked)[-1].step_id == "resume"
    resumed = await h.say("continue")
    assert _asks(resumed)[-1].step_id == "location"
    h.clock.advance(timedelta(days=2))
    await h.say("hello")
    fresh = await h.say("start over")
    assert _asks(fresh)[-1].step_id == "service"


async def test_a_duplicate_message_id_is_processed_once(h: Harness) -> None:
    message = h.message("pothole")
    first = await h.loop.handle(message)
    again = await h.loop.handle(message)
    assert not first.duplicate and again.duplicate and again.effects == []
    assert await _count(h, MessageLog, MessageLog.direction == "in") == 1


async def test_twenty_concurrent_messages_run_in_order_once_each(h: Harness) -> None:
    messages = [h.message(f"note {n}") for n in range(20)]
    results = await asyncio.gather(*(h.loop.handle(m) for m in [*messages, *messages]))
    assert sum(not r.duplicate for r in results) == 20
    async with h.sessionmaker() as session:
        logged = (
            (
                await session.execute(
                    select(MessageLog.provider_message_id)
                    .where(MessageLog.direction == "in")
                    .order_by(MessageLog.id)
                )
            )
            .scalars()
            .all()
        )
    assert logged == [m.message_id for m in messages]


async def test_a_flood_is_answered_once_and_others_are_unaffected(h: Harness) -> None:
    results = [await h.loop.handle(h.message(f"spam {n}")) for n in range(40)]
    limited = [r for r in results if r.rate_limited]
    assert len(limited) == 10
    assert limited[0].effects and all(r.effects == [] for r in limited[1:])
    h.address = "neighbour"
    assert not (await h.say("pothole")).rate_limited
    assert await _count(h, ProcessedMessage) == 31


async def test_status_subscribe_and_agent(h: Harness) -> None:
    await h.say("menu")
    done = await _complete(h, await h.say(option_id="illegal_dumping"))
    assert done.reference is not None
    status = await h.say(f"status {done.reference.lower()}")
    assert done.reference in _texts(status) and "waiting" in _texts(status)
    assert "cannot find" in _texts(await h.say("status CT-AAAAAA"))
    subscribed = await h.say("subscribe")
    assert await _count(h, Subscription) == 1 and "ward" in _texts(subscribed)
    await h.say("subscribe Gugulethu")
    assert await _count(h, Subscription) >= 1
    agent = await h.say("agent")
    assert "number 1 in the queue" in _texts(agent)
    assert await _count(h, SupportTicket) == 1


async def test_help_in_every_state_re_asks_the_question(h: Harness) -> None:
    await h.say("pothole")
    await h.say("1")
    await h.say("yes")
    helped = await h.say("hulp")
    assert isinstance(helped.effects[0], Notice) and _asks(helped)[-1].step_id == "location"


async def test_database_failure_raises_and_writes_nothing(h: Harness) -> None:
    await h.say("menu")
    result = await h.say(option_id="illegal_dumping")
    rng = random.Random(2)
    while not isinstance(result.effects[-1], Review):
        result = await _answer(h, result, rng)
    key = ConversationKey(h.channel, h.address)
    before = await h.loop.states.get(key)

    def refuse_outbox(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        if statement.startswith("INSERT INTO submission_outbox"):
            raise OperationalError(statement, None, Exception("disk I/O error"))

    event.listen(h.engine.sync_engine, "before_cursor_execute", refuse_outbox)
    send = h.message("send")
    with pytest.raises(OperationalError):
        await h.loop.handle(send)
    assert await _count(h, Submission) == 0
    assert (
        await _count(h, ProcessedMessage, ProcessedMessage.provider_message_id == send.message_id)
        == 0
    )
    assert await h.loop.states.get(key) == before
    event.remove(h.engine.sync_engine, "before_cursor_execute", refuse_outbox)
    retried = await h.loop.handle(send)  # the provider retries the same message
    assert retried.reference is not None
    assert await _count(h, Submission) == 1 and await _count(h, SubmissionOutbox) == 1


async def test_database_unreachable_raises(h: Harness) -> None:
    from storage.session import create_engine, create_sessionmaker

    down = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    h.loop.sessionmaker = create_sessionmaker(down)
    with pytest.raises(OSError):
        await h.loop.handle(h.message("pothole", kind=InboundKind.TEXT))
    await down.dispose()


async def test_a_shared_contact_answers_the_phone_question(h: Harness) -> None:
    await h.say("pothole")
    await h.say("1")
    result = await h.say("yes")  # consent
    rng = random.Random(5)
    for _ in range(30):
        last = result.effects[-1]
        if isinstance(last, Ask) and last.step_id == "phone":
            break
        if isinstance(last, Ask) and last.step_id == "callback":
            result = await h.say("yes")
            continue
        result = await _answer(h, result, rng)
    else:
        raise AssertionError("the phone question never came")
    shared = await h.say(kind=InboundKind.CONTACT, contact_phone="+27831234567")
    review = shared.effects[-1]
    assert isinstance(review, Review), shared.effects
    assert "+27831234567" in [item.value for item in review.items]


@pytest.mark.parametrize("typed", ["²", "٣", "9" * 5000, "99999999999999999999", "-1", "1.5"])
async def test_odd_numbers_never_fail_a_turn(h: Harness, typed: str) -> None:
    """``str.isdigit`` accepts "²" (``int`` refuses it) and ``int`` refuses 5,000 digits: at the
    picker, the language question and a form's review screen such a number is just text."""
    await h.say("pothole")
    assert (await h.say(typed)).effects  # the picker's offer
    await h.say("language")
    assert (await h.say(typed)).effects  # "which language?" again
    result = await h.say("menu")
    result = await h.say(option_id="illegal_dumping")
    rng = random.Random(3)
    for _ in range(40):
        if any(isinstance(e, Review) for e in result.effects):
            break
        result = await _answer(h, result, rng)
    assert any(isinstance(e, Review) for e in result.effects)
    after = await h.say(typed)  # at the review screen: "change N" by number
    assert after.effects and after.reference is None


async def test_three_misunderstood_answers_ask_a_person_to_help(h: Harness) -> None:
    await h.say("hello")
    await h.say(option_id="pothole")
    for _ in range(2):
        missed = await h.say("purple elephant")
        assert "person" not in _texts(missed)
    third = await h.say("purple elephant")
    assert "asked a person to help" in _texts(third)
    assert "number 1 in the queue" in _texts(third)
    async with h.sessionmaker() as session:
        ticket = await session.scalar(select(SupportTicket))
    assert ticket is not None and (ticket.reason, ticket.topic) == ("misunderstood", "pothole")
    # The person has it now: the bot says nothing more.
    assert _texts(await h.say("hello?")) == ""


async def test_the_menu_a_command_shows_is_answered_by_its_numbers(harness: Harness) -> None:
    """MENU (and CANCEL, BACK) show the numbered list of services: on SMS, "1" must pick the
    first of them, as it does after the picker's own menu (a resident found it did not)."""
    first = harness.loop.picker.menu("en").options[0]
    for command in ("menu", "cancel", "back"):
        await harness.say(command)
        chosen = await harness.say("1")
        said = " ".join(
            str(getattr(e, "prompt", "") or getattr(e, "message", "")) for e in chosen.effects
        )
        assert "could not tell" not in said, (command, said)
        assert not any(isinstance(e, Reject) for e in chosen.effects), command
        state = await harness.loop.states.get(ConversationKey(harness.channel, harness.address))
        assert state is not None
        opened = (state.get("form") or {}).get("form") or (state.get("pending") or {}).get(
            "form_id"
        )
        assert opened == first.id, (command, state)
        await harness.say("menu")
