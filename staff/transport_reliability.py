"""Public transport reliability by area type, gender and disability: counts only, never a person.

What the transport reliability form's reports say happened (the bus or train did not come, came
late, was full, could not be boarded, was unsafe), counted by the area type of the stop, and by
the optional answers residents gave after their report (``aggregate_answers``: gender; and, with
its own consent, disability, special personal information under POPIA). A report without an
optional answer counts as "not_stated", so every table adds up to the same reports.

Small groups are suppressed with the analytics' helper (``staff.analytics.published``): below
``MIN_GROUP`` reports for area type and gender, below ``SPECIAL_MIN_GROUP`` (10) reports or
residents for disability.
Where one group of a table, or one figure of a group's row or of a column (what happened, whose
total every table gives), is suppressed, the next smallest is too, so the suppressed one cannot
be worked out from a total.

Example::

    async with sessionmaker() as session:
        figures = await transport_reliability(session)
    figures["by"]["disability"][0]   # {"group": "disabled", "reports": 12, "problems": {...}}
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence
from typing import Any, TypeVarTuple

from sqlalchemy import Select, and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from staff.analytics import AREA_TYPES, MIN_GROUP, SPECIAL_MIN_GROUP, published
from storage.models import AggregateAnswer, Submission

__all__ = ["DIMENSIONS", "FORM_ID", "PROBLEMS", "transport_reliability"]

# The columns of a query that ``_with_answers`` joins, whatever they are.
Ts = TypeVarTuple("Ts")

FORM_ID = "transport_reliability"
PROBLEMS: tuple[str, ...] = ("no_show", "late", "full", "could_not_board", "unsafe")
NOT_STATED = "not_stated"
# The table of special personal information (POPIA s26), counted in people as well as reports.
SPECIAL = "disability"
# Each table: its groups, in order, and the smallest group published.
DIMENSIONS: dict[str, tuple[tuple[str, ...], int]] = {
    "area_type": (AREA_TYPES, MIN_GROUP),
    "gender": (("woman", "man", "non_binary", "another", "prefer_not", NOT_STATED), MIN_GROUP),
    "disability": (("disabled", "not_disabled", "prefer_not", NOT_STATED), SPECIAL_MIN_GROUP),
}


async def transport_reliability(session: AsyncSession) -> dict[str, Any]:
    """Every table, suppressed for publication; safe to serve to anyone."""
    problem = Submission.answers["problem"].as_string()
    counts: dict[str, dict[str, dict[str, int]]] = {}
    area_type = func.coalesce(Submission.area_type, "unknown")
    area = select(area_type, problem, func.count()).where(Submission.form_id == FORM_ID)
    counts["area_type"] = _table(await session.execute(area.group_by(area_type, problem)))
    value = func.coalesce(AggregateAnswer.value, NOT_STATED)
    for step in ("gender", "disability"):
        answered = _with_answers(select(value, problem, func.count()), step)
        counts[step] = _table(await session.execute(answered.group_by(value, problem)))
    # Special information is about people: a group of 10 reports from one resident is one
    # person, so its groups need as many residents as reports (who answered, else who reported;
    # reports of nobody known, such as a city's imports, make no group publishable).
    who = func.coalesce(AggregateAnswer.resident_id, Submission.resident_id)
    residents = _with_answers(select(value, func.count(who.distinct())), SPECIAL)
    people = {str(g): int(n) for g, n in await session.execute(residents.group_by(value))}
    return {
        "form": FORM_ID,
        "problems": list(PROBLEMS),
        "min_group": MIN_GROUP,
        "special_min_group": SPECIAL_MIN_GROUP,
        "by": {
            name: _published(counts[name], groups, k, people if name == SPECIAL else None)
            for name, (groups, k) in DIMENSIONS.items()
        },
    }


def _with_answers(query: Select[*Ts], step: str) -> Select[*Ts]:
    """``query`` over the transport reports, each with its answer to ``step`` (or none)."""
    joined = query.select_from(Submission).outerjoin(
        AggregateAnswer,
        and_(AggregateAnswer.submission_id == Submission.id, AggregateAnswer.step_id == step),
    )
    return joined.where(Submission.form_id == FORM_ID)


def _table(rows: Any) -> dict[str, dict[str, int]]:
    table: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(PROBLEMS, 0))
    for group, problem, count in rows:
        if problem in PROBLEMS:
            table[str(group)][str(problem)] += int(count)
    return table


def _published(
    table: dict[str, dict[str, int]],
    groups: Sequence[str],
    k: int,
    people: dict[str, int] | None = None,
) -> list[dict[str, Any]]:
    known = [*groups, *sorted(g for g in table if g not in groups)]
    totals = [sum(table[g].values()) if g in table else 0 for g in known]
    few = {
        i for i, g in enumerate(known) if people is not None and totals[i] and people.get(g, 0) < k
    }
    shown_totals = _with_secondary(totals, k, few)
    cells = [[table[g][p] if g in table else 0 for p in PROBLEMS] for g in known]
    hidden = _hidden_cells(cells, [shown is None for shown in shown_totals], k)
    rows: list[dict[str, Any]] = []
    for i, (group, total, shown) in enumerate(zip(known, totals, shown_totals, strict=True)):
        if shown is None:
            rows.append({"group": group, "reports": None, "suppressed": True, "problems": None})
            continue
        figures = [None if (i, j) in hidden else n for j, n in enumerate(cells[i])]
        rows.append(
            {
                "group": group,
                "reports": total,
                "suppressed": False,
                "problems": dict(zip(PROBLEMS, figures, strict=True)),
            }
        )
    return rows


def _with_secondary(
    values: Sequence[int], k: int, too_few: Collection[int] = ()
) -> list[int | None]:
    """Each value as published (not those at ``too_few``, groups of too few people); where
    exactly one is suppressed, the smallest other one goes too (non-zero where there is one),
    so the total does not give the suppressed one away."""
    shown = [None if i in too_few else published(v, k) for i, v in enumerate(values)]
    hidden = [i for i, v in enumerate(shown) if v is None]
    if len(hidden) == 1:
        others = [(v == 0, v, i) for i, v in enumerate(values) if shown[i] is not None]
        if others:
            shown[min(others)[2]] = None
    return shown


def _hidden_cells(
    cells: Sequence[Sequence[int]], hidden_rows: Sequence[bool], k: int
) -> set[tuple[int, int]]:
    """The figures of a table (group x what happened) not published: those of a suppressed
    group, those under ``k``, and enough others that none can be worked out.

    A published group's figures add up to its reports, and each column adds up to the same
    count in every table (every table counts all reports), so the column totals are as good as
    public: a line of figures with exactly one hidden gets a second, the smallest figure still
    shown (zero only where no other is left), until no line has exactly one.
    """
    hidden = {
        (i, j)
        for i, row in enumerate(cells)
        for j, n in enumerate(row)
        if hidden_rows[i] or published(n, k) is None
    }
    rows = [[(i, j) for j in range(len(PROBLEMS))] for i in range(len(cells)) if not hidden_rows[i]]
    columns = [[(i, j) for i in range(len(cells))] for j in range(len(PROBLEMS))]
    changed = True
    while changed:
        changed = False
        for line in (*rows, *columns):
            if sum(cell in hidden for cell in line) != 1:
                continue
            shown = [
                (cells[i][j] == 0, cells[i][j], (i, j)) for i, j in line if (i, j) not in hidden
            ]
            if shown:
                hidden.add(min(shown)[2])
                changed = True
    return hidden
