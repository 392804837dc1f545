"""A report the city already knows about: the resident who follows the area hears the
official's message and may take updates instead of filing (a duplicate avoided), or report it
anyway; other services, other areas and ended incidents change nothing."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from forms_runtime.effects import Ask, Notice, Reject
from storage.models import Incident, StaffAccount, Submission, Subscription
from tests.conversations.conftest import Harness

KNOWN = "No water in ward 9: a burst main."
KNOWN_ZU = "Awekho amanzi ewadini 9: ipayipi eliqhumile."


async def _declare(h: Harness, *, wards: list[str], services: list[str]) -> int:
    async with h.sessionmaker() as session, session.begin():
        author = StaffAccount(
            email=f"a{wards[0]}@city.gov", roles=["broadcaster"], password_hash="-"
        )
        session.add(author)
        await session.flush()
        row = Incident(
            author_id=author.id,
            title="Burst main",
            services=services,
            topic="water",
            wards=wards,
            texts={"en": KNOWN, "zu": KNOWN_ZU},
            starts_at=h.clock() - timedelta(hours=1),
            expected_end_at=h.clock() + timedelta(hours=8),
        )
        session.add(row)
        await session.flush()
        return row.id


async def _follow(h: Harness, ward: str) -> None:
    await h.say("hello")  # the resident exists
    await h.say(f"subscribe ward {ward}")


def _texts(result: object) -> list[str]:
    return [
        e.prompt if isinstance(e, Ask) else e.message
        for e in result.effects  # type: ignore[attr-defined]
        if isinstance(e, Notice | Ask | Reject)
    ]


async def _choose_no_water(h: Harness) -> object:
    return await h.say(option_id="no_water")


async def test_updates_instead_of_a_report_count_a_duplicate_avoided(harness: Harness) -> None:
    incident = await _declare(harness, wards=["9"], services=["no_water"])
    await _follow(harness, "9")
    said = _texts(await _choose_no_water(harness))
    assert said[0] == f"{KNOWN} Expected to be fixed by 2026-03-02 17:00."
    assert "already knows" in said[1]
    said = _texts(await harness.say("yes"))
    assert said == ["You will get updates about it. Send STOP to stop all messages."]
    async with harness.sessionmaker() as session:
        found = await session.get(Incident, incident)
        assert found is not None and found.duplicates_avoided == 1
        assert await session.scalar(select(Submission.id)) is None
        assert (await session.scalars(select(Subscription.ward))).all() == ["9"]


async def test_no_opens_the_report_as_usual(harness: Harness) -> None:
    await _declare(harness, wards=["9"], services=["no_water"])
    await _follow(harness, "9")
    await _choose_no_water(harness)
    unclear = _texts(await harness.say("maybe"))
    assert unclear[0] == "Reply YES or NO." and "already knows" in unclear[1]
    opened = await harness.say("no")
    asks = [e for e in opened.effects if isinstance(e, Ask)]
    assert asks and asks[-1].step_id != "incident"


async def test_in_the_residents_language(harness: Harness) -> None:
    await _declare(harness, wards=["9"], services=["no_water"])
    await harness.say("hello")
    await harness.say("language zu")
    await harness.say("subscribe ward 9")
    said = _texts(await _choose_no_water(harness))
    assert said[0].startswith(KNOWN_ZU) and "Idolobha selikwazi" in said[1]


async def test_other_services_areas_and_ended_incidents_change_nothing(harness: Harness) -> None:
    incident = await _declare(harness, wards=["9"], services=["power_outage"])
    await _follow(harness, "9")
    assert not any("already knows" in t for t in _texts(await _choose_no_water(harness)))
    await harness.say("menu")
    await _declare(harness, wards=["12"], services=["no_water"])
    assert not any("already knows" in t for t in _texts(await _choose_no_water(harness)))
    await harness.say("menu")
    async with harness.sessionmaker() as session, session.begin():
        await session.execute(
            update(Incident)
            .where(Incident.id == incident)
            .values(services=["no_water"], status="resolved")
        )
    harness.clock.advance(timedelta(minutes=1))  # past the open-incident cache
    assert not any("already knows" in t for t in _texts(await _choose_no_water(harness)))
