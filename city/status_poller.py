"""Follow every filed request at the city and record each change it makes, once.

One polling cycle pages through the submissions that are filed and not yet closed, asks the back
end for their state in batches (``GET requests?service_request_id=a,b,...``, as many ids per
call as the client's ``max_ids_per_call``), and records every change (status, the city's notes,
the expected date) in ``request_status_changes`` with its timestamps and ``notify_state``
``pending``. The first sighting is the city's acknowledgement; it is recorded as
``acknowledged`` (not to be told: the resident already heard the report was filed), unless it
already says more than "open". A page is compared with what is stored and only what changed is
written (in one transaction per page): most requests are unchanged in most cycles, and rewriting
each of them was most of a cycle's cost.

Telling residents is the notifier's part (``notifier.status_notices``): it reads the pending
changes, in the residents' languages and outside quiet hours. The table is the hand-off, so a
change recorded here is never lost and never told twice.

Example::

    poller = StatusPoller(sessionmaker, backend)
    await poller.poll_once()        # -> PollReport(requests=1200, changes=3)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from city.open311.client import CityBackend
from city.open311.types import ServiceRequest
from city.request_places import city_placement, needs_city_point
from forms_runtime.gazetteer import Gazetteer
from storage.models import RequestStatusChange, Submission, TrackedRequest

__all__ = ["PollReport", "PollerSettings", "StatusPoller"]

log = logging.getLogger("citybot.status")


@dataclass(frozen=True, slots=True)
class PollerSettings:
    # Submissions read from the database per page (each page is then batched over HTTP).
    page_size: int = 5000
    interval_seconds: float = 300.0
    # How stale ``tracked_requests.last_polled_at`` may grow before an unchanged request's stamp
    # is refreshed (0: every cycle). See ``_stamp_polled`` for why it is not written every time.
    polled_at_resolution_seconds: float = 3600.0


@dataclass(frozen=True, slots=True)
class PollReport:
    requests: int
    changes: int


class StatusPoller:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        backend: CityBackend,
        *,
        settings: PollerSettings | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        gazetteer: Gazetteer | None = None,
        service_backends: Mapping[str, CityBackend] | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.backend = backend
        # Requests of these services were filed with their own back end: asked there.
        self.service_backends = dict(service_backends or {})
        self.settings = settings or PollerSettings()
        self.clock = clock
        # Places requests at the city's coordinates where the city returns them (None: never).
        self.gazetteer = gazetteer

    async def run_once(self) -> int:
        """One polling cycle; always 0, so the worker rests ``interval_seconds`` between cycles
        (poll on a schedule, however much changed)."""
        await self.poll_once()
        return 0

    # -- polling -------------------------------------------------------------------------------

    async def poll_once(self) -> PollReport:
        after, requests, changes = 0, 0, 0
        while True:
            async with self.sessionmaker() as session:
                page = (
                    await session.execute(
                        select(
                            Submission.id,
                            Submission.service_request_id,
                            Submission.precision,
                            Submission.service_code,
                        )
                        .where(
                            Submission.status == "filed",
                            Submission.service_request_id.is_not(None),
                            Submission.id > after,
                        )
                        .order_by(Submission.id)
                        .limit(self.settings.page_size)
                    )
                ).all()
            if not page:
                return PollReport(requests, changes)
            after = page[-1][0]
            requests += len(page)
            # Each back end is asked about its own requests, and its answers recorded apart: two
            # back ends may use the same ids.
            by_backend: dict[int, tuple[CityBackend, list[Any]]] = {}
            for row in page:
                backend = self.service_backends.get(row[3], self.backend)
                by_backend.setdefault(id(backend), (backend, []))[1].append(row)
            for backend, rows in by_backend.values():
                found = await backend.status([str(ident) for _, ident, _, _ in rows])
                coarse = {sid for sid, _, precision, _ in rows if needs_city_point(precision)}
                changes += await self._record(
                    {sid: str(rid) for sid, rid, _, _ in rows}, found, coarse
                )

    async def _record(
        self, page: dict[int, str], found: list[ServiceRequest], coarse: set[int] | None = None
    ) -> int:
        """Write what changed on one page, in one transaction; returns how many changes."""
        now = self.clock()
        stamp_before = now - timedelta(seconds=self.settings.polled_at_resolution_seconds)
        by_id = {request.service_request_id: request for request in found}
        first_sightings: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        history: list[dict[str, Any]] = []
        closed: list[int] = []
        stale: list[int] = []
        placed = self._city_points(page, by_id, coarse or set())
        async with self.sessionmaker() as session, session.begin():
            # Plain rows, not ORM objects: most of a page is unchanged and is only compared.
            known = {
                row.submission_id: (
                    (row.status, row.status_notes, row.expected_datetime),
                    row.last_polled_at,
                )
                for row in await session.execute(
                    select(
                        TrackedRequest.submission_id,
                        TrackedRequest.status,
                        TrackedRequest.status_notes,
                        TrackedRequest.expected_datetime,
                        TrackedRequest.last_polled_at,
                    ).where(TrackedRequest.submission_id.in_(page))
                )
            }
            for submission_id, request_id in page.items():
                request = by_id.get(request_id)
                if request is None:
                    continue
                state = (request.status, request.status_notes, request.expected_datetime)
                before, polled_at = known.get(submission_id, (None, None))
                if before == state:
                    if polled_at is not None and polled_at <= stamp_before:
                        stale.append(submission_id)
                    continue
                # What the city said, as both the tracked request and its history row keep it.
                seen: dict[str, Any] = {
                    "submission_id": submission_id,
                    "service_request_id": request_id,
                    "status": request.status,
                    "status_notes": request.status_notes,
                    "expected_datetime": request.expected_datetime,
                    "city_updated_at": request.updated_datetime,
                }
                tracked = {**seen, "last_polled_at": now}
                if request.status == "closed":
                    tracked["closed_at"] = request.updated_datetime or now
                    closed.append(submission_id)
                if before is None:
                    first_sightings.append({**tracked, "acknowledged_at": now})
                    quiet_first = request.status == "open" and not request.status_notes
                    notify = (
                        "acknowledged"
                        if quiet_first and request.expected_datetime is None
                        else "pending"
                    )
                else:
                    updates.append(tracked)
                    notify = "pending"
                history.append({**seen, "observed_at": now, "notify_state": notify})
            if first_sightings:
                await session.execute(insert(TrackedRequest), first_sightings)
            if updates:
                # Bulk UPDATE by primary key: one statement per change, none for the rest.
                await session.execute(update(TrackedRequest), updates)
            if history:
                await session.execute(insert(RequestStatusChange), history)
            if closed:
                await session.execute(
                    update(Submission).where(Submission.id.in_(closed)).values(status="closed")
                )
            if stale:
                await _stamp_polled(session, stale, now)
            if placed:
                await session.execute(update(Submission), placed)
        return len(history)

    def _city_points(
        self, page: dict[int, str], by_id: dict[str, ServiceRequest], coarse: set[int]
    ) -> list[dict[str, Any]]:
        """Row updates placing coarsely placed requests at the coordinates the city returned
        (once: a request placed so is placed to a point, and not coarse again)."""
        if self.gazetteer is None:
            return []
        updates = []
        for submission_id in coarse:
            request = by_id.get(page[submission_id])
            if request is None or request.lat is None or request.long is None:
                continue
            row = city_placement(self.gazetteer, submission_id, request.lat, request.long)
            if row is not None:
                updates.append(row)
        return updates


async def _stamp_polled(session: AsyncSession, submission_ids: list[int], now: datetime) -> None:
    """Refresh ``last_polled_at`` of unchanged requests whose stamp has grown stale, at once.

    Nothing in citybot reads ``last_polled_at``: every cycle pages through all open requests in
    id order, so no request waits for its turn and the stamp plays no part in choosing what to
    poll. It is still the one sign, per request, that the city goes on answering about it (a
    request the city dropped keeps an old stamp), so it is kept, to within
    ``PollerSettings.polled_at_resolution_seconds``. Stamping every request every cycle wrote
    every row every five minutes, most of a cycle's database time; refreshing a stale stamp
    costs one statement per page, about once an hour per request, and a cycle in between writes
    only what changed.
    """
    await session.execute(
        update(TrackedRequest)
        .where(TrackedRequest.submission_id.in_(submission_ids))
        .values(last_polled_at=now)
        .execution_options(synchronize_session=False)
    )
