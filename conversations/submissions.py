"""A finished form becomes a submission and its outbox row, in the turn's one transaction.

The resident is told "received, your reference is CT-XXXXXX" only after that transaction commits
(DESIGN.md: nothing is lost). The filer picks the outbox row up later.

Example::

    reference = await store_submission(session, submit, form, resident_id=7, channel="sms", now=now)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.db.models import Submission, SubmissionOutbox
from conversations.references import new_reference
from forms_runtime.effects import Submit
from forms_runtime.model import Form, StepType

__all__ = ["store_submission"]

_submissions = cast(Table, Submission.__table__)
_outbox = cast(Table, SubmissionOutbox.__table__)


async def store_submission(
    session: AsyncSession,
    effect: Submit,
    form: Form | None,
    *,
    resident_id: int | None,
    channel: str,
    now: datetime,
) -> str:
    """Insert the submission and its outbox row; returns the reference to tell the resident."""
    reference = await _free_reference(session)
    location = _location(effect, form)
    ward = location.get("ward")
    submission_id = (
        await session.execute(
            insert(_submissions)
            .values(
                reference=reference,
                resident_id=resident_id,
                channel=channel,
                form_id=effect.form_id,
                form_version=effect.form_version,
                service_code=effect.service_code,
                locale=effect.locale,
                answers=effect.answers,
                lat=location.get("lat"),
                lon=location.get("lon"),
                ward=str(ward) if ward is not None else None,
                area_type=location.get("area_type"),
                address_string=location.get("place"),
                status="pending",
                created_at=now,
                updated_at=now,
            )
            .returning(_submissions.c.id)
        )
    ).scalar_one()
    await session.execute(
        insert(_outbox).values(
            submission_id=submission_id, created_at=now, next_attempt_at=now, attempts=0
        )
    )
    return reference


async def _free_reference(session: AsyncSession) -> str:
    # 25**6 references: a clash is rare, but a unique-key error would fail the resident's report.
    while True:
        reference = new_reference()
        taken = await session.execute(
            select(_submissions.c.id).where(_submissions.c.reference == reference)
        )
        if taken.first() is None:
            return reference


def _location(effect: Submit, form: Form | None) -> dict[str, Any]:
    """The answer to the form's first location step (pin, place, ward, area type)."""
    if form is not None:
        for step in form.steps:
            answer = effect.answers.get(step.id)
            if step.type is StepType.LOCATION and isinstance(answer, dict):
                return answer
    return {}
