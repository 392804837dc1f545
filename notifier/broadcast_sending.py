"""Sending broadcasts: fan-out into one row per resident, then paced sends, each at most once.

``BroadcastSender.run_once`` does, in order, what is due:

1. **Start.** A ``scheduled`` broadcast whose ``send_at`` has come becomes ``sending`` and fans
   out: its audience (``notifier.broadcast_audience``) is inserted into ``broadcast_deliveries``
   by ``INSERT ... SELECT`` in resident-id ranges, one short transaction each that also moves
   ``fanned_out_to``, so a restart carries on where it stopped and rows never pass through
   Python. Sending starts with the first range.
2. **Expire** what passed its ``expires_at``; **recover** what a dead sender held.
3. **Send.** Queued rows are claimed in small batches (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
   so any number of workers share the queue), only of broadcasts that are ``sending`` (a cancel
   is seen at the next claim) and, in quiet hours, only of emergencies. Each row is marked
   ``sending`` in its own commit just before the provider is called, and ``sent`` (with the
   provider's id, for receipts) after.

**At most once.** A row is sent only by the sender that moved it from ``claimed`` to
``sending``. A sender that dies holding ``claimed`` rows sent none of them: they are queued
again when the lease ends. One that dies holding ``sending`` rows may have sent them: they
become ``unknown`` and are never sent again. Providers offer no idempotency key, so "exactly
once" is not possible across a crash at that moment; the window is one provider call per row in
flight (``concurrency``). Opted-out or erased residents are skipped at their turn, however
late they opted out.

Example::

    sender = BroadcastSender(sessionmaker, ResidentDelivery(sessionmaker, channels))
    await sender.run_once()      # how many rows it fanned out or sent
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier.broadcasts import audience_of, footer
from notifier.ports import ResidentGone, ResidentMessage, Undeliverable
from notifier.quiet_hours import QuietHours
from storage.models import Broadcast, BroadcastDelivery, Resident
from storage.types import utc_now

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
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.send = send
        self.settings = settings or SenderSettings()
        self.clock = clock

    async def run_once(self) -> int:
        done = await self.start_due()
        await self._expire()
        await self._recover()
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
            )
            result = await session.execute(
                insert(BroadcastDelivery).from_select(
                    [
                        "broadcast_id",
                        "resident_id",
                        "channel",
                        "locale",
                        "ward",
                        "state",
                        "resends",
                        "updated_at",
                    ],
                    chosen,
                )
            )
            written = int(getattr(result, "rowcount", 0) or 0)
            broadcast.recipients += written
            broadcast.fanned_out_to = end
            if end >= last:
                broadcast.fanned_out_at = now
            broadcast.updated_at = now
        # A range with nobody in it still counts as work, so the loop goes on to the next.
        return max(written, 1) if end < last else written

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

    async def _recover(self) -> None:
        """Rows a dead sender held: ``claimed`` ones were never sent (queue them again);
        ``sending`` ones may have been (``unknown``: never again)."""
        now = self.clock()
        held = BroadcastDelivery.claimed_until < now
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                update(BroadcastDelivery)
                .where(BroadcastDelivery.state == "claimed", held)
                .values(state="queued", claimed_until=None, updated_at=now)
            )
            lost = await session.execute(
                update(BroadcastDelivery)
                .where(BroadcastDelivery.state == "sending", held)
                .values(
                    state="unknown",
                    claimed_until=None,
                    error="the sender stopped during the provider call",
                    updated_at=now,
                )
            )
        unknown = int(getattr(lost, "rowcount", 0) or 0)
        if unknown:
            log.warning("%s broadcast messages may or may not have gone", unknown)

    async def _finish(self) -> None:
        now = self.clock()
        pending = (
            select(BroadcastDelivery.id)
            .where(
                BroadcastDelivery.broadcast_id == Broadcast.id,
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
        claims = await self._claim()
        if not claims:
            return 0
        slots = asyncio.Semaphore(self.settings.concurrency)

        async def one(claim: _Claim) -> None:
            async with slots:
                await self._send_one(claim)

        await asyncio.gather(*(one(c) for c in claims))
        return len(claims)

    async def _claim(self) -> list[_Claim]:
        now = self.clock()
        live = select(Broadcast.id).where(Broadcast.state == "sending")
        quiet = self.settings.quiet_hours
        if quiet is not None and quiet.contains(now):
            live = live.where(Broadcast.urgency == "emergency")
        query = (
            select(BroadcastDelivery)
            .where(BroadcastDelivery.state == "queued", BroadcastDelivery.broadcast_id.in_(live))
            .order_by(BroadcastDelivery.id)
            .limit(self.settings.batch_size)
        )
        async with self.sessionmaker() as session, session.begin():
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True, of=BroadcastDelivery)
            rows = (await session.scalars(query)).all()
            if not rows:
                return []
            until = now + timedelta(seconds=self.settings.lease_seconds)
            await session.execute(
                update(BroadcastDelivery)
                .where(BroadcastDelivery.id.in_([r.id for r in rows]))
                .values(state="claimed", claimed_until=until, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            broadcasts = {
                b.id: b
                for b in (
                    await session.scalars(
                        select(Broadcast).where(Broadcast.id.in_({r.broadcast_id for r in rows}))
                    )
                ).all()
            }
            return [_claim(row, broadcasts[row.broadcast_id]) for row in rows]

    async def _send_one(self, claim: _Claim) -> None:
        now = self.clock()
        # The fence: only the sender that moves the row from claimed to sending may send it,
        # and only while the broadcast is still sending (a cancel lands between two rows).
        async with self.sessionmaker() as session, session.begin():
            still_sending = select(Broadcast.id).where(
                Broadcast.id == claim.broadcast_id, Broadcast.state == "sending"
            )
            taken = await session.execute(
                update(BroadcastDelivery)
                .where(
                    BroadcastDelivery.id == claim.id,
                    BroadcastDelivery.state == "claimed",
                    BroadcastDelivery.broadcast_id.in_(still_sending),
                )
                .values(state="sending", updated_at=now)
                .execution_options(synchronize_session=False)
            )
        if not getattr(taken, "rowcount", 0):
            # Cancelled or expired meanwhile (a row another sender took is not "claimed"
            # any more, and stays as that sender leaves it).
            await self._settle(claim, "skipped", "cancelled or expired", only_from="claimed")
            return
        message = ResidentMessage(
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
        try:
            ids = await asyncio.wait_for(
                self.send(message), timeout=self.settings.send_timeout_seconds
            )
        except ResidentGone as exc:
            await self._settle(claim, "skipped", str(exc))
        except Undeliverable as exc:
            await self._settle(claim, "unreachable", str(exc))
        except TimeoutError:
            # No answer in time: the provider may well have taken it (the crash suite saw 26 of
            # 43 such messages delivered). "failed" would let resend-failed send it twice, so it
            # is unknown, as a send cut by a crash is: at most once.
            timeout = self.settings.send_timeout_seconds
            await self._settle(claim, "unknown", f"no answer from the provider within {timeout} s")
        except Exception as exc:  # NotDelivered, a timeout, a network error: resend can retry
            await self._settle(claim, "failed", f"{type(exc).__name__}: {exc}"[:500])
        else:
            await self._settle(claim, "sent", None, provider_id=ids[0] if ids else None)

    async def _settle(
        self,
        claim: _Claim,
        state: str,
        error: str | None,
        *,
        provider_id: str | None = None,
        only_from: str = "sending",
    ) -> None:
        values: dict[str, Any] = {
            "state": state,
            "error": error,
            "claimed_until": None,
            "updated_at": self.clock(),
        }
        if provider_id is not None:
            values["provider_message_id"] = provider_id[:64]
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                update(BroadcastDelivery)
                .where(BroadcastDelivery.id == claim.id, BroadcastDelivery.state == only_from)
                .values(**values)
                .execution_options(synchronize_session=False)
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
