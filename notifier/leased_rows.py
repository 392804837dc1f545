"""Rows sent at most once each: claimed with a lease, fenced before the provider call, settled.

Broadcast deliveries (``broadcast_deliveries``) and report digests (``report_digests``) are
both a table of messages, one row each, that must reach the provider at most once whatever
crashes. Both go through the same states, and ``LeasedRows`` owns them:

    queued ──claim──► claimed ──fence──► sending ──settle──► sent | failed | unreachable | skipped
      ▲                  │                  │
      └──lease ran out───┘                  └──lease ran out──► unknown (never sent again)

* **claim** takes queued rows for this sender with a lease (``claimed_until``): the next ones in
  id order (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so any number of senders share the
  table), or the rows a stream entry names (``notifier.delivery_streams``), by id;
* **fence** moves a batch from ``claimed`` to ``sending`` in one statement, just before the
  provider is called: only the sender whose fence moved a row may send it, so a row claimed
  again after its lease ran out (or re-delivered by a stream) is never sent twice;
* **settle** writes every outcome of a batch in one statement, each only if the row is still
  ``sending`` (or ``claimed``, for a row the fence did not take);
* **recover** gives back what a dead sender held: ``claimed`` rows were never sent (queued
  again); ``sending`` rows may have been (``unknown``: never sent again).

Three statements per batch (claim, fence, settle) instead of two per row keep the database's
share of a message small at a provider's full rate. The price is that a crash between a batch's
provider calls and its settle leaves the batch's sent rows ``unknown`` rather than ``sent``: the
window of "may or may not have gone" is one batch, as it was (its rows were all ``sending`` while
they waited for their pacing slots).

Example::

    rows = LeasedRows(sessionmaker, BroadcastDelivery, lease_seconds=120, what="broadcast messages")
    await rows.recover()
    claimed = await rows.claim([BroadcastDelivery.broadcast_id == 7], limit=20)
    taken = await rows.fence([row.id for row in claimed])
    await rows.settle([Outcome(row_id, "sent", provider_id="SM1") for row_id in taken])
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notifier.ports import ResidentGone, ResidentMessage, Undeliverable
from storage.types import utc_now

__all__ = ["LeasedRows", "Outcome", "send_fenced"]

log = logging.getLogger("citybot.dispatch")

Row = TypeVar("Row")
Claim = TypeVar("Claim")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one row: its final state, the reason, the provider's id."""

    id: int
    state: str
    error: str | None = None
    provider_id: str | None = None


