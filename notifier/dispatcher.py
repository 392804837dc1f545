"""The dispatcher: sends every stored notification to its resident, once, however the send goes.

The filer and the status poller write ``resident_notifications`` rows in the same transaction as
what they are about (``notifier.outbox.enqueue``); this worker takes due rows and hands them to a
``SendToResident`` (``ResidentDelivery`` in the app, which renders per channel, paces and waits
out provider 429s).

- **Never lost.** A failed send leaves the row pending, tried again after 30 s, 2, 10 and 30
  minutes (jittered; the last repeats) until ``max_attempts``; then it is settled ``failed`` with
  the reason, logged as an error and counted in ``citybot_notification_alerts``.
- **Never to the wrong person.** An opted-out or erased resident's row is settled ``skipped``;
  so is a status update that a later one for the same request superseded while it waited.
- **Never twice, but one case.** A claim gives the row a lease (``claimed_until``) in one short
  transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serialises writers, so there
  the claims simply take turns), so two dispatchers never hold the same row, and the attempt
  number fences off one whose lease ran out. A send is cut off well before the lease ends. The
  one duplicate left is at-least-once by nature: a process that dies (or is cut off) after the
  provider accepted a message and before the row says ``sent`` leaves the row pending, and it is
  sent again once the lease runs out. Nothing can tell "accepted" from "not sent" then. (Likewise
  a text the channel splits into parts, whose later part fails, is sent again whole.)
- **Quiet hours.** While they last, rows whose purpose is in ``quiet_purposes`` (status updates)
  wait; "your report is filed" is an answer to something the resident just did and goes at once.

A resident's rows are sent in the order they were written; different residents' go side by side
(``concurrency``), each channel pacing itself.

Example::

    dispatcher = NotificationDispatcher(sessionmaker, ResidentDelivery(sessionmaker, channels))
    await dispatcher.run_once()          # sends what is due now; returns how many rows it took
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier.outbox import SUPERSEDED
from notifier.ports import ResidentGone, ResidentMessage, SendToResident, Undeliverable
from notifier.quiet_hours import QuietHours
from storage.models import ResidentNotification

__all__ = ["DispatchSettings", "NotificationDispatcher"]

log = logging.getLogger("citybot.dispatch")


@dataclass(frozen=True, slots=True)
class DispatchSettings:
    # Seconds before the 1st, 2nd, 3rd... retry; the last one repeats until max_attempts.
    retry_delays: tuple[float, ...] = (30.0, 120.0, 600.0, 1800.0)
    jitter: float = 0.2
    max_attempts: int = 8
    # How long a claimed row is ours. ``ResidentDelivery`` waits out 429s and provider outages
    # inside one attempt, so a send is given most of that and then cut off (see the docstring).
    lease_seconds: float = 300.0
    send_timeout_seconds: float = 240.0
    batch_size: int = 50
    # Residents served side by side; each channel's pacer keeps the providers' limits.
    concurrency: int = 8
    idle_seconds: float = 1.0
    quiet_hours: QuietHours | None = None
    quiet_purposes: frozenset[str] = field(default_factory=lambda: frozenset({"status_update"}))


@dataclass(frozen=True, slots=True)
class _Claim:
    id: int
    number: int
    submission_id: int | None
    message: ResidentMessage


@dataclass(frozen=True, slots=True)
class _Outcome:
    kind: str  # sent, skipped, undeliverable, retry
    reason: str | None = None


class NotificationDispatcher:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        send: SendToResident,
        *,
        settings: DispatchSettings | None = None,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.send = send
        self.settings = settings or DispatchSettings()
        self.clock = clock
        self.rng = rng or random.Random()
        registry = registry or CollectorRegistry()
        self.settled = Counter(
            "citybot_notifications",
            "Notifications settled or retried, by outcome (sent, skipped, retry, failed)",
            ["outcome"],
            registry=registry,
        )
        self.alerts = Counter(
            "citybot_notification_alerts",
            "Notifications given up on after max_attempts, or that cannot be delivered",
            registry=registry,
        )

    # -- the loop ------------------------------------------------------------------------------

    async def run_once(self) -> int:
        """Send every row due now; returns how many rows this dispatcher took."""
        claims = await self._claim()
        by_resident: dict[int, list[_Claim]] = {}
        for claim in claims:
            by_resident.setdefault(claim.message.resident_id, []).append(claim)
        gate = asyncio.Semaphore(max(1, self.settings.concurrency))

        async def one_resident(queue: list[_Claim]) -> None:
            async with gate:
                for claim in queue:  # in the order they were written
                    await self._finish(claim, await self._deliver(claim))

        # Every resident's sends run to the end even if another's bookkeeping fails: cutting a
        # send off mid-way is what could make a message go twice.
        results = await asyncio.gather(
            *(one_resident(queue) for queue in by_resident.values()), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return len(claims)

    # -- claiming ------------------------------------------------------------------------------

    async def _claim(self) -> list[_Claim]:
        now = self.clock()
        query = (
            select(ResidentNotification)
            .where(
                ResidentNotification.state == "pending",
                ResidentNotification.next_attempt_at <= now,
                or_(
                    ResidentNotification.claimed_until.is_(None),
                    ResidentNotification.claimed_until <= now,
                ),
            )
            .order_by(ResidentNotification.id)
            .limit(self.settings.batch_size)
        )
        quiet = self.settings.quiet_hours
        if quiet is not None and quiet.contains(now) and self.settings.quiet_purposes:
            query = query.where(ResidentNotification.purpose.not_in(self.settings.quiet_purposes))
        claims: list[_Claim] = []
        async with self.sessionmaker() as session, session.begin():
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            for row in (await session.scalars(query)).all():
                row.attempts += 1
                row.claimed_until = now + timedelta(seconds=self.settings.lease_seconds)
                claims.append(
                    _Claim(
                        id=row.id,
                        number=row.attempts,
                        submission_id=row.submission_id,
                        message=ResidentMessage(
                            resident_id=row.resident_id,
                            channel=row.channel,
                            locale=row.locale,
                            text=row.text,
                            purpose=row.purpose,
                            reference=row.reference,
                            template_variables={
                                str(k): str(v) for k, v in (row.template_variables or {}).items()
                            },
                        ),
                    )
                )
        return claims

    # -- one send ------------------------------------------------------------------------------

    async def _deliver(self, claim: _Claim) -> _Outcome:
        try:
            await asyncio.wait_for(
                self.send(claim.message), timeout=self.settings.send_timeout_seconds
            )
        except ResidentGone as exc:
            return _Outcome("skipped", str(exc))
        except Undeliverable as exc:
            return _Outcome("undeliverable", str(exc))
        except TimeoutError:
            return _Outcome("retry", f"no answer within {self.settings.send_timeout_seconds:g} s")
        except Exception as exc:  # NotDelivered, a database or network error: try again later
            return _Outcome("retry", f"{type(exc).__name__}: {exc}")
        return _Outcome("sent")

    # -- recording -----------------------------------------------------------------------------

    def _delay(self, number: int) -> timedelta:
        delays = self.settings.retry_delays or (60.0,)
        base = delays[min(number - 1, len(delays) - 1)]
        spread = 1 + self.rng.uniform(-self.settings.jitter, self.settings.jitter)
        return timedelta(seconds=max(0.0, base * spread))

    async def _finish(self, claim: _Claim, outcome: _Outcome) -> None:
        now = self.clock()
        values: dict[str, Any]
        kind = outcome.kind
        async with self.sessionmaker() as session, session.begin():
            if kind == "retry" and await self._superseded(session, claim):
                kind, outcome = "skipped", _Outcome("skipped", SUPERSEDED)
            if kind == "sent":
                values = {"state": "sent", "sent_at": now, "last_error": None}
            elif kind == "skipped":
                values = {"state": "skipped", "last_error": outcome.reason}
            elif kind == "undeliverable" or claim.number >= self.settings.max_attempts:
                values = {"state": "failed", "last_error": outcome.reason}
            else:
                values = {"next_attempt_at": now + self._delay(claim.number)}
                values["last_error"] = outcome.reason
            if values.get("state") in ("sent", "skipped"):
                values |= {"text": "", "template_variables": {}}
            result = await session.execute(
                update(ResidentNotification)
                # The attempt number fences off a dispatcher whose lease ran out meanwhile.
                .where(
                    ResidentNotification.id == claim.id,
                    ResidentNotification.attempts == claim.number,
                    ResidentNotification.state == "pending",
                )
                .values(claimed_until=None, **values)
                .execution_options(synchronize_session=False)
            )
        if not getattr(result, "rowcount", 0):
            log.warning("notification %s was taken over while this dispatcher sent it", claim.id)
            return
        self._count(claim, kind, outcome, values)

    async def _superseded(self, session: AsyncSession, claim: _Claim) -> bool:
        """A later row of the same purpose for the same request exists: this one is stale."""
        if claim.submission_id is None:
            return False
        later = await session.scalar(
            select(ResidentNotification.id)
            .where(
                ResidentNotification.submission_id == claim.submission_id,
                ResidentNotification.purpose == claim.message.purpose,
                ResidentNotification.id > claim.id,
                ResidentNotification.state.in_(("pending", "sent")),
            )
            .limit(1)
        )
        return later is not None

    def _count(self, claim: _Claim, kind: str, outcome: _Outcome, values: dict[str, Any]) -> None:
        what = f"{claim.message.purpose} for {claim.message.reference} on {claim.message.channel}"
        state = values.get("state")
        if state == "failed":
            self.settled.labels(outcome="failed").inc()
            self.alerts.inc()
            log.error(
                "gave up on notification %s (%s) after %d attempts: %s",
                claim.id,
                what,
                claim.number,
                outcome.reason,
            )
        elif state is None:
            self.settled.labels(outcome="retry").inc()
            log.warning(
                "notification %s (%s) not sent, attempt %d; next at %s: %s",
                claim.id,
                what,
                claim.number,
                values["next_attempt_at"].isoformat(timespec="seconds"),
                outcome.reason,
            )
        else:
            self.settled.labels(outcome=kind).inc()
            if kind == "skipped":
                log.info("notification %s (%s) skipped: %s", claim.id, what, outcome.reason)
