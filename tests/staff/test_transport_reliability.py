"""Issue 18's public figures on SQLite and PostgreSQL: transport reports by area type, gender and
disability, counts only, small groups suppressed (10 for disability) and the figure that would
give a suppressed one away suppressed with it."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from conversations.aggregate_answers import INSERT_ANSWER
from conversations.turn_context import run_writes
from forms_runtime.effects import Inbound
from forms_runtime.engine import start, step
from forms_runtime.loader import standard_forms
from staff.analytics import AREA_TYPES
from staff.support_context import form_answers
from staff.transport_reliability import PROBLEMS, transport_reliability
from storage.models import AggregateAnswer, Resident, Submission
from tests.pothole_report import pothole_submission
from tests.staff.conftest import Clock

# One report: the area type of its stop, what happened, its gender and disability answers.
Plan = list[tuple[str, str, str | None, str | None]]


def _first_plan() -> Plan:
    # 12 formal-area reports of late buses, 11 from informal settlements (6 no-shows, 5 late).
    # Gender: 6 women (the no-shows), 2 men; disability: 12 "disabled" (the formal ones), 3 not.
    plan: Plan = []
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
    return plan


async def _seed(
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    plan: Plan | None = None,
    residents: int | None = None,
) -> None:
    """The reports of ``plan``, made by ``residents`` residents in turn (each its own: None)."""
    plan = _first_plan() if plan is None else plan
    async with sessions() as session, session.begin():
        people = [Resident(locale="en") for _ in range(residents or len(plan))]
        session.add_all(people)
        await session.flush()
        writes = []
        for n, (area_type, problem, gender, disability) in enumerate(plan):
            resident = people[n % len(people)]
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


def _worked_out(figures: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The suppressed figures someone could work out from what is published: in a line of
    figures whose total is known (a published row's reports; a column, whose total every
    table gives, since each adds up to all the reports), the one figure that is null."""
    found: list[tuple[str, str, str]] = []
    for table, rows in figures["by"].items():
        unknown = [r["group"] for r in rows if r["reports"] is None]
        if len(unknown) == 1:
            found.append((table, unknown[0], "reports"))
        for row in rows:
            if row["problems"] is not None:
                hidden = [p for p, n in row["problems"].items() if n is None]
                if len(hidden) == 1:
                    found.append((table, row["group"], hidden[0]))
        for problem in figures["problems"]:
            column = [r for r in rows if r["problems"] is None or r["problems"][problem] is None]
            if len(column) == 1:
                found.append((table, column[0]["group"], problem))
    return found


@pytest.mark.parametrize(("residents", "shown"), [(1, False), (9, False), (10, True)])
async def test_disability_groups_need_ten_residents_not_only_ten_reports(
    sessions: async_sessionmaker[AsyncSession], clock: Clock, residents: int, shown: bool
) -> None:
    # 20 late buses reported as disabled, by 1, 9 or 10 residents; 20 more, not stated.
    plan: Plan = [("formal", "late", None, "disabled")] * 20 + [("formal", "late", None, None)] * 20
    await _seed(sessions, clock, plan, residents=residents)
    async with sessions() as session:
        figures = await transport_reliability(session)
    disabled = _row(figures, "disability", "disabled")
    assert disabled["reports"] == (20 if shown else None)
    assert disabled["suppressed"] is not shown
    # Gender and area type count reports, as issue 10's tables do.
    assert _row(figures, "area_type", "formal")["reports"] == 40
    assert _worked_out(figures) == []


async def test_a_lone_suppressed_group_is_not_given_away_by_the_total_of_the_others(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    # Every report from one resident with a disability: the group is suppressed (one person),
    # every other group is empty, and the area-type table publishes the total: an empty group
    # is suppressed with it, so the total no longer says how many were from that group.
    await _seed(sessions, clock, [("formal", "late", None, "disabled")] * 12, residents=1)
    async with sessions() as session:
        figures = await transport_reliability(session)
    assert _row(figures, "area_type", "formal")["reports"] == 12
    assert _row(figures, "disability", "disabled")["suppressed"]
    assert _worked_out(figures) == []


async def test_reports_of_nobody_known_make_no_disability_group_publishable(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    plan: Plan = [("formal", "late", None, "disabled")] * 12 + [("formal", "late", None, None)] * 12
    await _seed(sessions, clock, plan)
    async with sessions() as session, session.begin():
        await session.execute(update(AggregateAnswer).values(resident_id=None))
        await session.execute(update(Submission).values(resident_id=None))
    async with sessions() as session:
        figures = await transport_reliability(session)
    assert _row(figures, "disability", "disabled")["suppressed"]
    assert _row(figures, "area_type", "formal")["reports"] == 24


async def test_a_suppressed_figure_cannot_be_worked_out_from_another_table(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    # 42 reports from formal areas: 29 late buses, 13 no-shows, all published by area type.
    # 12 from residents with a disability (9 late, 3 no-shows: each under 10), 30 not stated
    # (20 late, 10 no-shows). With the 29 late ones published by area type and the 20 not
    # stated, the 9 would be 29 - 20: the late column needs a second figure suppressed.
    plan: Plan = [("formal", "late", None, "disabled")] * 9
    plan += [("formal", "no_show", None, "disabled")] * 3
    plan += [("formal", "late", None, None)] * 20 + [("formal", "no_show", None, None)] * 10
    await _seed(sessions, clock, plan)
    async with sessions() as session:
        figures = await transport_reliability(session)
    formal = _row(figures, "area_type", "formal")["problems"]
    assert formal["late"] == 29 and formal["no_show"] == 13
    disabled = _row(figures, "disability", "disabled")
    assert disabled["reports"] == 12
    assert disabled["problems"]["late"] is None and disabled["problems"]["no_show"] is None
    assert _worked_out(figures) == []
    # The one other figure of the late and no-show columns goes with them.
    not_stated = _row(figures, "disability", "not_stated")
    assert not_stated["reports"] == 30
    assert not_stated["problems"]["late"] is None and not_stated["problems"]["no_show"] is None


async def test_no_suppressed_figure_of_the_first_plan_can_be_worked_out(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    await _seed(sessions, clock)
    async with sessions() as session:
        figures = await transport_reliability(session)
    assert _worked_out(figures) == []


async def test_no_suppressed_figure_of_a_lopsided_city_can_be_worked_out(
    sessions: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    # Many small groups and figures, drawn with fixed weights: most reports late or no-shows
    # from formal areas, few of anything else.
    rng = random.Random(18)
    areas, problems = list(AREA_TYPES), list(PROBLEMS)
    genders = [None, "woman", "man", "non_binary", "another", "prefer_not"]
    disabilities = [None, "disabled", "not_disabled", "prefer_not"]
    plan: Plan = [
        (
            rng.choices(areas, [8, 3, 1, 1])[0],
            rng.choices(problems, [8, 6, 2, 1, 1])[0],
            rng.choices(genders, [6, 5, 4, 1, 1, 1])[0],
            rng.choices(disabilities, [8, 2, 3, 1])[0],
        )
        for _ in range(160)
    ]
    await _seed(sessions, clock, plan)
    async with sessions() as session:
        figures = await transport_reliability(session)
    shown = [
        n for rows in figures["by"].values() for r in rows for n in (r["problems"] or {}).values()
    ]
    assert None in shown and any(n for n in shown)  # some suppressed, some published
    assert _worked_out(figures) == []


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
