"""The audit log as a hash chain: staff actions recorded, every row sealed, tampering found.

Residents' turns and erasures append audit rows with no hash inside their own transactions, so
thousands of turns never wait on one another for the audit log. ``seal`` chains the rows not yet
sealed, oldest id first, after the last sealed row: each gets the next place (``seq``), the hash
of the row before it (``prev_hash``) and ``hash = sha256(prev_hash + canonical row)``. Sealers
take turns (a PostgreSQL advisory lock; SQLite's ``BEGIN IMMEDIATE`` already serialises
writers), and ``seq`` is unique, so there is one chain whatever runs at once.

``record`` (every staff action) appends its row and seals in the same transaction; ``citybot
audit verify`` seals and then ``verify`` walks the whole chain and names the first broken row.
Editing a sealed row breaks its hash; deleting or reordering one breaks the places and links.
What a chain alone cannot show is the newest rows cut off the end: ``verify`` reports the head
hash, and an operator who keeps it somewhere else can tell.

Example::

    async with sessionmaker() as session, session.begin():
        await record(session, actor="staff:7", action="account.disable",
                     target="staff:12", address="10.0.0.5")
    report = await verify(sessionmaker)
    report.broken        # None while nobody has touched the rows
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import AuditLog
from storage.types import utc_now

__all__ = ["GENESIS", "BrokenLink", "ChainReport", "canonical_row", "record", "seal", "verify"]

_TABLE = cast(Table, AuditLog.__table__)
# The prev_hash of the first row in the chain.
GENESIS = "0" * 64
# Any fixed number (not the migrations' one): sealers on PostgreSQL take turns on it.
_PG_SEAL_LOCK = 731_312
_BATCH = 500
_HASHED = (
    _TABLE.c.id,
    _TABLE.c.at,
    _TABLE.c.actor,
    _TABLE.c.action,
    _TABLE.c.subject,
    _TABLE.c.details,
    _TABLE.c.address,
)


@dataclass(frozen=True, slots=True)
class BrokenLink:
    """The first row where the chain does not hold, and why."""

    row_id: int
    seq: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class ChainReport:
    rows: int
    head: str
    broken: BrokenLink | None


def canonical_row(row: Mapping[Any, Any], seq: int) -> bytes:
    """The bytes a row's hash covers: every column but the chain's own, as sorted-key JSON."""
    at = cast(datetime, row["at"]).astimezone(UTC).isoformat(timespec="microseconds")
    document = {
        "seq": seq,
        "id": row["id"],
        "at": at,
        "actor": row["actor"],
        "action": row["action"],
        "subject": row["subject"],
        "details": row["details"],
        "address": row["address"],
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _link(prev_hash: str, row: Mapping[Any, Any], seq: int) -> str:
    return hashlib.sha256(prev_hash.encode() + canonical_row(row, seq)).hexdigest()


async def record(
    session: AsyncSession,
    *,
    actor: str,
    action: str,
    target: str | None = None,
    address: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> None:
    """Append a staff action to the audit log and seal the chain, in the caller's transaction
    (so the action and its audit row commit together or not at all)."""
    await session.execute(
        insert(_TABLE).values(
            at=utc_now(),
            actor=actor[:128],
            action=action[:64],
            subject=target[:128] if target else None,
            address=address[:64] if address else None,
            details=dict(details or {}),
        )
    )
    await seal(session)


async def seal(session: AsyncSession, *, limit: int | None = None) -> int:
    """Chain the committed rows not yet sealed (and the caller's own), at most ``limit`` of
    them; returns how many."""
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        await connection.execute(select(func.pg_advisory_xact_lock(_PG_SEAL_LOCK)))
    tip = (
        await connection.execute(
            select(_TABLE.c.seq, _TABLE.c.hash)
            .where(_TABLE.c.seq.is_not(None))
            .order_by(_TABLE.c.seq.desc())
            .limit(1)
        )
    ).first()
    seq, prev_hash = (int(tip.seq), str(tip.hash)) if tip is not None else (0, GENESIS)
    statement = (
        update(_TABLE)
        .where(_TABLE.c.id == bindparam("row_id"))
        .values(
            seq=bindparam("new_seq"), prev_hash=bindparam("new_prev"), hash=bindparam("new_hash")
        )
    )
    sealed = 0
    while limit is None or sealed < limit:
        batch = _BATCH if limit is None else min(_BATCH, limit - sealed)
        rows = (
            (
                await connection.execute(
                    select(*_HASHED)
                    .where(_TABLE.c.seq.is_(None))
                    .order_by(_TABLE.c.id)
                    .limit(batch)
                )
            )
            .mappings()
            .all()
        )
        if not rows:
            break
        links = []
        for row in rows:
            seq += 1
            digest = _link(prev_hash, row, seq)
            links.append(
                {"row_id": row["id"], "new_seq": seq, "new_prev": prev_hash, "new_hash": digest}
            )
            prev_hash = digest
        await connection.execute(statement, links)
        sealed += len(rows)
    return sealed


async def verify(sessions: async_sessionmaker[AsyncSession]) -> ChainReport:
    """Walk the sealed chain in order; the first row that does not hold is ``broken``.

    Each batch is read in a short transaction of its own: on SQLite any transaction holds the
    write lock, and a long log must not keep residents' turns waiting. Sealed rows are only ever
    added after the head, so batches read at different moments still make one chain.
    """
    async with sessions() as session:
        stray = await session.scalar(
            select(_TABLE.c.id)
            .where(_TABLE.c.seq.is_(None), _TABLE.c.hash.is_not(None))
            .order_by(_TABLE.c.id)
            .limit(1)
        )
    if stray is not None:
        return ChainReport(0, GENESIS, BrokenLink(stray, None, "has a hash but no place"))
    prev_hash, expected, last_seq = GENESIS, 1, 0
    while True:
        async with sessions() as session:
            result = await session.execute(
                select(*_HASHED, _TABLE.c.seq, _TABLE.c.prev_hash, _TABLE.c.hash)
                .where(_TABLE.c.seq > last_seq)
                .order_by(_TABLE.c.seq)
                .limit(_BATCH)
            )
            rows = result.mappings().all()
        if not rows:
            return ChainReport(expected - 1, prev_hash, None)
        for row in rows:
            broken = _check(row, expected, prev_hash)
            if broken is not None:
                return ChainReport(expected - 1, prev_hash, broken)
            prev_hash, expected = row["hash"], expected + 1
        last_seq = rows[-1]["seq"]


def _check(row: Mapping[Any, Any], expected: int, prev_hash: str) -> BrokenLink | None:
    if row["seq"] != expected:
        # A gap is a deleted row; a place taken twice cannot happen (seq is unique).
        return BrokenLink(
            row["id"],
            row["seq"],
            f"is at place {row['seq']} but place {expected} is missing (a row was deleted)",
        )
    if row["prev_hash"] != prev_hash:
        return BrokenLink(
            row["id"], row["seq"], "does not follow the row before it (rows reordered or replaced)"
        )
    if row["hash"] != _link(prev_hash, row, expected):
        return BrokenLink(row["id"], row["seq"], "was changed after it was sealed")
    return None
