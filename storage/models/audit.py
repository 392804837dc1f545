"""The audit log: who did what to which record, hash-chained so tampering shows.

Rows are appended by whoever acts (a resident's turn, an erasure, a staff action) with no hash,
inside their own transaction, so busy writers never queue on one row. ``staff.audit`` seals them
later: it gives each unsealed row the next place in the chain (``seq``) and
``hash = sha256(prev_hash + canonical row)``; ``citybot audit verify`` walks the chain.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base
from storage.types import JsonDocument, UtcDateTime, utc_now

__all__ = ["AuditLog"]


class AuditLog(Base):
    """Who did what to which record: erasures, opt-outs, staff actions. No resident's personal
    data in it."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now, index=True)
    # "resident:12", "staff:7", "cli", "system".
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str | None] = mapped_column(String(128))
    details: Mapped[dict[str, Any]] = mapped_column(JsonDocument, default=dict)
    # The network address a staff action came from (None for residents' turns and the CLI).
    address: Mapped[str | None] = mapped_column(String(64))
    # The place in the hash chain, given when sealed (None until then). Chain order is seal
    # order, not id order: a transaction that took an id early may commit after later ones.
    seq: Mapped[int | None] = mapped_column(Integer, unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))
