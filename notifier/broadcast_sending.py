"""Sending broadcasts: fan-out into one row per resident, then paced sends, each at most once.

``BroadcastSender.run_once`` does, in order, what is due:

1. **Start.** A ``scheduled`` broadcast whose ``send_at`` has come becomes ``sending`` and fans
   out: its audience (``notifier.broadcast_audience``) is inserted into ``broadcast_deliveries``
   by ``INSERT ... SELECT`` in resident-id ranges, one short transaction each that also moves
   ``fanned_out_to``, so a restart carries on where it stopped and rows never pass through
   Python. Sending starts with the first range.
2. **Expire** what passed its ``expires_at``; **recover** what a dead sender held.
3. **Send.** With Redis (``streams``) each range's new row ids are also queued per channel on
   Redis Streams after its commit (``notifier.delivery_streams``); a sender takes the next entry
   and claims its rows by id. Without Redis, or when the streams are empty (a resend, an entry
   lost with Redis), queued rows are claimed from the table in small batches (``FOR UPDATE SKIP
   LOCKED`` on PostgreSQL, so any number of workers share it). Either way only rows of
   broadcasts that are ``sending`` are claimed (a cancel is seen at the next batch) and, in quiet
   hours, only of emergencies; then ``notifier.leased_rows`` fences the batch (``sending``, in
   one statement, just before the provider calls) and settles it (``sent`` with the provider's
   id, for receipts, in one statement), and the entry is acknowledged.

**At most once.** A row is sent only by the sender whose fence moved it from ``claimed`` to
``sending``. A sender that dies holding ``claimed`` rows sent none of them: they are queued
again when the lease ends (and its stream entry is taken over by another worker, which finds
only those rows ``queued``). One that dies holding ``sending`` rows may have sent them: they
become ``unknown`` and are never sent again. Providers offer no idempotency key, so "exactly
once" is not possible across a crash at that moment; the window is the batches in flight (four
of 20). Opted-out or erased residents are skipped at their turn, however late they opted out.

Example::

    sender = BroadcastSender(sessionmaker, ResidentDelivery(sessionmaker, channels))
    await sender.run_once()      # how many rows it fanned out or sent
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier.broadcasts import CHANNELS, audience_of, footer
from notifier.delivery_streams import DeliveryStreams
from notifier.leased_rows import LeasedRows, send_fenced
from notifier.ports import ResidentMessage
from notifier.quiet_hours import QuietHours
from storage.models import Broadcast, BroadcastDelivery, Resident
from storage.types import UtcDateTime, utc_now

__all__ = ["BroadcastSender", "SenderSettings"]

log = logging.getLogger("citybot.broadcasts")

# What sending one message returns: the provider's ids of the parts it took.
SendBroadcast = Callable[[ResidentMessage], Awaitable[Sequence[str] | None]]


@dataclass(frozen=True, slots=True)
class SenderSettings:
    # Resident ids per fan-out transaction.
    fanout_range: int = 20_000
    # Rows claimed at once, and sent side by side: also the most a crash can leave "unknown".
    batch_size: int = 20
    concurrency: int = 20
    # Batches a worker sends side by side, and for how long before its housekeeping comes round.
    batches_in_flight: int = 4
    round_seconds: float = 1.0
    lease_seconds: float = 120.0
    send_timeout_seconds: float = 60.0
    idle_seconds: float = 1.0
    quiet_hours: QuietHours | None = None


@dataclass(frozen=True, slots=True)
class _Claim:
    id: int
    broadcast_id: int
    resident_id: int
    channel: str
    locale: str
    text: str
    template: str | None


class BroadcastSender:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        send: SendBroadcast,
        settings: SenderSettings | None = None,
        *,
        streams: DeliveryStreams | None = None,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.send = send
        self.settings = settings or SenderSettings()
        self.clock = clock
        self.streams = streams
        self.rows: LeasedRows[BroadcastDelivery] = LeasedRows(
            sessionmaker,
            BroadcastDelivery,
            lease_seconds=self.settings.lease_seconds,
            what="broadcast messages",
            clock=clock,
        )

    async def run_once(self) -> int:
        done = await self.start_due()
        await self._expire()
        await self.rows.recover()
        done += await self._send_some()
        await self._finish()
        return done

    async def run_until_idle(self) -> None:
        """Send everything that is due now (tests, ``citybot worker`` draining)."""
        while await self.run_once():
            pass

    # -- fan-out -------------------------------------------------------------------------------

    async def start_due(self) -> int:
        now = self.clock()
        async with self.sessionmaker() as session:
            due = (
                await session.scalars(
                    select(Broadcast.id).where(
                        or_(
                            (Broadcast.state == "scheduled")
                            & (or_(Broadcast.send_at.is_(None), Broadcast.send_at <= now)),
                            (Broadcast.state == "sending") & Broadcast.fanned_out_at.is_(None),
                        )
                    )
                )
            ).all()
        written = 0
        for broadcast_id in due:
            written += await self._fan_out(broadcast_id)
        return written

    async def _fan_out(self, broadcast_id: int) -> int:
        """Write the next resident-id range of a broadcast's audience; 0 once all is written."""
        now = self.clock()
        async with self.sessionmaker() as session, session.begin():
            query = select(Broadcast).where(Broadcast.id == broadcast_id)
            if session.get_bind().dialect.name == "postgresql":
                # One fan-out per broadcast at a time: a second worker skips it.
                query = query.with_for_update(skip_locked=True)
            broadcast = await session.scalar(query)
            if broadcast is None or broadcast.state not in ("scheduled", "sending"):
                return 0
            if broadcast.fanned_out_at is not None:
                return 0
            broadcast.state = "sending"
            if broadcast.deliveries_at is None:
                broadcast.deliveries_at = now
            start = broadcast.fanned_out_to
            last = int(await session.scalar(select(func.max(Resident.id))) or 0)
            end = min(start + self.settings.fanout_range, last)
            rows = audience_of(broadcast, (start, end)).subquery("audience")
            chosen = select(
                literal(broadcast.id),
                rows.c.resident_id,
                rows.c.channel,
                rows.c.locale,
                rows.c.ward,
                literal("queued"),
                literal(0),
                literal(now),
                # When its fan-out began, not now: all its rows in one month's partition, and
                # the unique (broadcast, resident, created_at) as strict as (broadcast, resident).
                literal(broadcast.deliveries_at, UtcDateTime()),
            )
            statement = insert(BroadcastDelivery).from_select(
                [
                    "broadcast_id",
                    "resident_id",
                    "channel",
                    "locale",
                    "ward",
                    "state",
                    "resends",
                    "updated_at",
                    "created_at",
                ],
                chosen,
            )
            new: Sequence[tuple[int, str]] = []
            if self.streams is None:
                result = await session.execute(statement)
                written = int(getattr(result, "rowcount", 0) or 0)
            else:
                # Only the ids and channels come back, for the streams.
                new = [
                    (int(row_id), str(channel))
                    for row_id, channel in await session.execute(
                        statement.returning(BroadcastDelivery.id, BroadcastDelivery.channel)
                    )
                ]
                written = len(new)
            broadcast.recipients += written
            broadcast.fanned_out_to = end
            if end >= last:
                broadcast.fanned_out_at = now
            broadcast.updated_at = now
        if new:
            await self._enqueue(new)
        # A range with nobody in it still counts as work, so the loop goes on to the next.
        return max(written, 1) if end < last else written

    async def _enqueue(self, new: Sequence[tuple[int, str]]) -> None:
        """After the commit (an entry never names a row a reader cannot see yet): the new
        rows' ids on their channel's stream, a claim batch per entry."""
        assert self.streams is not None
        by_channel: dict[str, list[int]] = {}
        for row_id, channel in new:
            by_channel.setdefault(channel, []).append(row_id)
        size = self.settings.batch_size
        for channel, ids in by_channel.items():
            ids.sort()
            await self.streams.enqueue(
                channel, [ids[i : i + size] for i in range(0, len(ids), size)]
            )

    # -- housekeeping --------------------------------------------------------------------------

    async def _expire(self) -> None:
        now = self.clock()
        async with self.sessionmaker() as session, session.begin():
            expired = (
                await session.scalars(
                    select(Broadcast.id).where(
                        Broadcast.state.in_(("awaiting_approval", "scheduled", "sending")),
                        Broadcast.expires_at.is_not(None),
                        Broadcast.expires_at <= now,
                    )
                )
            ).all()
            if not expired:
                return
            await session.execute(
                update(Broadcast)
                .where(Broadcast.id.in_(expired))
                .values(state="expired", updated_at=now)
            )
            await session.execute(
                update(BroadcastDelivery)
                .where(
                    BroadcastDelivery.broadcast_id.in_(expired),
                    BroadcastDelivery.state == "queued",
                )
                .values(state="skipped", error="expired", updated_at=now)
            )

    async def _finish(self) -> None:
        now = self.clock()
        pending = (
            select(BroadcastDelivery.id)
            .where(
                BroadcastDelivery.broadcast_id == Broadcast.id,
                # Its partition's rows only (the broadcast's deliveries_at is their created_at).
                BroadcastDelivery.created_at == Broadcast.deliveries_at,
                BroadcastDelivery.state.in_(("queued", "claimed", "sending")),
            )
            .exists()
        )
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                update(Broadcast)
                .where(Broadcast.state == "sending", Broadcast.fanned_out_at.is_not(None), ~pending)
                .values(state="sent", updated_at=now)
                .execution_options(synchronize_session=False)
            )

    # -- sending -------------------------------------------------------------------------------

    async def _send_some(self) -> int:
        """Several batches side by side, each lane taking its next batch as soon as its last is
        settled, for up to ``round_seconds`` (then the housekeeping of ``run_once`` comes round).

        One batch at a time left the provider idle while its rows were claimed, fenced and
        settled: a worker sent a third of the rate the pacer allowed. The lanes share the pacer
        (in its bulk lane, behind replies), so more of them never sends faster than the limit.
        """
        lanes = max(1, self.settings.batches_in_flight)
        if lanes == 1:
            return await self._send_batch()
        deadline = time.monotonic() + self.settings.round_seconds

        async def lane() -> int:
            sent = 0
            while (done := await self._send_batch()) and time.monotonic() < deadline:
                sent += done
            return sent + done

        # Every lane settles the batch it holds before an error of another is raised: a lane
        # cancelled mid-batch would leave its rows "unknown", never sent.
        outcomes = await asyncio.gather(*(lane() for _ in range(lanes)), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return sum(o for o in outcomes if isinstance(o, int))

    async def _send_batch(self) -> int:
        """Send the next entry of the streams (with Redis) or the next queued rows (without,
        and with Redis for what no entry carries: a resend, an entry lost with Redis)."""
        if self.streams is not None:
            entry = await self.streams.take(CHANNELS)
            if entry is not None:
                claims = await self._claim(ids=entry.ids)
                await self._send(claims)
                await self.streams.done(entry)
                return max(len(claims), 1)  # an entry consumed is work done
        claims = await self._claim()
        return await self._send(claims) if claims else 0

    def _live(self) -> Select[Any]:
        """Broadcasts whose rows may go now: sending, and in quiet hours only emergencies."""
        live = select(Broadcast.id).where(Broadcast.state == "sending")
        quiet = self.settings.quiet_hours
        if quiet is not None and quiet.contains(self.clock()):
            live = live.where(Broadcast.urgency == "emergency")
        return live

    async def _claim(self, ids: Sequence[int] | None = None) -> list[_Claim]:
        async def with_texts(
            session: AsyncSession, rows: Sequence[BroadcastDelivery]
        ) -> list[_Claim]:
            wanted = {r.broadcast_id for r in rows}
            broadcasts = {
                b.id: b
                for b in (
                    await session.scalars(select(Broadcast).where(Broadcast.id.in_(wanted)))
                ).all()
            }
            return [_claim(row, broadcasts[row.broadcast_id]) for row in rows]

        return await self.rows.claim(
            [BroadcastDelivery.broadcast_id.in_(self._live())],
            limit=self.settings.batch_size if ids is None else len(ids),
            ids=ids,
            also=with_texts,
        )

    async def _send(self, claims: Sequence[_Claim]) -> int:
        # The fence also checks the broadcast is still sending: a cancel lands between batches.
        still_sending = select(Broadcast.id).where(Broadcast.state == "sending")
        return await send_fenced(
            self.rows,
            claims,
            row_id=lambda c: c.id,
            message=_message,
            send=self.send,
            concurrency=self.settings.concurrency,
            timeout=self.settings.send_timeout_seconds,
            fence_where=[BroadcastDelivery.broadcast_id.in_(still_sending)],
            not_taken="cancelled or expired",
        )


def _message(claim: _Claim) -> ResidentMessage:
    return ResidentMessage(
        resident_id=claim.resident_id,
        channel=claim.channel,
        locale=claim.locale,
        text=claim.text,
        # Outside WhatsApp's window the channel sends the approved template configured
        # under this purpose (TWILIO_WHATSAPP_TEMPLATES), with the text as its variable.
        purpose=claim.template or "broadcast",
        reference=f"B{claim.broadcast_id}",
        template_variables={"text": claim.text},
    )


def _claim(row: BroadcastDelivery, broadcast: Broadcast) -> _Claim:
    texts = broadcast.texts
    text = texts.get(row.locale) or texts["en"]
    return _Claim(
        id=row.id,
        broadcast_id=row.broadcast_id,
        resident_id=row.resident_id,
        channel=row.channel,
        locale=row.locale,
        text=f"{text} {footer(row.locale, row.ward)}",
        template=broadcast.whatsapp_template if row.channel == "whatsapp" else None,
    )
