"""A form that says a person is needed, and office hours, through the turn loop: the resident
hears the form's reason and their place, the ticket is urgent and for the form's team, the bot
is silent while the person has it, and after the handback the form carries on. Outside office
hours the resident hears when someone is back, in their language."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from conversations.office_hours import OfficeHours
from conversations.support import URGENT
from conversations.turn import TurnResult
from forms_runtime.effects import Ask, Notice
from storage.models import SupportMessage, SupportTicket
from tests.conversations.conftest import Harness

KHAYELITSHA = (-34.0363, 18.6776)


@pytest.fixture
def h(harness: Harness) -> Harness:
    return harness


def _texts(result: TurnResult) -> list[str]:
    return [getattr(e, "message", None) or getattr(e, "prompt", "") for e in result.effects]


async def _tickets(h: Harness) -> list[SupportTicket]:
    async with h.sessionmaker() as session:
        return list((await session.scalars(select(SupportTicket))).all())


async def _hand_back(h: Harness) -> None:
    async with h.sessionmaker() as session, session.begin():
        await session.execute(update(SupportTicket).values(state="closed", outcome="handed_back"))


async def _to_the_wires_question(h: Harness) -> None:
    await h.say("menu")
    consent = await h.say(option_id="power_outage")
    assert isinstance(consent.effects[-1], Ask) and consent.effects[-1].step_id == "consent"
    await h.say("yes")
    await h.pin(*KHAYELITSHA)
    wires = await h.say("no")  # not only my home
    assert isinstance(wires.effects[-1], Ask) and wires.effects[-1].step_id == "wires"


async def test_a_live_wire_down_goes_to_a_person_urgently_and_the_form_resumes(
    h: Harness,
) -> None:
    waiting = await h.say("agent", address="someone-else")  # already in the queue
    assert "number 1 in the queue" in " ".join(_texts(waiting))
    await _to_the_wires_question(h)

    handed = await h.say("yes")
    said = _texts(handed)
    assert all(isinstance(e, Notice) for e in handed.effects)
    assert said[0].startswith("Live wires can kill.") and "107" in said[0]
    assert "number 1 in the queue" in said[1], "urgent: ahead of who asked first"
    ticket = next(t for t in await _tickets(h) if t.address == h.address)
    assert (ticket.reason, ticket.priority, ticket.topic, ticket.team) == (
        "form",
        URGENT,
        "power_outage",
        "electricity",
    )

    silent = await h.say("the pole is sparking")
    assert silent.effects == []
    async with h.sessionmaker() as session:
        lines = (
            await session.execute(
                select(SupportMessage.direction, SupportMessage.text)
                .where(SupportMessage.ticket_id == ticket.id)
                .order_by(SupportMessage.id)
            )
        ).all()
    assert lines[0][0] == "system" and "power_outage/wires" in str(lines[0][1])
    assert ("resident", "the pole is sparking") in [tuple(row) for row in lines]

    await _hand_back(h)
    back = await h.say("thank you")
    assert _texts(back)[0] == "Back to your report."
    asked = back.effects[-1]
    assert isinstance(asked, Ask) and asked.step_id == "photo"  # wires == yes: a photo next
    following = await h.say("skip")
    assert isinstance(following.effects[-1], Ask) and following.effects[-1].step_id == "callback"


async def test_choosing_a_marked_option_goes_to_a_person(h: Harness) -> None:
    await h.say("menu")
    opened = await h.say(option_id="streetlight")
    if isinstance(opened.effects[-1], Ask) and opened.effects[-1].step_id == "consent":
        await h.say("yes")
    await h.pin(*KHAYELITSHA)
    handed = await h.say(option_id="exposed")
    assert _texts(handed)[0].startswith("Live wires can kill.")
    (ticket,) = await _tickets(h)
    assert (ticket.reason, ticket.priority, ticket.topic) == ("form", URGENT, "streetlight")


async def test_a_question_answered_otherwise_stays_with_the_bot(h: Harness) -> None:
    await _to_the_wires_question(h)
    carried_on = await h.say("no")
    assert isinstance(carried_on.effects[-1], Ask) and carried_on.effects[-1].step_id == "callback"
    assert await _tickets(h) == []


async def test_asking_for_a_person_when_the_office_is_closed(h: Harness) -> None:
    h.loop.router.support.office_hours = OfficeHours.parse(
        "mon-fri 08:00-16:30", holidays="2026-03-09"
    )
    h.clock.now = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)  # Friday 18:00 in Cape Town
    closed = await h.say("agent")
    said = " ".join(_texts(closed))
    assert "number 1 in the queue" in said and "the wait is" not in said
    # Monday the 9th is a holiday: back on Tuesday.
    assert "Someone will be back on Tuesday 10 March, 08:00." in said
    assert "it stays in the queue" in said
    left = await h.say("my meter box is burning")
    assert left.effects == []  # the message waits in the queue for staff
    (ticket,) = await _tickets(h)
    assert ticket.state == "waiting"


async def test_closed_office_in_isixhosa(h: Harness) -> None:
    h.loop.router.support.office_hours = OfficeHours.parse("mon-fri 08:00-16:30")
    h.clock.now = datetime(2026, 3, 7, 9, 0, tzinfo=UTC)  # Saturday
    await h.say("menu")
    await h.say("isiXhosa")
    closed = await h.say("ndifuna umntu")
    said = " ".join(_texts(closed))
    assert "Umntu uza kubuya ngeli xesha: Mvulo 9 Matshi, 08:00." in said
