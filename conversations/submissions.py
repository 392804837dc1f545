"""A finished form becomes a submission and its outbox row, in the turn's one transaction.

The resident is told "received, your reference is CT-XXXXXX" only after that transaction commits
(DESIGN.md: nothing is lost). The filer picks the outbox row up later.

A reference is drawn at random and inserted with ``ON CONFLICT (reference) DO NOTHING``: a clash
(rare: 25**6 references) inserts nothing and another is drawn, without a look-up first. With the
state in Redis, the submissions of many turns are stored together (``store_many``, group committed
by ``storage.sql_batch``): each turn's processed marker, reports, outbox rows and other
writes, in one transaction for all of them.

Example::

    reference = await store_submission(session, submit, form, resident_id=7, channel="sms", now=now)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from conversations.dedupe import mark_processed_many
from conversations.references import new_reference
from conversations.turn_context import Write, dialect_name, run_writes
from forms_runtime.effects import Submit
from forms_runtime.model import Form, StepType
from storage.models import Submission, SubmissionOutbox

__all__ = ["StoreWork", "location_of", "store_many", "store_submission"]

_submissions = cast(Table, Submission.__table__)
_outbox = cast(Table, SubmissionOutbox.__table__)
# Built once per dialect (building statements per report was a visible cost).
_INSERT_NEW_REFERENCE = {
    name: insert_(_submissions)
    .on_conflict_do_nothing(index_elements=["reference"])
    .returning(_submissions.c.id, _submissions.c.reference)
    for name, insert_ in (("postgresql", pg_insert), ("sqlite", sqlite_insert))
}
_INSERT_OUTBOX = insert(_outbox)


@dataclass(frozen=True, slots=True)
class StoreWork:
    """One turn's SQL work when it files reports: all of it commits, or none."""

    channel: str
    message_id: str
    resident_id: int | None
    submits: tuple[tuple[Submit, Form | None], ...]
    writes: tuple[Write, ...]
    now: datetime


async def store_many(
    db: AsyncSession | AsyncConnection, works: Sequence[StoreWork]
) -> list[list[str] | None]:
    """Store many turns' reports in the caller's transaction; each turn's references, in order,
    or ``None`` for a turn whose message was already processed (nothing of it is written)."""
    marked = await mark_processed_many(db, [(w.channel, w.message_id) for w in works], _now(works))
    fresh = [w for w in works if (w.channel, w.message_id) in marked]
    rows = [
        _submission_row(submit, form, resident_id=w.resident_id, channel=w.channel, now=w.now)
        for w in fresh
        for submit, form in w.submits
    ]
    ids = await _insert_with_free_references(db, rows)
    if rows:
        await db.execute(
            _INSERT_OUTBOX,
            [_outbox_row(i, row["created_at"]) for i, row in zip(ids, rows, strict=True)],
        )
    await run_writes(db, [write for w in fresh for write in w.writes])
    references = iter(row["reference"] for row in rows)
    return [
        [next(references) for _ in w.submits] if (w.channel, w.message_id) in marked else None
        for w in works
    ]


async def store_submission(
    session: AsyncSession | AsyncConnection,
    effect: Submit,
    form: Form | None,
    *,
    resident_id: int | None,
    channel: str,
    now: datetime,
) -> str:
    """Insert the submission and its outbox row; returns the reference to tell the resident."""
    row = _submission_row(effect, form, resident_id=resident_id, channel=channel, now=now)
    (submission_id,) = await _insert_with_free_references(session, [row])
    await session.execute(_INSERT_OUTBOX, _outbox_row(submission_id, now))
    return str(row["reference"])


def _submission_row(
    effect: Submit, form: Form | None, *, resident_id: int | None, channel: str, now: datetime
) -> dict[str, Any]:
    location = location_of(effect, form)
    ward = location.get("ward")
    source = _PLACE_SOURCES.get(str(location.get("source")), "none")
    return {
        "reference": new_reference(),
        "resident_id": resident_id,
        "channel": channel,
        "form_id": effect.form_id,
        "form_version": effect.form_version,
        "service_code": effect.service_code,
        "locale": effect.locale,
        "answers": effect.answers,
        "lat": location.get("lat"),
        "lon": location.get("lon"),
        "ward": str(ward) if ward is not None else None,
        "wards": [str(w) for w in location.get("wards") or ([ward] if ward is not None else [])],
        # Unknown places are stored as unknown, never left out: figures count them.
        "area_type": location.get("area_type") or "unknown",
        "precision": location.get("precision"),
        "suburb": location.get("suburb"),
        "place_source": source if location.get("precision") else "none",
        # What the resident typed where there is text ("12 Main Road, Sea Point"), else the place.
        "address_string": location.get("address") or location.get("place"),
        "status": "pending",
        "created_at": now,
        "updated_at": now,
    }


# The location answer's "source", as submissions.place_source says it.
_PLACE_SOURCES = {"gps": "pin", "place": "place"}


def _outbox_row(submission_id: int, now: datetime) -> dict[str, Any]:
    return {
        "submission_id": submission_id,
        "created_at": now,
        "next_attempt_at": now,
        "attempts": 0,
    }


async def _insert_with_free_references(
    db: AsyncSession | AsyncConnection, rows: list[dict[str, Any]]
) -> list[int]:
    """Insert ``rows``, drawing a new reference for any that clashed; their ids, in order.

    Each row's ``"reference"`` is the one stored when this returns.
    """
    ids: dict[str, int] = {}
    waiting = list(rows)
    statement = _INSERT_NEW_REFERENCE[dialect_name(db)]
    while waiting:
        seen: set[str] = set()
        for row in waiting:
            while row["reference"] in ids or row["reference"] in seen:
                row["reference"] = new_reference()
            seen.add(row["reference"])
        result = await db.execute(statement, waiting)
        ids.update((str(reference), int(i)) for i, reference in result.all())
        waiting = [row for row in waiting if row["reference"] not in ids]
        for row in waiting:  # taken by an earlier report: draw again
            row["reference"] = new_reference()
    return [ids[row["reference"]] for row in rows]


def _now(works: Sequence[StoreWork]) -> datetime:
    return max(w.now for w in works)


def location_of(effect: Submit, form: Form | None) -> dict[str, Any]:
    """The answer to the form's first location step (pin, place, ward, area type)."""
    if form is not None:
        for step in form.steps:
            answer = effect.answers.get(step.id)
            if step.type is StepType.LOCATION and isinstance(answer, dict):
                return answer
    return {}
