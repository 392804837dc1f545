"""Issue 18 in a conversation: a bus report is filed without the optional answers after it; those
are stored apart (aggregate_answers), linked to the report, never logged as words, and go with
DELETE MY DATA."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.bootstrap import turn_loop_on
from channels.types import InboundKind, InboundMessage
from conversations.turn import TurnResult
from forms_runtime.effects import Ask
from storage.models import AggregateAnswer, MessageLog, Submission
from tests.conversations.conftest import Harness
from tests.conversations.stores import redis_client
from tests.storage.databases import postgres_database, redis_url_or_skip


@pytest.fixture
def h(harness: Harness) -> Harness:
    return harness


async def _report(h: Harness) -> str:
    """A bus that came late, up to the optional questions; the report's reference."""
    await h.say("menu")
    await h.say(option_id="transport_reliability")
    for answer in ("myciti", "t1"):
        await h.say(answer)
    await h.pin(-34.0363, 18.6776)
    for answer in ("late", "20", "today"):
        await h.say(answer)
    sent = await h.say("send")
    assert sent.reference is not None
    asked = [e for e in sent.effects if isinstance(e, Ask)]
    assert asked and asked[-1].step_id == "gender" and asked[-1].prompt.startswith("Optional")
    return sent.reference


async def _rows(h: Harness) -> list[Any]:
    async with h.sessionmaker() as session:
        result = await session.execute(
            select(
                AggregateAnswer.submission_id,
                AggregateAnswer.step_id,
                AggregateAnswer.value,
                AggregateAnswer.special,
            ).order_by(AggregateAnswer.id)
        )
        return [tuple(r) for r in result.all()]


async def test_optional_answers_are_kept_apart_and_counted_with_their_report(h: Harness) -> None:
    reference = await _report(h)
    await h.say("woman")
    consent = await h.say("yes")  # may we ask? yes
    assert [e for e in consent.effects if isinstance(e, Ask)][-1].prompt.startswith("Do you have")
    done = await h.say("yes, I have a disability")
    assert "Thank you for answering" in " ".join(getattr(e, "message", "") for e in done.effects)
    async with h.sessionmaker() as session:
        submission = (await session.execute(select(Submission))).scalar_one()
        logged = (
            await session.execute(
                select(MessageLog.text)
                .where(MessageLog.direction == "in")
                .order_by(MessageLog.id.desc())
                .limit(3)
            )
        ).scalars()
        logged_texts = list(logged)
    assert submission.reference == reference
    assert set(submission.answers) == {
        "operator",
        "route_myciti",
        "stop",
        "problem",
        "late_minutes",
        "day",
    }
    assert await _rows(h) == [
        (submission.id, "gender", "woman", False),
        (submission.id, "disability", "disabled", True),
    ]
    # The words said to these questions are not in the log staff can read.
    assert logged_texts == [None, None, None]
    # The form is closed: a new message is read by the picker again.
    again = await h.say("pothole")
    assert [e for e in again.effects if isinstance(e, Ask)][-1].options[0].id == "pothole"


async def test_a_gender_in_the_residents_own_words_is_counted_and_its_words_kept_nowhere(
    h: Harness,
) -> None:
    await _report(h)
    await h.say("genderfluid")
    await h.say("skip")
    assert await _rows(h) == [(1, "gender", "another", False)]
    async with h.sessionmaker() as session:
        texts = (await session.execute(select(MessageLog.text))).scalars().all()
    assert not any(t and "genderfluid" in t for t in texts)


def _said(result: TurnResult) -> str:
    return " ".join(
        getattr(e, "message", "") or getattr(e, "prompt", "") or "" for e in result.effects
    )


async def test_menu_during_the_optional_questions_never_says_the_sent_report_was_cancelled(
    h: Harness,
) -> None:
    await _report(h)
    menu = await h.say("menu")
    assert "Nothing was sent" not in _said(menu) and "cancelled" not in _said(menu)
    assert [e for e in menu.effects if isinstance(e, Ask)][-1].step_id == "service"
    async with h.sessionmaker() as session:
        assert (await session.execute(select(func.count()).select_from(Submission))).scalar() == 1


