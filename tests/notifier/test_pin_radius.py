"""Pins with a real radius: a pin alert hears a broadcast around a point when the two circles
touch (just inside and just outside, north and east of the point), whatever ward it lies in;
it hears a broadcast to wards its circle reaches, as a ward alert does; and an incident in such a
ward, on SQLite and PostgreSQL."""

from __future__ import annotations

import math

from forms_runtime.gazetteer import default_gazetteer
from forms_runtime.gazetteer.geometry import METRES_PER_DEGREE
from storage.models import Resident, ResidentAddress, Subscription
from storage.types import utc_now
from tests.e2e.city import City
from tests.notifier.test_broadcasts import BOTH, EN, _sms_to, city, official

__all__ = ["city"]

# The broadcast's point, in ward 94, and the radius official and pin each draw.
LAT, LON = -34.0363, 18.6776
POINT_RADIUS, PIN_RADIUS = 800, 500
NORTH = 1 / METRES_PER_DEGREE
EAST = 1 / (METRES_PER_DEGREE * math.cos(math.radians(LAT)))


async def pin_resident(city: City, phone: str, lat: float, lon: float, wards: list[str]) -> int:
    async with city.services.session_factory() as session, session.begin():
        row = Resident(locale="en")
        session.add(row)
        await session.flush()
        session.add(
            ResidentAddress(
                resident_id=row.id, channel="sms", address=phone, last_inbound_at=utc_now()
            )
        )
        for ward in wards:
            session.add(
                Subscription(
                    resident_id=row.id,
                    ward=ward,
                    label=f"pin {lat:.4f},{lon:.4f}",
                    latitude=lat,
                    longitude=lon,
                    radius_m=PIN_RADIUS,
                )
            )
        return row.id


@BOTH
async def test_a_broadcast_around_a_point_reaches_pins_whose_circle_touches_it(
    city: City,
) -> None:
    touching = POINT_RADIUS + PIN_RADIUS
    # Each pin's rows name wards other than the point's: only distance can bring them in.
    await pin_resident(city, "+27820000001", LAT + (touching - 2) * NORTH, LON, ["1"])
    await pin_resident(city, "+27820000002", LAT + (touching + 2) * NORTH, LON, ["1"])
    await pin_resident(city, "+27820000003", LAT, LON + (touching - 2) * EAST, ["2"])
    await pin_resident(city, "+27820000004", LAT, LON + (touching + 2) * EAST, ["2"])
    author = await official(city, "b@city.gov", ["broadcaster"])
    status, created = await author.call(
        "POST",
        "/api/v1/broadcasts",
        {
            "title": "Burst main",
            "text_en": EN,
            "latitude": LAT,
            "longitude": LON,
            "radius_m": POINT_RADIUS,
        },
    )
    assert status == 201 and created["wards"] == ["94"]
    status, preview = await author.call("GET", f"/api/v1/broadcasts/{created['id']}/preview")
    assert preview["recipients"] == 2
    await author.call("POST", f"/api/v1/broadcasts/{created['id']}/send")
    await city.services.broadcasts.run_until_idle()
    assert sorted(_sms_to(city)) == ["+27820000001", "+27820000003"]


@BOTH
async def test_a_pin_by_a_ward_boundary_hears_the_ward_across_it(city: City) -> None:
    gazetteer = default_gazetteer()
    wards = list(gazetteer.wards_near(LAT, LON, PIN_RADIUS))
    across = wards[1]  # the pin lies in 94, within 500 m of this ward
    assert wards[0] == "94" and gazetteer.locate(LAT, LON).ward == "94"
    await pin_resident(city, "+27820000001", LAT, LON, wards)
    far = next(w for w in gazetteer.wards_near(LAT, LON, 5000) if w not in wards)
    author = await official(city, "b@city.gov", ["broadcaster"])
    for ward, title in ((across, "across"), (far, "far")):
        status, created = await author.call(
            "POST", "/api/v1/broadcasts", {"title": title, "text_en": title, "wards": [ward]}
        )
        assert status == 201
        await author.call("POST", f"/api/v1/broadcasts/{created['id']}/send")
    # An incident declared for the ward across the boundary reaches the pin too.
    status, _ = await author.call(
        "POST",
        "/api/v1/incidents",
        {"title": "Outage", "services": ["power_outage"], "wards": [across], "text_en": "dark"},
    )
    assert status == 201
    await city.services.broadcasts.run_until_idle()
    assert city.twilio is not None
    bodies = [r.form["Body"] for r in city.twilio.messages()]
    assert sorted(b.split(" ")[0] for b in bodies) == ["across", "dark"]
