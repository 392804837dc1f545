"""Sending the daily digest of reports: each (resident, alert, day) at most once, at the digest
time, outside quiet hours.

``DigestSender.run_once`` does, in order, what is due:

1. **Fan-out.** Once the day's digest time has passed (``DigestSchedule.due_day``), the alerts
   with the ``reports`` topic that existed at that time are read in resident-id ranges, each
   range in one short transaction that also moves the day's ``digest_runs`` row on (taken with
   ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two workers never write the same range, and a
   restart carries on there). Each alert's digest (``notifier.digests``) is written as a
   ``report_digests`` row in the resident's language for the channel they wrote from last; an
   area with nothing new writes nothing. The day's events are read once per process and day.
2. **Expire** queued digests of an earlier day (the next one is due: an old digest is never
   sent late); **recover** what a dead sender held.
3. **Send.** Outside quiet hours, queued digests of the day are claimed in small batches
   (``SKIP LOCKED`` on PostgreSQL), marked ``sending`` just before the provider is called and
   ``sent`` after, a batch per statement: the same fence as a broadcast's deliveries
   (``notifier.leased_rows``), so a sender that dies holding ``claimed`` rows sent none of
   them (they are queued again when the lease ends) and one that dies mid-call leaves
   ``unknown`` rows that are never sent again.

Opted-out and erased residents are left out of the fan-out and refused again at their turn.

Example::

    sender = DigestSender(sessionmaker, ResidentDelivery(sessionmaker, channels), titles)
    await sender.run_until_idle()    # the day's digests written and sent, once
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier.broadcast_audience import audience
from notifier.broadcasts import CHANNELS
from notifier.digests import Digest, DigestSchedule, EventIndex, day_events, render
from notifier.leased_rows import LeasedRows, send_fenced
from notifier.ports import ResidentMessage
from notifier.quiet_hours import QuietHours
from storage.models import DigestRun, ReportDigest, Resident, Subscription
from storage.types import utc_now

__all__ = ["DigestClaim", "DigestSender", "DigestSettings"]

log = logging.getLogger("citybot.digests")

SendDigest = Callable[[ResidentMessage], Awaitable[Sequence[str] | None]]


@dataclass(frozen=True, slots=True)
class DigestSettings:
    schedule: DigestSchedule = field(default_factory=DigestSchedule)
    quiet_hours: QuietHours | None = None
    # Resident ids per fan-out transaction.
    fanout_range: int = 20_000
    # Digests claimed at once and sent side by side: also the most a crash can leave "unknown".
    batch_size: int = 20
    concurrency: int = 20
    lease_seconds: float = 120.0
    send_timeout_seconds: float = 60.0
    idle_seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class DigestClaim:
    id: int
    resident_id: int
    day: date
    channel: str
    locale: str
    text: str


@dataclass(frozen=True, slots=True)
class _Alert:
    """One alert of one resident, as the fan-out reads it."""

    resident_id: int
    label: str
    channel: str
    locale: str
    wards: tuple[str, ...]
    pin: tuple[float, float, float] | None


class DigestSender:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        send: SendDigest,
        titles: Mapping[str, str],
        settings: DigestSettings | None = None,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.send = send
        # Each service's (form's) title, an msgid the digest translates.
        self.titles = dict(titles)
        self.settings = settings or DigestSettings()
        self.clock = clock
        self._events: tuple[date, EventIndex] | None = None
        self._texts: tuple[date, dict[tuple[Any, ...], str | None]] | None = None
        self.rows: LeasedRows[ReportDigest] = LeasedRows(
            sessionmaker,
            ReportDigest,
            lease_seconds=self.settings.lease_seconds,
            what="report digests",
            clock=clock,
        )

    async def run_once(self) -> int:
        day = self.settings.schedule.due_day(self.clock())
        done = await self.fan_out(day)
        await self._expire(day)
        await self.rows.recover()
        done += await self.send_claimed(await self.claim(day))
        return done

    async def run_until_idle(self) -> None:
        """Write and send everything that is due now (tests, draining)."""
        while await self.run_once():
            pass

    # -- fan-out -------------------------------------------------------------------------------

    async def fan_out(self, day: date) -> int:
        """Write the next resident-id range of ``day``'s digests; 0 once all is written."""
        now = self.clock()
        async with self.sessionmaker() as session, session.begin():
            dialect = session.get_bind().dialect.name
            query = select(DigestRun).where(DigestRun.day == day)
            if dialect == "postgresql":
                # One fan-out of a day at a time: a second worker skips it.
                query = query.with_for_update(skip_locked=True)
            run = await session.scalar(query)
            if run is None:
                # The day's first look (or another worker holds it: then this finds it taken).
                await session.execute(_insert_ignoring(dialect, DigestRun), [{"day": day}])
                run = await session.scalar(query)
            if run is None or run.fanned_out_at is not None:
                return 0
            start = run.fanned_out_to
            last = int(await session.scalar(select(func.max(Resident.id))) or 0)
            end = min(start + self.settings.fanout_range, last)
            alerts = await self._alerts(session, (start, end), self.settings.schedule.moment(day))
            rows = await self._digests(session, day, alerts, now)
            if rows:
                # One statement for many parameter sets: SQLAlchemy batches them into
                # multi-row INSERTs itself, compiled once.
                await session.execute(_insert_ignoring(dialect, ReportDigest), rows)
            run.fanned_out_to, run.digests = end, run.digests + len(rows)
            if end >= last:
                run.fanned_out_at = now
        # A range with nobody in it still counts as work, so the loop goes on to the next.
        return max(len(rows), 1) if end < last else len(rows)

    async def _alerts(
        self, session: AsyncSession, ids: tuple[int, int], since: datetime
    ) -> list[_Alert]:
        """The range's alerts with the reports topic made by ``since``, of residents who can be
        reached (not opted out or erased), each with the channel they wrote from last."""
        reachable = audience(
            wards=(), everyone=True, channels=CHANNELS, ids=ids, topic="reports"
        ).subquery("reachable")
        rows = await session.execute(
            select(
                Subscription.resident_id,
                Subscription.label,
                Subscription.ward,
                Subscription.latitude,
                Subscription.longitude,
                Subscription.radius_m,
                reachable.c.channel,
                reachable.c.locale,
            )
            .join(reachable, reachable.c.resident_id == Subscription.resident_id)
            .where(
                Subscription.resident_id > ids[0],
                Subscription.resident_id <= ids[1],
                Subscription.topics.like("%,reports,%"),
                Subscription.created_at <= since,
            )
            .order_by(Subscription.resident_id, Subscription.label, Subscription.id)
        )
        grouped: dict[tuple[int, str], dict[str, Any]] = {}
        for resident_id, label, ward, lat, lon, radius, channel, locale in rows:
            alert = grouped.setdefault(
                (resident_id, label),
                {"channel": channel, "locale": locale, "wards": [], "pin": None},
            )
            alert["wards"].append(ward)
            if radius is not None and lat is not None and lon is not None:
                alert["pin"] = (float(lat), float(lon), float(radius))
        return [
            _Alert(rid, label, a["channel"], a["locale"], tuple(a["wards"]), a["pin"])
            for (rid, label), a in grouped.items()
        ]

    async def _digests(
        self, session: AsyncSession, day: date, alerts: Sequence[_Alert], now: datetime
    ) -> list[dict[str, Any]]:
        if not alerts:
            return []
        events = await self._day_events(session, day)
        # Ward alerts share their texts across the day's ranges (a city has a few thousand
        # of them: place, language, channel); a pin's is its own and kept for this range only.
        shared = self._texts[1] if self._texts is not None and self._texts[0] == day else {}
        self._texts = (day, shared)
        pins: dict[tuple[Any, ...], str | None] = {}
        rows = []
        for alert in alerts:
            key = (alert.label, alert.wards, alert.pin, alert.locale, alert.channel)
            texts = shared if alert.pin is None else pins
            if key not in texts:
                digest = Digest.of(
                    events.of_area(alert.wards, alert.pin),
                    day=day,
                    place=alert.label,
                    wards=alert.wards,
                    pin=alert.pin,
                )
                texts[key] = (
                    None
                    if digest.empty
                    else render(digest, alert.locale, alert.channel, self.titles)
                )
            text = texts[key]
            if text is None:
                continue  # nothing happened there: nothing is sent
            rows.append(
                {
                    "resident_id": alert.resident_id,
                    "label": alert.label,
                    "day": day,
                    "channel": alert.channel,
                    "locale": alert.locale,
                    "text": text,
                    "state": "queued",
                    "updated_at": now,
                }
            )
        return rows

    async def _day_events(self, session: AsyncSession, day: date) -> EventIndex:
        """The day's events, read once per process: the window has closed, they do not change."""
        if self._events is None or self._events[0] != day:
            start, end = self.settings.schedule.window(day)
            self._events = (day, EventIndex(await day_events(session, start, end)))
        return self._events[1]

    # -- housekeeping --------------------------------------------------------------------------

    async def _expire(self, day: date) -> None:
        now = self.clock()
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                update(ReportDigest)
                .where(ReportDigest.state == "queued", ReportDigest.day < day)
                .values(state="skipped", error="the next day's digest was due", updated_at=now)
            )

    # -- sending -------------------------------------------------------------------------------

    async def claim(self, day: date) -> list[DigestClaim]:
        """Take the next queued digests of ``day`` for this sender (none in quiet hours: a
        digest is never urgent)."""
        quiet = self.settings.quiet_hours
        if quiet is not None and quiet.contains(self.clock()):
            return []

        async def as_claims(_: AsyncSession, rows: Sequence[ReportDigest]) -> list[DigestClaim]:
            return [
                DigestClaim(r.id, r.resident_id, r.day, r.channel, r.locale, r.text) for r in rows
            ]

        return await self.rows.claim(
            [ReportDigest.day == day], limit=self.settings.batch_size, also=as_claims
        )

    async def send_claimed(self, claims: Sequence[DigestClaim]) -> int:
        return await send_fenced(
            self.rows,
            claims,
            row_id=lambda c: c.id,
            message=_message,
            send=self.send,
            concurrency=self.settings.concurrency,
            timeout=self.settings.send_timeout_seconds,
        )


def _message(claim: DigestClaim) -> ResidentMessage:
    return ResidentMessage(
        resident_id=claim.resident_id,
        channel=claim.channel,
        locale=claim.locale,
        text=claim.text,
        # Outside WhatsApp's window: the approved template under this purpose
        # (TWILIO_WHATSAPP_TEMPLATES), with the digest as its one variable.
        purpose="report_digest",
        reference=f"D{claim.day.isoformat()}",
        template_variables={"text": claim.text},
    )


def _insert_ignoring(dialect: str, model: Any) -> Any:
    """INSERT that leaves rows whose unique key exists already as they are (both databases
    spell it ON CONFLICT DO NOTHING)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(model).on_conflict_do_nothing()
