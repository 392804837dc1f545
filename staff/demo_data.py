"""Synthetic requests for a living dashboard a minute after ``make run``, and their removal.

``seed`` writes requests across the city's real wards, suburbs and informal settlements (from the
gazetteer), over the last ``days`` days: a service, a place with its ward and area type, a pin
near the place, when it was received, acknowledged and closed. Informal settlements wait longer
(as the issue asks the figures to show, should it be so), and a few wards much longer, so the
equity watch has something to find. Every row is marked ``demo``: the open data publishes the
mark, nothing files them with the city (they have no outbox row, and the status poller skips
them: they have no service request id of the city's), and ``clear`` removes them all.

Seeded, so the same arguments give the same requests. 100,000 take a few seconds on SQLite.

Example::

    async with sessionmaker() as session, session.begin():
        await seed(session, gazetteer, requests=100_000, now=utc_now())
        await clear(session)      # -> 100000
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from forms_runtime.gazetteer import Gazetteer
from forms_runtime.gazetteer.places import Place
from staff.analytics import target_hours
from storage.models import Submission, TrackedRequest

__all__ = ["DEMO_CHANNEL", "DEMO_PREFIX", "clear", "seed"]

DEMO_PREFIX = "DM-"
DEMO_CHANNEL = "demo"
_BATCH = 5000
_SUBMISSIONS = cast(Table, Submission.__table__)
_TRACKED = cast(Table, TrackedRequest.__table__)
# ``submissions.suburb`` comes with the request places (migration 0015): filled where it exists.
_HAS_SUBURB = "suburb" in _SUBMISSIONS.c
# (service code, its form, how often residents report it)
_SERVICES: tuple[tuple[str, str, int], ...] = (
    ("ROADS-POTHOLE", "pothole", 20),
    ("WATER-LEAK", "water_leak", 16),
    ("WATER-NO-SUPPLY", "no_water", 10),
    ("SEWER-BLOCKAGE", "sewage", 12),
    ("ELEC-OUTAGE", "power_outage", 12),
    ("ELEC-STREETLIGHT", "streetlight", 10),
    ("WASTE-REFUSE-MISSED", "refuse_missed", 10),
    ("WASTE-DUMPING", "illegal_dumping", 8),
    ("GENERAL-ENQUIRY", "general_enquiry", 2),
)
# How much longer than a formal area's a request in an informal settlement waits.
_INFORMAL_SLOWER = 1.7
# A pin lands within about this many metres of a settlement's point, or of a suburb's.
_SETTLEMENT_SCATTER = 150.0
_SUBURB_SCATTER = 2500.0


@dataclass(frozen=True, slots=True)
class _Places:
    gazetteer: Gazetteer
    settlements: Sequence[Place]
    suburbs: Sequence[Place]
    slow_wards: frozenset[str]


def _places(gazetteer: Gazetteer, rng: random.Random) -> _Places:
    placed = [p for p in gazetteer.places if p.lat is not None and p.lon is not None and p.wards]
    settlements = [p for p in placed if p.kind == "informal_settlement"]
    suburbs = [p for p in placed if p.kind != "informal_settlement"]
    wards = sorted({p.wards[0] for p in settlements})
    slow = frozenset(rng.sample(wards, k=min(6, len(wards))))
    return _Places(gazetteer, settlements, suburbs, slow)


def _pin(rng: random.Random, places: _Places) -> tuple[float, float, str, str, str]:
    """A pin in the city: in a settlement, or scattered around a suburb or town (where the
    gazetteer then says whether it fell in a settlement or a formal area)."""
    while True:
        in_settlement = rng.random() < 0.3 and bool(places.settlements)
        place = rng.choice(places.settlements if in_settlement else places.suburbs)
        assert place.lat is not None and place.lon is not None
        scatter = _SETTLEMENT_SCATTER if in_settlement else _SUBURB_SCATTER
        lat = place.lat + rng.gauss(0, scatter) / 111_320
        lon = place.lon + rng.gauss(0, scatter) / (111_320 * math.cos(math.radians(place.lat)))
        found = places.gazetteer.locate(lat, lon)
        if found.ward is not None:
            # The suburb or town it was scattered around (a settlement's own town).
            named = (place.town or place.name) if in_settlement else place.name
            return lat, lon, found.ward, found.area_type, named


def _one(
    rng: random.Random, places: _Places, number: int, now: datetime, days: int
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    service, form, _ = rng.choices(_SERVICES, weights=[w for _, _, w in _SERVICES])[0]
    lat, lon, ward, area_type, named = _pin(rng, places)
    received = now - timedelta(seconds=rng.uniform(0, days * 86400))
    reference = f"{DEMO_PREFIX}{number}"
    informal = area_type == "informal_settlement"
    slower = (_INFORMAL_SLOWER if informal else 1.0) * (2.0 if ward in places.slow_wards else 1.0)
    submission: dict[str, Any] = {
        "reference": reference,
        "resident_id": None,
        "channel": DEMO_CHANNEL,
        "form_id": form,
        "form_version": 1,
        "service_code": service,
        "locale": "en",
        "answers": {},
        "lat": round(lat, 6),
        "lon": round(lon, 6),
        "ward": ward,
        "wards": [ward],
        "area_type": area_type,
        "precision": "pin",
        "address_string": None,
        "status": "pending",
        "service_request_id": None,
        "created_at": received,
        "updated_at": received,
        "demo": True,
    }
    if _HAS_SUBURB:
        submission["suburb"] = named
    acknowledged = received + timedelta(hours=rng.lognormvariate(math.log(3 * slower), 0.8))
    if acknowledged > now:
        return submission, None
    close_hours = rng.lognormvariate(math.log(0.5 * target_hours(service) * slower), 0.7)
    closed = received + timedelta(hours=close_hours)
    done = closed <= now and rng.random() < 0.97  # a few stay open, forgotten
    submission["status"] = "closed" if done else "filed"
    tracked = {
        "service_request_id": reference,
        "status": "closed" if done else "open",
        "status_notes": None,
        "acknowledged_at": acknowledged,
        "closed_at": closed if done else None,
        "city_updated_at": closed if done else acknowledged,
        "last_polled_at": now,
    }
    return submission, tracked


async def seed(
    session: AsyncSession,
    gazetteer: Gazetteer,
    *,
    requests: int,
    now: datetime,
    days: int = 180,
    seed_value: int = 14,
) -> int:
    """Write ``requests`` demo requests received over the last ``days`` days; their number."""
    rng = random.Random(seed_value)
    places = _places(gazetteer, rng)
    first = (await session.scalar(select(func.max(Submission.id))) or 0) + 1
    made = 0
    while made < requests:
        size = min(_BATCH, requests - made)
        pairs = [_one(rng, places, first + made + i, now, days) for i in range(size)]
        # Oldest first, so ids follow time as they do for real reports.
        pairs.sort(key=lambda pair: pair[0]["created_at"])
        # Core executemany, without RETURNING (which SQLite's driver runs a row at a time);
        # the ids are then read back by reference.
        connection = await session.connection()
        await connection.execute(insert(_SUBMISSIONS), [s for s, _ in pairs])
        found = await connection.execute(
            select(Submission.reference, Submission.id).where(
                Submission.reference.in_([s["reference"] for s, _ in pairs])
            )
        )
        ids = {reference: row_id for reference, row_id in found}
        tracked = [{**t, "submission_id": ids[s["reference"]]} for s, t in pairs if t is not None]
        if tracked:
            await connection.execute(insert(_TRACKED), tracked)
        made += size
    return made


async def clear(session: AsyncSession) -> int:
    """Remove every demo request (their tracking rows go with them); how many there were."""
    doomed = select(Submission.id).where(Submission.demo).scalar_subquery()
    await session.execute(delete(TrackedRequest).where(TrackedRequest.submission_id.in_(doomed)))
    result = await session.execute(delete(Submission).where(Submission.demo))
    return int(getattr(result, "rowcount", 0) or 0)
