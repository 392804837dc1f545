"""SUBSCRIBE: every ward a place reaches, a ward by number, the wards of the latest report."""

from __future__ import annotations

from sqlalchemy import select

from forms_runtime.effects import Notice
from forms_runtime.gazetteer import default_gazetteer
from storage.models import Subscription
from tests.conversations.conftest import Harness


async def _wards(h: Harness) -> list[str]:
    async with h.sessionmaker() as session:
        return sorted((await session.scalars(select(Subscription.ward))).all(), key=int)


def _said(result: object) -> str:
    return " ".join(e.message for e in result.effects if isinstance(e, Notice))  # type: ignore[attr-defined]


async def test_a_town_over_several_wards_subscribes_to_all_of_them(harness: Harness) -> None:
    khayelitsha = default_gazetteer().match_place("Khayelitsha").best
    assert khayelitsha is not None and len(khayelitsha.wards) > 1
    said = _said(await harness.say("subscribe Khayelitsha"))
    assert await _wards(harness) == sorted(khayelitsha.wards, key=int)
    assert "Khayelitsha" in said and khayelitsha.wards[0] in said
    await harness.say("subscribe khayelitsha")  # again: nothing doubled
    assert await _wards(harness) == sorted(khayelitsha.wards, key=int)


async def test_a_ward_by_number(harness: Harness) -> None:
    assert "ward 57" in _said(await harness.say("subscribe ward 57"))
    await harness.say("subscribe 94")
    assert await _wards(harness) == ["57", "94"]
    assert "do not know" in _said(await harness.say("subscribe 999"))
    assert await _wards(harness) == ["57", "94"]


async def test_a_place_the_data_cannot_place_says_what_to_send(harness: Harness) -> None:
    # Bongweni (Khayelitsha) is in the suburb list but has no outline and no settlement.
    assert default_gazetteer().match_place("Bongweni").best.wards == ()  # type: ignore[union-attr]
    said = _said(await harness.say("subscribe Bongweni"))
    assert "SUBSCRIBE WARD" in said
    assert await _wards(harness) == []


async def test_an_official_suburb_subscribes_to_the_wards_of_its_outline(harness: Harness) -> None:
    # Sea Point could not be placed before the suburb outlines ("send SUBSCRIBE WARD").
    said = _said(await harness.say("subscribe Sea Point"))
    assert await _wards(harness) == ["54"]
    assert "news for Sea Point" in said
