"""Requests placed after they are stored: at the city's own coordinates (the status poller), and
older rows by ``backfill`` (``citybot data backfill``), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from city.open311.client import Open311Backend
from city.request_places import backfill
from city.status_poller import StatusPoller
from forms_runtime.gazetteer import default_gazetteer
from storage.models import Open311Request, Submission, SubmissionOutbox
from storage.session import create_engine, create_sessionmaker
from tests.city.test_filer import World, _world, drain
from tests.pothole_report import pothole_submission
from tests.storage.databases import postgres_database, sqlite_database

GAZETTEER = default_gazetteer()
MAKHAZA = GAZETTEER.get("Makhaza Informal")
assert MAKHAZA is not None and MAKHAZA.lat is not None and MAKHAZA.lon is not None
FORMAL = (-34.0363, 18.6776)  # ward 94, in no informal settlement
OUTSIDE = (-33.0, 19.5)  # far outside the city


@pytest.fixture(params=["sqlite", "postgresql"])
async def url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    database = sqlite_database(tmp_path) if request.param == "sqlite" else postgres_database()
    async with database as database_url:
        yield database_url


@pytest.fixture
async def world(url: str) -> AsyncIterator[World]:
    async with _world(url) as w:
        yield w


async def _add_to_file(session: AsyncSession, *rows: dict[str, Any]) -> None:
    for row in rows:
        submission = Submission(**row)
        session.add(submission)
        await session.flush()
        session.add(SubmissionOutbox(submission_id=submission.id))


async def _rows(sessionmaker) -> dict[str, Submission]:
    async with sessionmaker() as session:
        rows = (await session.scalars(select(Submission))).all()
    return {r.reference: r for r in rows}


# -- the city's coordinates ------------------------------------------------------------------


async def test_the_city_point_places_a_request_known_only_by_its_suburb(world: World) -> None:
    async with world.sessionmaker() as session, session.begin():
        typed = pothole_submission(
            "CT-SUBURB", lat=None, lon=None, ward=None, wards=[], area_type="unknown",
            precision="suburb", suburb="Sea Point", place_source="place",
            address_string="12 Main Road, Sea Point",
        )  # fmt: skip
        pinned = pothole_submission(
            "CT-PINNED", ward="94", wards=["94"], area_type="formal", precision="pin",
            place_source="pin",
        )  # fmt: skip
        await _add_to_file(session, typed, pinned)
    async with world.filer() as filer:
        await drain(filer)
    # The city's crew put both on its map, in Makhaza (as a city's back end geocodes a report).
    async with world.sessionmaker() as session, session.begin():
        for row in (await session.scalars(select(Open311Request))).all():
            row.lat, row.long = MAKHAZA.lat, MAKHAZA.lon
    backend = Open311Backend(world.url)
    poller = StatusPoller(world.sessionmaker, backend, gazetteer=GAZETTEER)
    try:
        assert (await poller.poll_once()).requests == 2
        rows = await _rows(world.sessionmaker)
        typed_row, pinned_row = rows["CT-SUBURB"], rows["CT-PINNED"]
        assert (typed_row.lat, typed_row.lon) == (MAKHAZA.lat, MAKHAZA.lon)
        assert typed_row.ward == MAKHAZA.ward and typed_row.wards == [MAKHAZA.ward]
        assert typed_row.area_type == "informal_settlement"
        assert typed_row.suburb == "Khayelitsha"  # the settlement's own town
        assert (typed_row.precision, typed_row.place_source) == ("point", "city")
        # The resident's own pin is closer than anything the city says: kept.
        assert (pinned_row.ward, pinned_row.precision, pinned_row.place_source) == (
            "94",
            "pin",
            "pin",
        )
        assert pinned_row.lat == pothole_submission("x")["lat"]
        # Placed to a point once: a later move on the city's map is the city's business.
        async with world.sessionmaker() as session, session.begin():
            for request in (await session.scalars(select(Open311Request))).all():
                request.lat, request.long = FORMAL
        await poller.poll_once()
        again = (await _rows(world.sessionmaker))["CT-SUBURB"]
        assert (again.lat, again.ward) == (MAKHAZA.lat, MAKHAZA.ward)
    finally:
        await backend.close()


async def test_a_city_point_outside_the_city_changes_nothing(world: World) -> None:
    async with world.sessionmaker() as session, session.begin():
        row = pothole_submission(
            "CT-NOWHERE", lat=None, lon=None, ward=None, wards=[], area_type="unknown",
            precision=None, place_source="none", address_string="behind the big tree",
        )  # fmt: skip
        await _add_to_file(session, row)
    async with world.filer() as filer:
        await drain(filer)
    async with world.sessionmaker() as session, session.begin():
        for request in (await session.scalars(select(Open311Request))).all():
            request.lat, request.long = OUTSIDE
    backend = Open311Backend(world.url)
    try:
        await StatusPoller(world.sessionmaker, backend, gazetteer=GAZETTEER).poll_once()
    finally:
        await backend.close()
    stored = (await _rows(world.sessionmaker))["CT-NOWHERE"]
    assert (stored.lat, stored.ward, stored.area_type, stored.place_source) == (
        None,
        None,
        "unknown",
        "none",
    )


# -- backfill ------------------------------------------------------------------------------


def _older(reference: str, answers: dict[str, Any] | None, **columns: Any) -> dict[str, Any]:
    """A row as stored before requests were placed: no suburb, no place_source."""
    row = pothole_submission(reference, **{"lat": None, "lon": None, **columns})
    row["answers"] = {"kind": "pothole", **({"location": answers} if answers else {})}
    return row


OLDER = [
    # A pin in Makhaza Informal, stored before wards and precision were kept.
    _older(
        "CT-OLD001",
        {"lat": MAKHAZA.lat, "lon": MAKHAZA.lon, "source": "gps", "ward": "99"},
        lat=MAKHAZA.lat,
        lon=MAKHAZA.lon,
        ward="99",
        area_type="informal_settlement",
    ),
    # A place the resident picked, with a street.
    _older(
        "CT-OLD002",
        {"place": "Guguletu", "address": "NY1 street 12, Guguletu", "source": "place"},
        address_string="NY1 street 12, Guguletu",
    ),
    # An address the matcher of its day did not place; today's does.
    _older(
        "CT-OLD003",
        {"address": "next to the clinic in Makhaza Informl", "source": "address"},
        address_string="next to the clinic in Makhaza Informl",
    ),
    # Nothing to place it by.
    _older(
        "CT-OLD004",
        {"address": "behind the big tree", "source": "address"},
        address_string="behind the big tree",
    ),
    # Its answers erased on request: the stored point remains.
    _older("CT-OLD005", None, lat=FORMAL[0], lon=FORMAL[1], precision="pin"),
]


async def test_backfill_places_older_rows_once_in_batches(url: str) -> None:
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    try:
        async with sessionmaker() as session, session.begin():
            session.add_all(Submission(**row) for row in OLDER)
            # Stored after requests were placed: not read again.
            session.add(
                Submission(**pothole_submission("CT-NEW001", suburb="X", place_source="pin"))
            )
        report = await backfill(sessionmaker, GAZETTEER, batch_size=2)
        assert (report.placed, report.unknown) == (4, 1)
        assert report.sources == {"pin": 2, "place": 1, "text": 1, "none": 1}

        rows = await _rows(sessionmaker)
        pin = rows["CT-OLD001"]
        assert (pin.ward, pin.wards, pin.area_type, pin.precision, pin.place_source) == (
            MAKHAZA.ward,
            [MAKHAZA.ward],
            "informal_settlement",
            "pin",
            "pin",
        )
        assert pin.suburb == "Khayelitsha"
        guguletu = GAZETTEER.get("Guguletu")
        assert guguletu is not None
        picked = rows["CT-OLD002"]
        assert (picked.suburb, picked.ward, picked.area_type, picked.precision) == (
            "Guguletu",
            guguletu.ward,
            "mixed",
            "street",
        )
        text = rows["CT-OLD003"]
        assert (text.suburb, text.ward, text.area_type, text.precision, text.place_source) == (
            "Khayelitsha",
            MAKHAZA.ward,
            "informal_settlement",
            "settlement",
            "text",
        )
        unknown = rows["CT-OLD004"]
        assert (unknown.ward, unknown.suburb, unknown.area_type, unknown.place_source) == (
            None,
            None,
            "unknown",
            "none",
        )
        erased = rows["CT-OLD005"]
        assert (erased.ward, erased.area_type, erased.precision, erased.place_source) == (
            "94",
            "formal",
            "pin",
            "pin",
        )
        assert rows["CT-NEW001"].suburb == "X"  # untouched

        again = await backfill(sessionmaker, GAZETTEER)
        assert (again.placed, again.unknown) == (0, 0)
    finally:
        await engine.dispose()
