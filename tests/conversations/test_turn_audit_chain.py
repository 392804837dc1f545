"""Residents' turns write audit rows with no hash (they never wait for the chain); the next
staff action seals them, and editing one afterwards shows in ``staff.audit.verify``."""

from __future__ import annotations

from sqlalchemy import select, update

from staff import audit
from storage.models import AuditLog
from tests.conversations.conftest import Harness


async def test_opt_out_rows_are_chained_by_the_next_staff_action(harness: Harness) -> None:
    await harness.say("hello")
    await harness.say("STOP")
    await harness.say("START")
    async with harness.sessionmaker() as session:
        rows = (await session.execute(select(AuditLog.action, AuditLog.seq))).all()
    assert ("opt_out", None) in rows and ("opt_in", None) in rows

    async with harness.sessionmaker() as session, session.begin():
        await audit.record(session, actor="staff:1", action="audit.view", address="10.0.0.5")
    report = await audit.verify(harness.sessionmaker)
    assert report.broken is None and report.rows == len(rows) + 1

    async with harness.sessionmaker() as session, session.begin():
        await session.execute(
            update(AuditLog).where(AuditLog.action == "opt_out").values(action="opt_in")
        )
    report = await audit.verify(harness.sessionmaker)
    assert report.broken is not None and "changed" in report.broken.reason
