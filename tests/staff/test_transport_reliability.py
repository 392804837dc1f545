"""Issue 18's public figures on SQLite and PostgreSQL: transport reports by area type, gender and
disability, counts only, small groups suppressed (10 for disability) and the figure that would
give a suppressed one away suppressed with it."""

from __future__ import annotations

import json

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from conversations.aggregate_answers import INSERT_ANSWER
from conversations.turn_context import run_writes
from forms_runtime.effects import Inbound
from forms_runtime.engine import start, step
from forms_runtime.loader import standard_forms
from staff.support_context import form_answers
from staff.transport_reliability import transport_reliability
from storage.models import Resident, Submission
from tests.pothole_report import pothole_submission
from tests.staff.conftest import Clock


async def _seed(sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
    # 12 formal-area reports of late buses, 11 from informal settlements (6 no-shows, 5 late).
    # Gender: 6 women (the no-shows), 2 men; disability: 12 "disabled" (the formal ones), 3 not.
    plan: list[tuple[str, str, str | None, str | None]] = []
    for i in range(12):
        plan.append(("formal", "late", "man" if i < 2 else None, "disabled"))
    for i in range(11):
        plan.append(
            (
                "informal_settlement",
                "no_show" if i < 6 else "late",
                "woman" if i < 6 else None,
                "not_disabled" if i < 3 else None,
            )
        )
    async with sessions() as session, session.begin():
        resident = Resident(locale="en")
        session.add(resident)
        await session.flush()
        writes = []
        for n, (area_type, problem, gender, disability) in enumerate(plan):
            reference = f"CT-B{n:05d}"
            session.add(
                Submission(
                    **pothole_submission(
                        reference,
                        form_id="transport_reliability",
                        service_code="TRANSPORT-RELIABILITY",
                        answers={"operator": "myciti", "problem": problem},
                        area_type=area_type,
                        resident_id=resident.id,
                    )
                )
            )
            for step, value in (("gender", gender), ("disability", disability)):
                if value is not None:
                    # The conversation's own statement: the report found by its reference.
                    row = {
                        "reference": reference,
                        "resident_id": resident.id,
                        "form_id": "transport_reliability",
                        "step_id": step,
                        "value": value,
                        "special": step == "disability",
                        "created_at": clock.now,
                    }
                    writes.append((INSERT_ANSWER, row))
        await session.flush()
        await run_writes(session, writes)
    # A pothole report is never counted as transport.
    async with sessions() as session, session.begin():
        session.add(Submission(**pothole_submission("CT-P00001", area_type="formal")))


def _row(figures: dict, table: str, group: str) -> dict:
    (row,) = [r for r in figures["by"][table] if r["group"] == group]
    return row


async def test_figures_by_area_type_gender_and_disability(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    await _seed(sessions, clock)
    async with sessions() as session:
        figures = await transport_reliability(session)
    assert figures["min_group"] == 5 and figures["special_min_group"] == 10
    formal = _row(figures, "area_type", "formal")
    assert formal["reports"] == 12
    assert formal["problems"] == {
        "no_show": 0,
        "late": 12,
        "full": 0,
        "could_not_board": 0,
        "unsafe": 0,
    }
    informal = _row(figures, "area_type", "informal_settlement")
    assert informal["reports"] == 11
    assert informal["problems"]["no_show"] == 6 and informal["problems"]["late"] == 5
    # Disability, special information: 12 published, 3 and 8 (not stated) are under 10.
    assert _row(figures, "disability", "disabled")["reports"] == 12
    for group in ("not_disabled", "not_stated"):
        row = _row(figures, "disability", group)
        assert row["suppressed"] and row["reports"] is None and row["problems"] is None
    assert _row(figures, "disability", "prefer_not")["reports"] == 0
    # Gender: 2 men are under 5, and with the total known, the 6 women would give them away.
    assert _row(figures, "gender", "man")["suppressed"]
    assert _row(figures, "gender", "woman")["suppressed"]
    assert _row(figures, "gender", "not_stated")["reports"] == 15
    text = json.dumps(figures)
    assert "CT-" not in text and "resident" not in text


def test_an_agent_sees_the_report_but_never_the_optional_answers() -> None:
    # A resident asks for a person while the optional questions are open: the agent's context
    # shows the report's answers, not gender or disability.
    form = standard_forms()["transport_reliability"]
    state, _ = start(form, "en")
    for text in ("myciti", "t1", "Site C Khayelitsha", "late", "20", "today", "send", "woman"):
        state, _ = step(form, state, Inbound(text=text))
    state, _ = step(form, state, Inbound(text="yes"))
    state, _ = step(form, state, Inbound(text="yes, I have a disability"))
    assert {"gender", "disability"} <= set(state["answers"])
    state = dict(state, at="disability")  # as if asked for a person before the last answer
    shown = form_answers({form.id: form}, {"form": state})
    assert shown is not None
    steps = {a["step"] for a in shown.answers}
    assert "problem" in steps and "route_myciti" in steps
    assert not steps & {"gender", "disability"}
