"""Report -> filed -> staff change on the built-in server -> the resident hears once, in their
language."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncEngine

from city.open311.client import Open311Backend
from city.status_poller import PollerSettings, PollReport, StatusPoller
from notifier.quiet_hours import QuietHours
from notifier.status_notices import StatusNotices, status_message
from storage.models import (
    Open311Request,
    RequestStatusChange,
    ResidentNotification,
    Submission,
    TrackedRequest,
)
from tests.city.test_filer import World, _world, drain
from tests.storage.databases import postgres_database, sqlite_database

NOON = datetime(2030, 6, 3, 10, 0, tzinfo=UTC)  # 12:00 in Johannesburg


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with sqlite_database(tmp_path) as url, _world(url) as w:
        yield w


async def _file(world: World, count: int, **options) -> list[str]:
    references = await world.add(count, **options)
    async with world.filer() as filer:
        await drain(filer)
    await world.dispatch()
    world.sent.clear()
    return references


async def _staff_update(
    world: World,
    request_id: str,
    *,
    status: str,
    status_notes: str | None = None,
    expected_date: str | None = None,
) -> None:
    """What a staff change does to the built-in server's row (through the admin API in the app:
    tests/web/staff_api); the poller sees it like any city's change."""
    async with world.sessionmaker() as session, session.begin():
        row = await session.get(Open311Request, int(request_id))
        assert row is not None, request_id
        row.status = status
        if status_notes is not None:
            row.status_notes = status_notes
        row.expected_datetime = (
            datetime.fromisoformat(expected_date).replace(tzinfo=UTC) if expected_date else None
        )
        row.updated_datetime = datetime.now(UTC)


@dataclass
class _Poller:
    """The city's poller and the notifier's notices, as the workers run them one after the
    other: the poller records changes, the notices tell residents."""

    poller: StatusPoller
    notices: StatusNotices

    async def poll_once(self) -> PollReport:
        return await self.poller.poll_once()

    async def notify_pending(self) -> int:
        return await self.notices.notify_pending()


def _poller(
    world: World,
    backend: Open311Backend,
    *,
    quiet_hours: QuietHours | None = None,
    clock=lambda: NOON,
    **settings,
) -> _Poller:
    return _Poller(
        StatusPoller(world.sessionmaker, backend, settings=PollerSettings(**settings), clock=clock),
        StatusNotices(world.sessionmaker, quiet_hours=quiet_hours, clock=clock),
    )


async def _request_ids(world: World) -> list[str]:
    async with world.sessionmaker() as session:
        rows = (await session.scalars(select(Submission).order_by(Submission.id))).all()
    return [r.service_request_id or "" for r in rows]


async def test_each_change_reaches_the_resident_once(world: World) -> None:
    await _file(world, 5, locale="af")
    backend = Open311Backend(world.url, max_ids_per_call=2)
    poller = _poller(world, backend)
    try:
        report = await poller.poll_once()
        assert (report.requests, report.changes) == (5, 5)
        assert backend.calls == 3  # 5 ids, 2 per call
        assert await poller.notify_pending() == 0  # the first sighting was already covered
        first = (await _request_ids(world))[0]
        await _staff_update(
            world, first, status="closed", status_notes="Gat is gevul", expected_date="2030-06-05"
        )
        assert (await poller.poll_once()).changes == 1
        assert world.sent == []
        assert await poller.notify_pending() == 1
        await world.dispatch(NOON)
        assert (await poller.poll_once()).requests == 4  # closed requests are no longer polled
        assert await poller.notify_pending() == 0
        await world.dispatch(NOON)
    finally:
        await backend.close()
    [message] = world.sent
    assert (
        message.locale == "af" and message.purpose == "status_update" and message.channel == "sms"
    )
    assert "Gat is gevul" in message.text and first in message.text
    assert "2030" in message.text and "Junie" in message.text  # babel's Afrikaans month name
    async with world.sessionmaker() as session:
        tracked = await session.get(TrackedRequest, 1)
        submission = await session.get(Submission, 1)
        history = (
            await session.scalars(
                select(RequestStatusChange).where(RequestStatusChange.submission_id == 1)
            )
        ).all()
    assert tracked is not None and tracked.closed_at is not None and tracked.acknowledged_at == NOON
    assert submission is not None and submission.status == "closed"
    assert [(h.status, h.notify_state) for h in history] == [
        ("open", "acknowledged"),
        ("closed", "queued"),
    ]


