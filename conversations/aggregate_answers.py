"""Optional answers after a report (``aggregate_only`` steps): kept apart from it, counted only.

The engine says each one as a ``Contribute`` effect. This module turns it into an
``aggregate_answers`` row, committed with the turn, linked to the report the questions follow
(its reference is kept in the state envelope while they are asked) and to the resident (so
DELETE MY DATA removes it). The effect never reaches a channel, and the resident's words while
these questions are open never reach the message log, so no staff view can show them per
resident.

Example::

    remember_report(turn, "CT-7KQ2PX")   # the report was stored; its optional questions follow
    keep_contributions(turn)             # after the engine's step: rows written with the turn
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select

from conversations.turn_context import Turn
from forms_runtime.effects import Contribute
from storage.models import AggregateAnswer, Submission

__all__ = ["INSERT_ANSWER", "REPORT_KEY", "forget_report", "keep_contributions", "remember_report"]

# The envelope entry naming the report whose optional questions are open.
REPORT_KEY = "answers_for"

_answers = cast(Table, AggregateAnswer.__table__)
# The report's id is looked up by its reference in the same statement: the reference is what
# the envelope keeps (the id is the database's business), and a report erased meanwhile simply
# gets no row.
INSERT_ANSWER = insert(_answers).from_select(
    ["submission_id", "resident_id", "form_id", "step_id", "value", "special", "created_at"],
    select(
        Submission.id,
        bindparam("resident_id"),
        bindparam("form_id"),
        bindparam("step_id"),
        bindparam("value"),
        bindparam("special"),
        bindparam("created_at"),
    ).where(Submission.reference == bindparam("reference")),
)


def remember_report(turn: Turn, reference: str) -> None:
    turn.envelope[REPORT_KEY] = reference


def forget_report(turn: Turn) -> None:
    turn.envelope.pop(REPORT_KEY, None)


def keep_contributions(turn: Turn) -> None:
    """Each ``Contribute`` effect becomes a row committed with the turn, and leaves the effects."""
    given = [e for e in turn.effects if isinstance(e, Contribute)]
    if not given:
        return
    turn.effects = [e for e in turn.effects if not isinstance(e, Contribute)]
    reference = turn.envelope.get(REPORT_KEY)
    if not isinstance(reference, str):
        return  # no report to count them with: nothing is kept
    for effect in given:
        turn.write(INSERT_ANSWER, _row(turn, reference, effect))


def _row(turn: Turn, reference: str, effect: Contribute) -> dict[str, Any]:
    return {
        "reference": reference,
        "resident_id": turn.resident_id,
        "form_id": effect.form_id,
        "step_id": effect.step_id,
        "value": _value(effect.value),
        "special": effect.special,
        "created_at": turn.now,
    }


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)[:64]
