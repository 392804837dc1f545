"""An admin exports or erases a resident's data: the resident's own export, the same erasure as
DELETE MY DATA, each audited in the hash chain; nothing of another resident is touched or shown.
On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from forms_runtime.loader import standard_forms
from staff import audit
from staff.residents import ResidentNotFound, erase_resident, export_resident
from storage.models import (
    AuditLog,
    MessageLog,
    Resident,
    ResidentAddress,
    Submission,
    Subscription,
)

Sessions = async_sessionmaker[AsyncSession]
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def _resident(sessions: Sessions, phone: str, reference: str) -> int:
    """A resident on SMS with one pothole report (their phone number a personal answer), a ward
    followed and one message each way."""
    async with sessions() as session, session.begin():
        resident = Resident(locale="zu", consent_at=NOW)
        session.add(resident)
        await session.flush()
        session.add_all(
            [
                ResidentAddress(resident_id=resident.id, channel="sms", address=phone),
                Submission(
                    reference=reference,
                    resident_id=resident.id,
                    channel="sms",
                    form_id="pothole",
                    form_version=1,
                    service_code="ROADS-POTHOLE",
                    locale="zu",
                    answers={"kind": "deep", "phone": phone, "photo": {"url": "https://t/f"}},
                    ward="94",
                    area_type="informal_settlement",
                ),
                Subscription(resident_id=resident.id, ward="94"),
                MessageLog(
                    direction="in", channel="sms", address=phone, resident_id=resident.id, text="hi"
                ),
                MessageLog(
                    direction="out",
                    channel="sms",
                    address=phone,
                    resident_id=resident.id,
                    text="Sawubona",
                ),
            ]
        )
        return resident.id


async def test_an_admin_export_is_the_residents_data_only_and_audited(sessions: Sessions) -> None:
    theirs = await _resident(sessions, "+27820000001", "CT-AAAAAA")
    mine = await _resident(sessions, "+27830000002", "CT-BBBBBB")
    async with sessions() as session, session.begin():
        record = await export_resident(session, mine, actor="staff:3", address="10.0.0.5")
    assert record["resident"]["id"] == mine and record["resident"]["language"] == "zu"
    assert [a["address"] for a in record["addresses"]] == ["+27830000002"]
    (report,) = record["reports"]
    assert report["reference"] == "CT-BBBBBB" and report["answers"]["phone"] == "+27830000002"
    # A photo shows as sent; the provider's URL, and analytics labels, are the city's own.
    assert report["answers"]["photo"] == {"photo": True} and "area_type" not in report
    assert [m["text"] for m in record["messages"]] == ["hi", "Sawubona"]
    assert "+27820000001" not in repr(record) and "CT-AAAAAA" not in repr(record)
    assert f"resident:{theirs}" not in repr(record)
    async with sessions() as session:
        (row,) = (await session.execute(select(AuditLog))).scalars().all()
    assert (row.actor, row.action, row.subject, row.address) == (
        "staff:3",
        "resident.export",
        f"resident:{mine}",
        "10.0.0.5",
    )
    assert (await audit.verify(sessions)).broken is None


async def test_an_admin_erasure_is_delete_my_data_and_audited(sessions: Sessions) -> None:
    other = await _resident(sessions, "+27820000001", "CT-AAAAAA")
    erased = await _resident(sessions, "+27830000002", "CT-BBBBBB")
    async with sessions() as session, session.begin():
        counts = await erase_resident(
            session, standard_forms(), erased, actor="staff:3", address="10.0.0.5", now=NOW
        )
    assert (counts.reports, counts.messages) == (1, 2)
    # For the API to forget the conversation's state on each erased address.
    assert counts.addresses == (("sms", "+27830000002"),)
    async with sessions() as session, session.begin():
        record = await export_resident(session, erased, actor="staff:3")
        untouched = await export_resident(session, other, actor="staff:3")
    assert record["addresses"] == [] and record["subscriptions"] == []
    assert record["resident"]["consent_given_at"] is None
    assert record["resident"]["erased_at"] == NOW.isoformat()
    assert all(m["text"] is None for m in record["messages"])
    (report,) = record["reports"]
    assert report["reference"] == "CT-BBBBBB" and report["answers"] == {
        "kind": "deep",
        "photo": {"photo": True},
    }
    assert "+27830000002" not in repr(record)
    assert untouched["addresses"][0]["address"] == "+27820000001"
    assert untouched["reports"][0]["answers"]["phone"] == "+27820000001"
    async with sessions() as session:
        rows = (await session.execute(select(AuditLog).order_by(AuditLog.id))).scalars().all()
    erasure = rows[0]
    assert (erasure.actor, erasure.action, erasure.subject) == (
        "staff:3",
        "resident.erase",
        f"resident:{erased}",
    )
    assert erasure.details == {"reports": 1, "messages": 2}  # counts, never the addresses
    assert (await audit.verify(sessions)).broken is None


@pytest.mark.parametrize("action", ["export", "erase"])
async def test_an_unknown_resident_is_not_found_and_nothing_is_written(
    sessions: Sessions, action: str
) -> None:
    with pytest.raises(ResidentNotFound):
        async with sessions() as session, session.begin():
            if action == "export":
                await export_resident(session, 404, actor="staff:3")
            else:
                await erase_resident(session, standard_forms(), 404, actor="staff:3")
    async with sessions() as session:
        assert (await session.execute(select(AuditLog))).first() is None