async def test_nothing_to_opted_out_residents(world: World) -> None:
    await _file(world, 1, opted_out=True)
    backend = Open311Backend(world.url)
    poller = _poller(world, backend)
    try:
        await poller.poll_once()
        await _staff_update(world, (await _request_ids(world))[0], status="closed")
        await poller.poll_once()
        assert await poller.notify_pending() == 0
        await world.dispatch(NOON)
    finally:
        await backend.close()
    assert world.sent == []
    async with world.sessionmaker() as session:
        states = (await session.scalars(select(RequestStatusChange.notify_state))).all()
    assert list(states) == ["acknowledged", "opted_out"]


async def test_quiet_hours_delay_and_collapse_updates(world: World) -> None:
    await _file(world, 1)
    backend = Open311Backend(world.url)
    night = datetime(2030, 6, 3, 21, 30, tzinfo=UTC)  # 23:30 in Johannesburg
    now = night
    poller = _poller(world, backend, quiet_hours=QuietHours(), clock=lambda: now)
    try:
        await poller.poll_once()
        request_id = (await _request_ids(world))[0]
        await _staff_update(world, request_id, status="open", status_notes="Crew on the way")
        await poller.poll_once()
        await _staff_update(world, request_id, status="closed", status_notes="Fixed")
        await poller.poll_once()
        assert await poller.notify_pending() == 0  # quiet hours
        await world.dispatch(now)
        assert world.sent == []
        now = NOON
        assert await poller.notify_pending() == 1
        await world.dispatch(now)
    finally:
        await backend.close()
    [message] = world.sent
    assert "Fixed" in message.text and "closed" in message.text


def test_quiet_hours_span_midnight() -> None:
    quiet = QuietHours(start=time(21), end=time(7), zone="Africa/Johannesburg")
    assert quiet.contains(datetime(2030, 1, 1, 20, 0, tzinfo=UTC))  # 22:00 local
    assert quiet.contains(datetime(2030, 1, 1, 4, 0, tzinfo=UTC))  # 06:00 local
    assert not quiet.contains(datetime(2030, 1, 1, 5, 0, tzinfo=UTC))  # 07:00 local


def test_status_message_in_english() -> None:
    text = status_message(
        "en", "CT-ABC123", "1042", "closed", "Filled", datetime(2030, 6, 5, tzinfo=UTC)
    )
    assert text == (
        "Update on your report CT-ABC123 (city number 1042): closed.\nThe city says: Filled\nExpected by June 5, 2030."
    )


async def _notifications(world: World) -> list[tuple[str, str]]:
    async with world.sessionmaker() as session:
        rows = (
            await session.scalars(select(ResidentNotification).order_by(ResidentNotification.id))
        ).all()
    return [(r.purpose, r.state) for r in rows]


async def test_two_pollers_queue_a_change_once(world: World) -> None:
    await _file(world, 1)
    backend = Open311Backend(world.url)
    one, two = _poller(world, backend), _poller(world, backend)
    try:
        await one.poll_once()
        await _staff_update(world, (await _request_ids(world))[0], status="closed")
        await one.poll_once()
        assert sorted(await asyncio.gather(one.notify_pending(), two.notify_pending())) == [0, 1]
    finally:
        await backend.close()
    assert await _notifications(world) == [("report_filed", "sent"), ("status_update", "pending")]
    await world.dispatch(NOON)
    assert len(world.sent) == 1


async def test_a_newer_change_replaces_an_update_not_sent_yet(world: World) -> None:
    await _file(world, 1)
    backend = Open311Backend(world.url)
    poller = _poller(world, backend)
    try:
        await poller.poll_once()
        request_id = (await _request_ids(world))[0]
        await _staff_update(world, request_id, status="open", status_notes="Crew on the way")
        await poller.poll_once()
        assert await poller.notify_pending() == 1  # queued; no dispatcher has run since
        await _staff_update(world, request_id, status="closed", status_notes="Fixed")
        await poller.poll_once()
        assert await poller.notify_pending() == 1
    finally:
        await backend.close()
    assert await _notifications(world) == [
        ("report_filed", "sent"),
        ("status_update", "skipped"),
        ("status_update", "pending"),
    ]
    await world.dispatch(NOON)
    [message] = world.sent
    assert "Fixed" in message.text