async def test_after_a_long_break_the_optional_questions_end_rather_than_offer_to_resume(
    h: Harness,
) -> None:
    # The report was sent; the resident never answered. A day later a new message is read as
    # new: no "unfinished report" to continue or start over (starting over would be a second).
    await _report(h)
    h.clock.advance(timedelta(days=2))
    later = await h.say("pothole")
    assert "unfinished" not in _said(later)
    assert [e for e in later.effects if isinstance(e, Ask)][-1].step_id == "service"
    assert await _rows(h) == []


@pytest.mark.parametrize("text", ["no", "No thanks", "yes"])
async def test_yes_or_no_to_the_gender_question_is_asked_again_not_read_as_a_service(
    h: Harness, text: str
) -> None:
    await _report(h)
    again = await h.say(text)
    asked = [e for e in again.effects if isinstance(e, Ask)][-1]
    assert asked.step_id == "gender"
    assert await _rows(h) == []


@pytest.mark.parametrize("text", ["there is a water leak", "pothole on my street"])
async def test_a_new_request_said_to_an_optional_question_goes_to_the_service_picker(
    h: Harness, text: str
) -> None:
    await _report(h)
    new = await h.say(text)
    asked = [e for e in new.effects if isinstance(e, Ask)][-1]
    assert asked.step_id == "service" and "Optional" not in asked.prompt
    assert await _rows(h) == []
    async with h.sessionmaker() as session:
        logged = (
            await session.execute(
                select(MessageLog.text)
                .where(MessageLog.direction == "in")
                .order_by(MessageLog.id.desc())
                .limit(1)
            )
        ).scalar_one()
    assert logged == text  # a request, not an answer: kept like any other message


async def test_declining_keeps_nothing_and_erasure_removes_what_was_kept(h: Harness) -> None:
    await _report(h)
    await h.say("prefer not to say")
    await h.say("no")  # no consent: the disability question is never asked
    assert await _rows(h) == [(1, "gender", "prefer_not", False)]
    await h.say("delete my data")
    await h.say("yes")
    async with h.sessionmaker() as session:
        left = (await session.execute(select(func.count()).select_from(AggregateAnswer))).scalar()
        reports = (await session.execute(select(func.count()).select_from(Submission))).scalar()
    assert left == 0 and reports == 1


async def test_on_postgresql_and_redis_the_answers_are_kept_with_the_report() -> None:
    # Scale-out: state in Redis, the report and the answers' rows group committed in SQL.
    async with postgres_database() as url, redis_client() as (_client, prefix):
        loop = turn_loop_on(url, redis_url_or_skip(), rate_burst=100, redis_prefix=prefix)
        address = uuid.uuid4().hex
        try:

            async def say(text: str | None = None, **kwargs: object) -> TurnResult:
                message = InboundMessage(
                    "webchat",
                    address,
                    uuid.uuid4().hex,
                    text=text,
                    **kwargs,  # type: ignore[arg-type]
                )
                return await loop.handle(message)

            await say("menu")
            await say(option_id="transport_reliability", kind=InboundKind.BUTTON)
            for text in ("metrorail", "central line", "Site C Khayelitsha", "did not come"):
                await say(text)
            await say("yesterday")
            sent = await say("send")
            assert sent.reference is not None
            await say("man")
            await say("skip")  # no consent asked for: the disability question passes by
            await loop.flush()
            async with loop.sessionmaker() as session:
                rows = (
                    await session.execute(
                        select(
                            Submission.reference, AggregateAnswer.step_id, AggregateAnswer.value
                        ).join(Submission, Submission.id == AggregateAnswer.submission_id)
                    )
                ).all()
                logged = (
                    await session.execute(
                        select(MessageLog.text)
                        .where(MessageLog.direction == "in", MessageLog.address == address)
                        .order_by(MessageLog.id.desc())
                        .limit(2)
                    )
                ).scalars()
                logged_texts = list(logged)
            assert [tuple(r) for r in rows] == [(sent.reference, "gender", "man")]
            assert logged_texts == [None, None]
        finally:
            await loop.close()
