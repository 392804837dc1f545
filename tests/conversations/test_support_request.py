"""Asking for a person through the turn loop: every locale's words open one ticket and the
resident hears their place and the expected wait in their language; the wait they were told is
kept, so the support sweep can tell them again when it grows (tests/staff/test_support_timeouts.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from conversations.turn import TurnResult
from forms_runtime.i18n import tr
from storage.models import SupportTicket
from tests.conversations.conftest import Harness

_QUEUED_WAIT = (
    "A person will answer you here. You are number {position} in the queue; the wait is about "
    "{minutes} minutes."
)
_LANGUAGE_NAMES = {"en": "English", "af": "Afrikaans", "zu": "isiZulu", "xh": "isiXhosa"}


def _texts(result: TurnResult) -> list[str]:
    return [getattr(e, "message", None) or getattr(e, "prompt", "") for e in result.effects]


async def _tickets(h: Harness) -> list[SupportTicket]:
    async with h.sessionmaker() as session:
        return list((await session.scalars(select(SupportTicket))).all())


async def _claims_that_waited(h: Harness, minutes: int) -> None:
    now = h.clock.now
    async with h.sessionmaker() as session, session.begin():
        session.add(
            SupportTicket(
                channel="sms",
                state="closed",
                created_at=now - timedelta(minutes=minutes),
                claimed_at=now,
                closed_at=now,
            )
        )


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        ("en", "human"),
        ("en", "Speak to someone"),
        ("af", "praat met iemand"),
        ("af", "mens"),
        ("zu", "ngifuna umuntu"),
        ("zu", "umuntu"),
        ("xh", "ndifuna umntu"),
        ("xh", "umntu"),
    ],
)
async def test_every_locales_words_ask_for_a_person(
    harness: Harness, locale: str, words: str
) -> None:
    await _claims_that_waited(harness, 12)
    await harness.say("menu")
    await harness.say(_LANGUAGE_NAMES[locale])
    asked = await harness.say(words)
    assert tr(locale, _QUEUED_WAIT, position=1, minutes=12) in _texts(asked)
    (_, ticket) = await _tickets(harness)
    assert (ticket.state, ticket.locale, ticket.reason) == ("waiting", locale, "asked")
    assert ticket.told_wait_minutes == 12
    again = await harness.say(words)
    assert tr(locale, _QUEUED_WAIT, position=1, minutes=12) in _texts(again)
    assert len(await _tickets(harness)) == 2, "asking again opens no second ticket"


async def test_no_wait_told_before_anyone_was_answered(harness: Harness) -> None:
    asked = await harness.say("agent")
    assert "A person will answer you here. You are number 1 in the queue." in _texts(asked)
    (ticket,) = await _tickets(harness)
    assert ticket.told_wait_minutes is None


async def test_asking_again_once_a_person_has_it_goes_to_them(harness: Harness) -> None:
    await harness.say("agent")
    async with harness.sessionmaker() as session, session.begin():
        (ticket,) = (await session.scalars(select(SupportTicket))).all()
        ticket.state, ticket.held_since = "held", harness.clock.now
    harness.clock.now += timedelta(seconds=2)  # the once-a-second read of open tickets
    again = await harness.say("agent")
    assert again.effects == [], "the agent answers, not the bot"


@pytest.mark.parametrize("misses", [2, 0])
async def test_how_many_misses_ask_for_a_person_is_configurable(
    harness: Harness, misses: int
) -> None:
    """``CITYBOT_SUPPORT_AFTER_MISSES``: 2 asks a person at the second miss; 0 never does."""
    harness.loop.router.misses_for_person = misses
    await harness.say("hello")
    await harness.say(option_id="pothole")
    first = await harness.say("purple elephant")
    assert not any("person" in t for t in _texts(first))
    for _ in range(4 if misses == 0 else 1):
        again = await harness.say("purple elephant")
    asked = any("asked a person to help" in t for t in _texts(again))
    assert asked is (misses == 2)
    assert len(await _tickets(harness)) == (1 if misses else 0)