@dataclass
class Writes:
    """Every INSERT and UPDATE sent through an engine: (verb, table, parameter sets)."""

    seen: list[tuple[str, str, int]] = field(default_factory=list)

    def on(self, engine: AsyncEngine) -> None:
        @event.listens_for(engine.sync_engine, "after_execute")
        def _record(
            _conn: Any, clause: Any, multiparams: Any, _params: Any, _options: Any, _result: Any
        ) -> None:
            if getattr(clause, "is_dml", False):
                self.seen.append(
                    (clause.__visit_name__, clause.table.name, max(1, len(multiparams or [])))
                )

    def rows(self, verb: str, table: str) -> int:
        """Statements run per row: an executemany counts once per parameter set."""
        return sum(n for v, t, n in self.seen if (v, t) == (verb, table))


@pytest.fixture(params=["sqlite", "postgresql"])
async def any_world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    database = sqlite_database(tmp_path) if request.param == "sqlite" else postgres_database()
    async with database as url, _world(url) as w:
        yield w


async def _polled_at(world: World) -> dict[int, datetime]:
    async with world.sessionmaker() as session:
        rows = (await session.scalars(select(TrackedRequest))).all()
    return {r.submission_id: r.last_polled_at for r in rows}


async def test_a_cycle_writes_only_what_changed(any_world: World) -> None:
    world = any_world
    await _file(world, 5)
    ids = await _request_ids(world)
    await _staff_update(world, ids[1], status="closed", status_notes="Done already")
    now = NOON
    backend = Open311Backend(world.url, max_ids_per_call=2)
    poller = _poller(world, backend, page_size=3, clock=lambda: now)
    writes = Writes()
    writes.on(world.sessionmaker.kw["bind"])
    try:
        assert (await poller.poll_once()).changes == 5  # first sightings, one already closed
        writes.seen.clear()
        now = NOON + timedelta(minutes=5)
        report = await poller.poll_once()
        assert (report.requests, report.changes) == (4, 0)
        assert writes.seen == []

        await _staff_update(world, ids[0], status="open", status_notes="Crew on the way")
        writes.seen.clear()
        now = NOON + timedelta(minutes=10)
        assert (await poller.poll_once()).changes == 1
        assert writes.seen == [
            ("update", "tracked_requests", 1),
            ("insert", "request_status_changes", 1),
        ]

        # An hour on, the unchanged requests' stamps are stale: one UPDATE per page (of 3 and
        # 1 open requests) refreshes them all.
        writes.seen.clear()
        now = NOON + timedelta(minutes=65)
        assert (await poller.poll_once()).changes == 0
        assert writes.seen == [("update", "tracked_requests", 1)] * 2
        assert await _polled_at(world) == {
            1: NOON + timedelta(minutes=10),  # changed at 12:10
            2: NOON,  # closed at its first sighting, no longer polled
            3: now,
            4: now,
            5: now,
        }
        assert await poller.notify_pending() == 2  # the change and the closed first sighting
        assert await poller.notify_pending() == 0
        await world.dispatch(now)
    finally:
        await backend.close()
    assert sorted(m.text.splitlines()[1] for m in world.sent) == [
        "The city says: Crew on the way",
        "The city says: Done already",
    ]
    async with world.sessionmaker() as session:
        tracked = await session.get(TrackedRequest, 1)
        closed = await session.get(Submission, 2)
        closed_tracked = await session.get(TrackedRequest, 2)
        history = (
            await session.scalars(select(RequestStatusChange).order_by(RequestStatusChange.id))
        ).all()
    assert tracked is not None and tracked.status_notes == "Crew on the way"
    assert closed is not None and closed.status == "closed"
    assert closed_tracked is not None and closed_tracked.closed_at is not None
    assert [(h.submission_id, h.status, h.notify_state, h.observed_at) for h in history] == [
        (1, "open", "acknowledged", NOON),
        (2, "closed", "queued", NOON),
        (3, "open", "acknowledged", NOON),
        (4, "open", "acknowledged", NOON),
        (5, "open", "acknowledged", NOON),
        (1, "open", "queued", NOON + timedelta(minutes=10)),
    ]
