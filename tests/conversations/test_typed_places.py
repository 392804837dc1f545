"""A typed place is stored with its representative point, the text, its wards, area type and
precision (issue 10, defect 4); a pin is stored as a pin. Real SQLite, the standard forms."""

from __future__ import annotations

import random

from sqlalchemy import select

from forms_runtime.effects import Ask, GeoPoint, Inbound, Reject, Review
from forms_runtime.gazetteer import default_gazetteer
from forms_runtime.sample_answers import sample_answer
from storage.models import Submission
from tests.conversations.conftest import Harness


async def _report(h: Harness, *where: str | GeoPoint) -> Submission:
    """File a pothole, answering its location question with ``where`` (one message each)."""
    await h.say("menu")
    result = await h.say("pothole")
    places = list(where)
    rng = random.Random(3)
    for _ in range(40):
        if result.reference is not None:
            async with h.sessionmaker() as session:
                return (await session.execute(select(Submission))).scalar_one()
        last = result.effects[-1]
        assert isinstance(last, Ask | Review), result.effects
        inbound: Inbound = sample_answer(last, rng, typos=False)
        if isinstance(last, Ask) and last.step_id == "consent":
            inbound = Inbound(text="yes")
        elif isinstance(last, Ask) and last.kind == "location" and places:
            place = places.pop(0)
            inbound = (
                Inbound(location=place) if isinstance(place, GeoPoint) else Inbound(text=place)
            )
        elif (
            isinstance(last, Ask)
            and last.optional
            and any(isinstance(e, Reject) for e in result.effects)
        ):
            inbound = Inbound(text="skip")
        result = await h.say(inbound.text, option_id=inbound.option_id, location=inbound.location)
    raise AssertionError(f"form did not finish: {result.effects}")


async def test_a_typed_town_over_several_wards_is_filed_with_all_of_them(harness: Harness) -> None:
    khayelitsha = default_gazetteer().get("Khayelitsha")
    assert khayelitsha is not None and len(khayelitsha.wards) > 1
    # "Khayelitsha" alone is a whole town: the form asks where in it, then files both.
    stored = await _report(harness, "Khayelitsha", "12 Makhaza Street")
    assert (stored.lat, stored.lon) == (khayelitsha.lat, khayelitsha.lon)
    assert stored.address_string == "12 Makhaza Street, Khayelitsha"
    assert stored.ward == khayelitsha.ward
    assert stored.wards == list(khayelitsha.wards)
    assert (stored.area_type, stored.precision) == ("mixed", "street")
    location = stored.answers["location"]
    assert location["approximate"] is True and location["source"] == "place"


async def test_a_typed_settlement_is_filed_at_settlement_precision(harness: Harness) -> None:
    stored = await _report(harness, "Enkanini informal settlement")
    assert (stored.ward, stored.wards) == ("95", ["95"])
    assert (stored.area_type, stored.precision) == ("informal_settlement", "settlement")
    assert stored.address_string == "Enkanini informal settlement"
    assert stored.lat is not None and stored.lon is not None


async def test_a_pin_is_filed_at_pin_precision(harness: Harness) -> None:
    stored = await _report(harness, GeoPoint(-34.0363, 18.6776))  # Khayelitsha, ward 94
    assert (stored.ward, stored.wards, stored.precision) == ("94", ["94"], "pin")
