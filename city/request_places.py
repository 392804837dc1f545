"""Placing requests after they are stored: from the city's own coordinates, and older rows.

A request is placed when it is stored (``conversations.submissions``: the resident's pin or the
place the gazetteer matched). Two things place it later:

- the city back end's coordinates: when a filed request comes back from Open311 with
  ``lat``/``long`` and the request was placed no closer than a suburb (or not at all), the status
  poller stores the city's point, its ward, settlement and area type (precision ``point``,
  ``place_source`` ``city``); ``city_placement``;
- ``citybot data backfill``: rows stored before requests were placed (``place_source`` NULL) are
  placed from their stored pin, picked place or place text, in batches; ``backfill``.

Unknown places are stored as unknown (``place_source`` ``none``, area type ``unknown``), never
left out, so figures count them.

Example::

    report = await backfill(sessionmaker, default_gazetteer())
    report.placed, report.unknown   # (1180, 20)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from forms_runtime.gazetteer import Gazetteer
from forms_runtime.gazetteer import placement as placing
from storage.models import Submission

__all__ = ["BackfillReport", "backfill", "city_placement", "needs_city_point"]

# Requests placed no closer than this take the city's point when it comes (a suburb's point is
# an estimate; "street" keeps the suburb's point with the street in the address text).
_COARSE = frozenset({None, "suburb", "street"})
# The location answer's "source", as place_source says it (a row also says "city", "point" or
# "none": see storage.models.reports).
_ANSWER_SOURCES = {"gps": "pin", "place": "place", "address": "text"}


def needs_city_point(precision: str | None) -> bool:
    """Whether a request placed this precisely would be placed better by the city's point."""
    return precision in _COARSE


def city_placement(
    gazetteer: Gazetteer, submission_id: int, lat: float, lon: float
) -> dict[str, Any] | None:
    """The row update placing a request at the city's point; None outside the city."""
    placed = placing.of_point(gazetteer, lat, lon, precision="point")
    if not placed.known:
        return None
    row = {"id": submission_id, "lat": lat, "lon": lon, **_columns(placed), "place_source": "city"}
    if placed.suburb is None:
        del row["suburb"]  # outside every settlement: the suburb the resident named still holds
    return row


@dataclass
class BackfillReport:
    """What one ``backfill`` run did: rows placed (by what placed them) and rows still unknown."""

    sources: Counter[str] = field(default_factory=Counter)

    @property
    def placed(self) -> int:
        return sum(n for source, n in self.sources.items() if source != "none")

    @property
    def unknown(self) -> int:
        return self.sources["none"]


async def backfill(
    sessionmaker: async_sessionmaker[AsyncSession],
    gazetteer: Gazetteer,
    *,
    batch_size: int = 1000,
) -> BackfillReport:
    """Place every row with no ``place_source`` yet, ``batch_size`` rows per transaction.

    Idempotent: a placed row (or one found unknown) has a ``place_source`` and is not read again,
    so a second run, or a run cut short and started again, does only what is left. Short
    transactions let residents' turns write in between (on SQLite each holds the write lock).
    """
    report = BackfillReport()
    after = 0
    while True:
        async with sessionmaker() as session, session.begin():
            rows = (
                await session.execute(
                    select(
                        Submission.id,
                        Submission.answers,
                        Submission.lat,
                        Submission.lon,
                        Submission.address_string,
                        Submission.precision,
                        Submission.area_type,
                    )
                    .where(Submission.place_source.is_(None), Submission.id > after)
                    .order_by(Submission.id)
                    .limit(batch_size)
                )
            ).all()
            if not rows:
                return report
            after = rows[-1].id
            updates = [_backfilled(gazetteer, row) for row in rows]
            await session.execute(update(Submission), updates)
        report.sources.update(u["place_source"] for u in updates)


def _backfilled(gazetteer: Gazetteer, row: Any) -> dict[str, Any]:
    source, placed = _place_of(gazetteer, row)
    if placed.known:
        return {"id": row.id, **_columns(placed), "place_source": source}
    # Nothing places it: unknown, and whatever an earlier version stored is kept.
    return {"id": row.id, "area_type": row.area_type or "unknown", "place_source": "none"}


def _place_of(gazetteer: Gazetteer, row: Any) -> tuple[str, placing.Placement]:
    """What placed an older row, and where: its answer first (pin, picked place, address text),
    then the stored address text, then the stored point."""
    answer = _location_answer(row.answers)
    kind = _ANSWER_SOURCES.get(str(answer.get("source")))
    if kind == "pin" and row.lat is not None and row.lon is not None:
        return "pin", placing.of_point(gazetteer, row.lat, row.lon)
    if kind == "place":
        place = gazetteer.get(str(answer.get("place") or ""))
        if place is not None:
            address = str(answer.get("address") or row.address_string or "")
            street = row.precision == "street" or (
                place.kind != "informal_settlement" and placing.says_where_in(address, place)
            )
            return "place", placing.of_place(gazetteer, place, street=street)
    text = str(answer.get("address") or row.address_string or "")
    placed = placing.of_text(gazetteer, text)
    if placed.known:
        return "text", placed
    if row.lat is not None and row.lon is not None and kind is None:
        # A point with no answer saying what it was (the answers were erased): its ward and
        # area are still the point's.
        if row.precision == "pin":
            return "pin", placing.of_point(gazetteer, row.lat, row.lon)
        return "point", placing.of_point(gazetteer, row.lat, row.lon, precision="point")
    return "none", placing.UNKNOWN


def _location_answer(answers: Mapping[str, Any] | None) -> Mapping[str, Any]:
    """The location step's answer among a row's answers (the dict with a "source")."""
    for value in (answers or {}).values():
        if isinstance(value, Mapping) and value.get("source") in _ANSWER_SOURCES:
            return value
    return {}


def _columns(placed: placing.Placement) -> dict[str, Any]:
    return {
        "ward": placed.ward,
        "wards": list(placed.wards),
        "suburb": placed.suburb,
        "area_type": placed.area_type,
        "precision": placed.precision,
    }
