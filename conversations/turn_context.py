"""One turn in progress: the message, the conversation state, the resident, what to say.

The turn's SQL transaction is opened only when something needs it (``await turn.sql()``): with
the state in Redis, an ordinary answer to a question never touches the database; a submission,
a status look-up or an erasure does, and all of the turn's SQL writes then commit together.

Writes that need no answer from the database (a changed profile, an audit row) are only noted
(``turn.write``): the turn loop runs them in the turn's transaction if it has one, or else hands
them to a group commit with other turns' writes (``storage.sql_batch``). Either way they
are committed before the resident is answered, all of one turn's writes together.

Example::

    turn = Turn(message, key, envelope={}, now=now, open_session=sessionmaker)
    session = await turn.sql()          # BEGIN (once); the turn loop commits it
    turn.say(Notice("Hello"))
    turn.write(*resident_update(turn.profile))   # run at the end of the turn, committed with it
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, AsyncSessionTransaction
from sqlalchemy.sql.dml import UpdateBase

from channels.types import InboundMessage
from conversations.keys import ConversationKey
from conversations.periodic_read import PeriodicRead
from conversations.residents import ResidentProfile
from forms_runtime.effects import Effect
from storage.models import AuditLog

__all__ = ["Turn", "Write", "dialect_name", "run_writes"]

T = TypeVar("T")

# A statement and its parameters, run later; statements are shared so writes can go as one.
Write = tuple[UpdateBase, dict[str, Any]]

_AUDIT = insert(cast(Table, AuditLog.__table__))


def dialect_name(db: AsyncSession | AsyncConnection) -> str:
    """``"postgresql"`` or ``"sqlite"``: which prebuilt statement to run."""
    if isinstance(db, AsyncSession):
        return db.get_bind().dialect.name
    return db.dialect.name


async def run_writes(db: AsyncSession | AsyncConnection, writes: Sequence[Write]) -> None:
    """Run ``writes`` in the caller's transaction: one (multi-row) execution per statement.

    Statements run in the order each first appears. The writes of a turn do not depend on one
    another (an update of the resident, audit rows), so grouping them keeps their meaning.
    """
    grouped: dict[int, tuple[UpdateBase, list[dict[str, Any]]]] = {}
    for statement, params in writes:
        grouped.setdefault(id(statement), (statement, []))[1].append(params)
    for statement, rows in grouped.values():
        await db.execute(statement, rows)


@dataclass
class Turn:
    message: InboundMessage
    key: ConversationKey
    envelope: dict[str, Any]
    now: datetime
    open_session: Callable[[], AsyncSession]
    # Turns queue here, first come first served, for one of the pool's connections (see
    # ``TurnLoop``); without it a busy resident's next turn can take a connection ahead of
    # turns that have waited for seconds.
    sql_slots: asyncio.Semaphore | None = None
    # False on SQLite: see ``refreshed``.
    shared_reads: bool = True
    # Set by the turn loop before routing; ``None`` only before that.
    profile: ResidentProfile = field(default=None)  # type: ignore[assignment]
    new_resident: bool = False
    effects: list[Effect] = field(default_factory=list)
    reference: str | None = None
    # "status REF" of a filed report: (index of the local answer in effects, reference, city id),
    # asked of the city after the transaction commits (the city may be this process, on SQLite).
    city_query: tuple[int, str, str, str] | None = None
    # Run after the commit (never if the turn fails), e.g. scrubbing queued log rows.
    after_commit: list[Callable[[], None]] = field(default_factory=list)
    # The resident's data was erased: the next message starts afresh.
    forget_resident: bool = False
    # The SQL processed marker was written with the turn's reports (group committed).
    marked_processed: bool = False
    # A message held over the rate limit, run after its exchange (its reply is logged as late).
    late: bool = False
    # Without Redis: the row the reply was committed in (``TurnLoop._keep_reply``).
    pending_reply: int | None = None
    # The message answers an optional, counted-only question (gender, disability): its words
    # are not kept in the message log, where staff could read them per resident.
    withhold_text: bool = False
    # Writes that need no result, committed with the turn (see ``write``).
    writes: list[Write] = field(default_factory=list)
    _session: AsyncSession | None = None
    _transaction: AsyncSessionTransaction | None = None

    @property
    def locale(self) -> str:
        return self.profile.locale

    @property
    def resident_id(self) -> int:
        return self.profile.id

    def say(self, *effects: Effect) -> None:
        self.effects.extend(effects)

    @property
    def in_transaction(self) -> bool:
        return self._session is not None

    async def sql(self) -> AsyncSession:
        """The turn's session, in a transaction begun on first use."""
        if self._session is None:
            if self.sql_slots is not None:
                await self.sql_slots.acquire()
            session = self.open_session()
            try:
                self._transaction = await session.begin()
            except BaseException:
                await session.close()
                self._release_slot()
                raise
            self._session = session
        return self._session

    async def refreshed(
        self, copy: PeriodicRead[T], query: Callable[[AsyncSession], Awaitable[T]]
    ) -> T:
        """``copy``'s value, read again by ``query`` first when it is stale.

        On a server database the read runs in a session of its own, shared by every turn that
        finds the copy stale, so a turn that needs nothing else opens no transaction. On SQLite
        every transaction takes its one write lock and turns queue for it (``sql_slots``): a
        turn holding it could wait for a shared read that waits for the lock, so each turn
        reads in its own transaction there, as it would for anything else.
        """
        if not self.shared_reads:
            if copy.stale(self.now):
                copy.keep(await query(await self.sql()), self.now)
            return copy.value

        async def apart() -> T:
            async with self.open_session() as session:
                return await query(session)

        return await copy.get(self.now, apart)

    def _release_slot(self) -> None:
        if self.sql_slots is not None:
            self.sql_slots.release()

    def write(self, statement: UpdateBase, params: dict[str, Any]) -> None:
        """Run ``statement`` with ``params`` before the turn ends, committed with the turn."""
        self.writes.append((statement, params))

    async def audit(self, action: str, details: dict[str, Any] | None = None) -> None:
        """An audit row (no personal data), committed with the turn."""
        subject = f"resident:{self.profile.id}"
        row = {"at": self.now, "actor": subject, "action": action, "subject": subject}
        self.write(_AUDIT, {**row, "details": details or {}})

    async def commit(self) -> None:
        if self._session is not None and self._transaction is not None:
            try:
                await self._transaction.commit()
            finally:
                await self._session.close()
                self._session = self._transaction = None
                self._release_slot()

    async def rollback(self) -> None:
        if self._session is not None:
            try:
                if self._transaction is not None:
                    await self._transaction.rollback()
            finally:
                await self._session.close()
                self._session = self._transaction = None
                self._release_slot()