class LeasedRows(Generic[Row]):
    """The claim → fence → settle life of ``model``'s rows (see the module's docstring).

    ``model`` has ``id``, ``state``, ``claimed_until``, ``error``, ``provider_message_id`` and
    ``updated_at``.
    """

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        model: type[Row],
        *,
        lease_seconds: float,
        what: str,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.model: Any = model
        self.lease = timedelta(seconds=lease_seconds)
        self.what = what
        self.clock = clock

    async def recover(self) -> int:
        """Give back what dead senders held; returns how many rows became ``unknown``."""
        model, now = self.model, self.clock()
        held = model.claimed_until < now
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                update(model)
                .where(model.state == "claimed", held)
                .values(state="queued", claimed_until=None, updated_at=now)
            )
            lost = await session.execute(
                update(model)
                .where(model.state == "sending", held)
                .values(
                    state="unknown",
                    claimed_until=None,
                    error="the sender stopped during the provider call",
                    updated_at=now,
                )
            )
        unknown = int(getattr(lost, "rowcount", 0) or 0)
        if unknown:
            log.warning("%s %s may or may not have gone", unknown, self.what)
        return unknown

    async def claim(
        self,
        where: Sequence[ColumnElement[bool]],
        *,
        limit: int,
        ids: Sequence[int] | None = None,
        also: Callable[[AsyncSession, Sequence[Row]], Awaitable[Sequence[Claim]]] | None = None,
    ) -> list[Any]:
        """Lease up to ``limit`` queued rows matching ``where`` (and among ``ids``, if given).

        ``also`` turns the rows into claims inside the same transaction (reading what they
        need, such as their broadcast's texts); without it the rows themselves are returned.
        """
        model, now = self.model, self.clock()
        query = select(model).where(model.state == "queued", *where)
        if ids is not None:
            query = query.where(model.id.in_(list(ids)))
        query = query.order_by(model.id).limit(limit)
        async with self.sessionmaker() as session, session.begin():
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True, of=model)
            rows = (await session.scalars(query)).all()
            if not rows:
                return []
            await session.execute(
                update(model)
                .where(model.id.in_([r.id for r in rows]))
                .values(state="claimed", claimed_until=now + self.lease, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            return list(await also(session, rows)) if also is not None else list(rows)

    async def fence(
        self, ids: Iterable[int], where: Sequence[ColumnElement[bool]] = ()
    ) -> set[int]:
        """Move these rows from ``claimed`` to ``sending`` (those still matching ``where``);
        returns the ids this sender may now send, and no other sender may."""
        model = self.model
        ids = list(ids)
        if not ids:
            return set()
        async with self.sessionmaker() as session, session.begin():
            taken = await session.scalars(
                update(model)
                .where(model.id.in_(ids), model.state == "claimed", *where)
                .values(state="sending", updated_at=self.clock())
                .returning(model.id)
                .execution_options(synchronize_session=False)
            )
            return set(taken.all())

    async def settle(self, outcomes: Sequence[Outcome], *, only_from: str = "sending") -> None:
        """Write every outcome in one statement, each only where the row is ``only_from``."""
        if not outcomes:
            return
        table = self.model.__table__
        now = self.clock()
        statement = (
            update(table)
            .where(table.c.id == bindparam("row_id"), table.c.state == only_from)
            .values(
                state=bindparam("new_state"),
                error=bindparam("new_error"),
                claimed_until=None,
                updated_at=now,
                # Keep an id already known (a resend's first one) when this send gave none.
                provider_message_id=func.coalesce(
                    bindparam("new_provider_id"), table.c.provider_message_id
                ),
            )
        )
        parameters = [
            {
                "row_id": o.id,
                "new_state": o.state,
                "new_error": o.error,
                "new_provider_id": o.provider_id[:64] if o.provider_id else None,
            }
            for o in outcomes
        ]
        async with self.sessionmaker() as session, session.begin():
            connection = await session.connection()
            await connection.execute(statement, parameters)


async def send_fenced(
    rows: LeasedRows[Any],
    claims: Sequence[Claim],
    *,
    row_id: Callable[[Claim], int],
    message: Callable[[Claim], ResidentMessage],
    send: Callable[[ResidentMessage], Awaitable[Sequence[str] | None]],
    concurrency: int,
    timeout: float,
    fence_where: Sequence[ColumnElement[bool]] = (),
    not_taken: str | None = None,
) -> int:
    """Fence ``claims``, send those this sender took side by side, settle them all.

    A claim the fence did not take is settled ``skipped`` with ``not_taken`` as the reason while
    still ``claimed`` (a broadcast cancelled meanwhile), or left alone if ``not_taken`` is None.
    Returns how many claims it handled.
    """
    taken = await rows.fence((row_id(c) for c in claims), fence_where)
    outcomes: list[Outcome] = []
    if not_taken is not None:
        left = [Outcome(row_id(c), "skipped", not_taken) for c in claims if row_id(c) not in taken]
        await rows.settle(left, only_from="claimed")
    slots = asyncio.Semaphore(concurrency)

    async def one(claim: Claim) -> None:
        async with slots:
            outcomes.append(await _send_one(row_id(claim), message(claim), send, timeout))

    try:
        await asyncio.gather(*(one(c) for c in claims if row_id(c) in taken))
    finally:
        # Even if this sender is being stopped: what went is written down as far as it is known.
        await rows.settle(outcomes)
    return len(claims)


async def _send_one(
    row_id: int,
    message: ResidentMessage,
    send: Callable[[ResidentMessage], Awaitable[Sequence[str] | None]],
    timeout: float,
) -> Outcome:
    try:
        ids = await asyncio.wait_for(send(message), timeout=timeout)
    except ResidentGone as exc:
        return Outcome(row_id, "skipped", str(exc))
    except Undeliverable as exc:
        return Outcome(row_id, "unreachable", str(exc))
    except TimeoutError:
        # No answer in time: the provider may well have taken it (the crash suite saw 26 of 43
        # such messages delivered). "failed" would let resend-failed send it twice, so it is
        # unknown, as a send cut by a crash is: at most once.
        return Outcome(row_id, "unknown", f"no answer from the provider within {timeout} s")
    except Exception as exc:  # NotDelivered, a network error: a resend can retry
        return Outcome(row_id, "failed", f"{type(exc).__name__}: {exc}"[:500])
    return Outcome(row_id, "sent", None, provider_id=ids[0] if ids else None)
