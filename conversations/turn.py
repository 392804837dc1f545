"""The turn loop: one inbound message in, the effects to send out, everything stored on the way.

A turn, under the conversation's lock (so one resident's messages keep their arrival order):

1. get in: lock, dedupe (the provider's message id), the per-resident rate limit, the state;
2. the resident's profile, from the state (SQL only on first contact or when it is due a
   re-check, see ``conversations.residents``);
3. route the message (``conversations.router``): keywords, commands, the bot's own questions,
   the open form, the service picker;
4. SQL, only if the turn needs it, all of the turn's writes committed together: a ``Submit``
   becomes a submission and its outbox row (``conversations.submissions``), a changed profile
   is written back, audit rows; the resident's confirmation with the reference exists only
   after that commit;
5. get out: save the state, mark the message processed, unlock.

Where things are stored depends on the stores given:

* SQL state (the embedded default): steps 1, 4 and 5 are one transaction (processed marker
  first, state read, state write, the message log rows); all or nothing.
* Redis state, dedupe, locks and rate limits (scale-out): steps 1 and 5 are one Lua script each
  (``conversations.redis_turns``), an ordinary turn runs no SQL at all, and the message log is
  written behind the turn in batches (``conversations.message_log``). The SQL a turn does need
  is group committed with that of the turns in flight beside it (``storage.sql_batch``):
  first contacts found or created together, profile updates and audit rows written together,
  reports stored together. Each turn still waits for the commit before its resident is
  answered, and all of one turn's writes commit together; there is one transaction for many
  turns instead of one each. A turn that stores a report also writes the SQL processed marker
  in that transaction, so a submission is never stored twice even if Redis fails right after
  the commit.

If the database (or Redis) fails, ``handle`` raises before anything is marked processed, so the
web layer answers 503 and the provider retries the same message.

Example::

    loop = TurnLoop(sessionmaker=..., states=..., dedupe=..., locks=..., rate_limiter=...,
                    forms=standard_forms())          # bot.bootstrap.build_turn_loop wires it
    result = await loop.handle(InboundMessage("webchat", "s1", "m1", text="pothole"))
    result.effects   # [Notice(privacy...), Ask(step_id="service", ...)]
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from channels.types import InboundMessage
from conversations.aggregate_answers import remember_report
from conversations.commands import bypasses_rate_limit
from conversations.data_export import DataExport
from conversations.dedupe import BaseDedupe, SqlDedupe, mark_processed_in
from conversations.form_flow import DEFAULT_IDLE_TIMEOUT
from conversations.held_inbound import HeldInbound
from conversations.keys import ConversationKey
from conversations.locks import BaseLocks
from conversations.message_log import MessageLogWriter, inbound_row, outbound_row, write_rows
from conversations.office_hours import OfficeHours
from conversations.picker import ServicePicker
from conversations.ports import CityStatus, ReplyEncoder, ReplyQueueing
from conversations.rate_limit import (
    BaseRateLimiter,
    RateDecision,
)
from conversations.redis_turns import RedisTurnGate, fuse_redis_stores
from conversations.residents import (
    SEEN_RESOLUTION,
    FirstContact,
    ResidentProfile,
    create_resident,
    find_or_create_many,
    find_resident,
    resident_update,
    touch_address,
)
from conversations.router import Router
from conversations.state_store import BaseStateStore, SqlStateStore
from conversations.submissions import StoreWork, store_many, store_submission
from conversations.turn_context import Turn, Write, run_writes
from forms_runtime.effects import Effect, Notice, Submit
from forms_runtime.gazetteer import Gazetteer
from forms_runtime.i18n import N_, normalise_locale, tr
from forms_runtime.model import Form
from storage.models import PendingReply
from storage.sql_batch import SqlBatcher
from storage.types import utc_now

__all__ = ["DEFAULT_IDLE_TIMEOUT", "TurnLoop", "TurnResult"]

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# With the state in Redis, the profile is re-read from SQL this often (an opt-out or erasure
# recorded outside a turn is seen within this time). With the SQL state it is read every turn.
REDIS_PROFILE_RECHECK = timedelta(seconds=30)


@dataclass
class TurnResult:
    locale: str
    effects: list[Effect]
    duplicate: bool = False
    rate_limited: bool = False
    # Over the rate limit, and kept: its turn runs later (conversations.held_inbound).
    held: bool = False
    # Without Redis: the ``pending_replies`` row the reply was committed in, to delete once sent.
    pending_reply: int | None = None
    reference: str | None = None
    # The reply was committed with the turn (on the Redis reply stream): the caller must not
    # send it as well. False: the caller sends ``effects`` itself.
    reply_queued: bool = False
    # The turn erased the resident's personal data (DELETE MY DATA): a channel that keeps
    # anything of its own about the address (USSD's dialogue) must not write it again.
    erased: bool = False


class _AlreadyProcessed(Exception):
    """Another process committed this message first: roll back ours."""


class TurnLoop:
    """Runs turns. Collaborators are passed in, so tests and ``serve`` choose the backends."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        states: BaseStateStore,
        dedupe: BaseDedupe,
        locks: BaseLocks,
        rate_limiter: BaseRateLimiter,
        forms: Mapping[str, Form],
        gazetteer: Gazetteer | None = None,
        clock: Clock = utc_now,
        idle_timeout: timedelta = DEFAULT_IDLE_TIMEOUT,
        office_hours: OfficeHours | None = None,
        city_status: CityStatus | None = None,
        profile_recheck: timedelta | None = None,
        reply_queue: ReplyQueueing | None = None,
        on_close: Sequence[Callable[[], Awaitable[object]]] = (),
        data_export: DataExport | None = None,
        misses_for_person: int = 3,
        held: HeldInbound | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.states = states
        self.dedupe = dedupe
        self.locks = locks
        self.rate_limiter = rate_limiter
        self.forms = dict(forms)
        self.router = Router(
            self.forms,
            gazetteer=gazetteer,
            idle_timeout=idle_timeout,
            office_hours=office_hours,
            data_export=data_export,
            misses_for_person=misses_for_person,
        )
        self.clock = clock
        self.city_status = city_status
        # Messages over the rate limit are kept here and run later (None: told and dropped).
        self.held = held
        self._sql_state = isinstance(states, SqlStateStore)
        self._sql_dedupe = isinstance(dedupe, SqlDedupe)
        self._gate: RedisTurnGate | None = fuse_redis_stores(
            states, dedupe, locks, rate_limiter, reply_queue
        )
        if profile_recheck is None:
            profile_recheck = timedelta(0) if self._sql_state else REDIS_PROFILE_RECHECK
        self.profile_recheck = profile_recheck
        # With SQL state every turn has a transaction: the log goes in it. Otherwise, behind,
        # and the little SQL other turns need is group committed.
        engine: AsyncEngine = sessionmaker.kw["bind"]
        self.message_log: MessageLogWriter | None = None
        self._residents: SqlBatcher[FirstContact, tuple[ResidentProfile, bool]] | None = None
        self._writes: SqlBatcher[list[Write], None] | None = None
        self._stores: SqlBatcher[StoreWork, list[str] | None] | None = None
        if not self._sql_state:
            self.message_log = MessageLogWriter(engine)
            self._residents = SqlBatcher(engine, find_or_create_many, name="residents")
            self._writes = SqlBatcher(engine, _commit_writes, name="writes")
            if not self._sql_dedupe:
                self._stores = SqlBatcher(engine, store_many, name="submissions")
        self._sql_slots = asyncio.Semaphore(_sql_slots(engine))
        self._shared_reads = engine.dialect.name != "sqlite"
        # What whoever built this loop wants closed with it (an engine, a Redis client).
        self._on_close = list(on_close)

    @property
    def writers(self) -> tuple[MessageLogWriter | SqlBatcher[Any, Any], ...]:
        """The writers that queue SQL work behind the turns (none with the SQL state store)."""
        found = (self.message_log, self._residents, self._writes, self._stores)
        return tuple(w for w in found if w is not None)

    @property
    def picker(self) -> ServicePicker:
        return self.router.flow.picker

    async def flush(self) -> None:
        """Write the message log rows still queued (tests, and before reading the log)."""
        if self.message_log is not None:
            await self.message_log.flush()

    async def forget(self, resident_id: int, addresses: Iterable[tuple[str, str]]) -> None:
        """After an erasure made outside the conversation (an admin's): the resident's
        conversations start afresh (their state also holds the resident's profile), and log
        rows of theirs still queued lose their text once written. A turn of theirs that is
        running at this very moment may still save its state; it holds no personal data the
        erasure removed, only the resident's id, and the next profile check finds it erased."""
        for channel, address in addresses:
            await self.states.delete(ConversationKey(channel, address))
        if self.message_log is not None:
            self.message_log.scrub(resident_id)

    async def close(self) -> None:
        """Write what is queued, close the stores and what was handed in ``on_close``."""
        for batcher in (self._residents, self._writes, self._stores):
            if batcher is not None:
                await batcher.close()
        if self.message_log is not None:
            await self.message_log.close()
        if self._gate is not None:
            await self._gate.close()
        await self.states.close()
        await self.dedupe.close()
        await self.locks.close()
        await self.rate_limiter.close()
        for closer in reversed(self._on_close):
            await closer()

    # --- getting in and out --------------------------------------------------------------

    @property
    def queues_replies(self) -> bool:
        """Whether a turn can commit its reply on the reply queue (Redis stores and a queue)."""
        return self._gate is not None and self._gate.replies is not None

    async def handle(
        self, message: InboundMessage, reply: ReplyEncoder | None = None, *, held: bool = False
    ) -> TurnResult:
        """Run one turn. With ``reply`` and Redis stores, the reply is queued in the turn's
        commit (``TurnResult.reply_queued``); otherwise the caller sends ``effects``.

        A message over the resident's rate limit is held (``TurnResult.held``) and run later
        with ``held=True``, which runs it if the resident has a token again and otherwise
        leaves it held (``rate_limited``, nothing said)."""
        key = ConversationKey.of(message)
        if self._gate is not None:
            return await self._handle_through_gate(self._gate, message, key, reply, held)
        async with self.locks.hold(key):
            # The SQL marker is written first thing in the turn's own transaction (see _run), so
            # a separate look-up first would only cost a round trip.
            if not self._sql_dedupe and await self.dedupe.seen(
                message.channel, message.message_id, message.address
            ):
                return _duplicate(message)
            urgent = bypasses_rate_limit(message.text, channel=message.channel)
            decision = RateDecision.ALLOW if urgent else await self.rate_limiter.hit(key)
            if decision is not RateDecision.ALLOW:
                if self._sql_dedupe and await self.dedupe.seen(
                    message.channel, message.message_id, message.address
                ):
                    return _duplicate(message)
                envelope = await self.states.get(key) or {}
                return await self._limited(message, envelope, decision, held)
            # STOP and the like go first, even past a flood that is still held.
            if not (held or urgent) and await self._behind_held(key):
                return await self._limited(message, {}, RateDecision.DROP, held)
            try:
                stored = None if self._sql_state else await self.states.get(key)
                turn = await self._run(message, key, stored, held, reply)
            except _AlreadyProcessed:
                return _duplicate(message)
            if not self._sql_state:
                await self.states.set(key, turn.envelope)
            if not self._sql_dedupe:
                await self.dedupe.mark(message.channel, message.message_id, message.address)
            if await self._ask_city(turn) and turn.pending_reply is not None and reply:
                await self._rewrite_reply(turn, reply)
        return TurnResult(
            turn.locale,
            turn.effects,
            reference=turn.reference,
            pending_reply=turn.pending_reply,
            erased=turn.forget_resident,
        )

    async def _handle_through_gate(
        self,
        gate: RedisTurnGate,
        message: InboundMessage,
        key: ConversationKey,
        reply: ReplyEncoder | None,
        held: bool,
    ) -> TurnResult:
        async with gate.local.hold(key):
            urgent = bypasses_rate_limit(message.text, channel=message.channel)
            ticket = await gate.enter(key, message.channel, message.message_id, limited=not urgent)
            if ticket.duplicate:
                return _duplicate(message)
            if ticket.decision is not RateDecision.ALLOW:
                return await self._limited(message, ticket.state or {}, ticket.decision, held)
            if not (held or urgent) and await self._behind_held(key):
                await gate.abandon(ticket)
                return await self._limited(message, {}, RateDecision.DROP, held)
            try:
                turn = await self._run(message, key, ticket.state, held, defer=True)
                if turn.reference is not None:
                    # Marked processed in SQL with its report: a retry is a duplicate there, so
                    # this is the one run that can log it.
                    _after_commit(turn)
                # Before leave: the reply committed there must carry the city's answer.
                await self._ask_city(turn)
                queued = reply(turn.locale, turn.effects) if reply and turn.effects else None
            except _AlreadyProcessed:
                await gate.leave(ticket, None)  # the SQL marker says so: mark Redis too
                return _duplicate(message)
            except BaseException:
                await gate.abandon(ticket)
                raise
            await gate.leave(ticket, turn.envelope, queued)
            if turn.reference is None:
                # Logged once the turn is committed in Redis: a turn whose closing script
                # failed (Redis went away, a failover) runs again, and is logged then.
                _after_commit(turn)
        return TurnResult(
            turn.locale,
            turn.effects,
            reference=turn.reference,
            reply_queued=queued is not None,
            erased=turn.forget_resident,
        )

    async def _limited(
        self,
        message: InboundMessage,
        envelope: dict[str, Any],
        decision: RateDecision,
        held: bool,
    ) -> TurnResult:
        """Over the limit: hold the message for later (told once), or, when it is a held one
        being retried, leave it held and say nothing."""
        if held:
            return TurnResult(normalise_locale(message.language_hint), [], rate_limited=True)
        if self.held is None:
            return _rate_limited(message, envelope, decision, kept=False)
        # Told once a flood: when the first of its messages is held, not at each refill.
        behind = await self.held.waiting(ConversationKey.of(message))
        newly = await self.held.hold(message)
        told = RateDecision.WARN if newly and not behind else RateDecision.DROP
        result = _rate_limited(message, envelope, told)
        result.held = True
        return result

    async def _behind_held(self, key: ConversationKey) -> bool:
        """Whether earlier messages of this conversation are held: a new one waits its turn."""
        return self.held is not None and await self.held.waiting(key)

    async def _ask_city(self, turn: Turn) -> bool:
        """Replace the local status answer with what the city says now, if it answers."""
        if turn.city_query is None or self.city_status is None:
            return False
        index, reference, number, service_code = turn.city_query
        said = await self.city_status(reference, number, service_code, turn.locale)
        if said:
            turn.effects[index] = Notice(said)
        return bool(said)

    async def _rewrite_reply(self, turn: Turn, reply: ReplyEncoder) -> None:
        """The committed reply, with the city's answer asked after the commit (without Redis
        the city may be this very process, waiting for the database the turn held)."""
        entry = reply(turn.locale, turn.effects)
        if entry is None:
            return
        async with self.sessionmaker() as session, session.begin():
            await session.execute(
                update(PendingReply)
                .where(PendingReply.id == turn.pending_reply)
                .values(entry=entry.decode())
            )

    # --- the turn --------------------------------------------------------------------------

    async def _run(
        self,
        message: InboundMessage,
        key: ConversationKey,
        envelope: dict[str, Any] | None,
        held: bool = False,
        reply: ReplyEncoder | None = None,
        *,
        defer: bool = False,
    ) -> Turn:
        """Run the turn and commit its SQL; ``defer`` leaves ``after_commit`` to the caller."""
        turn = Turn(
            message,
            key,
            dict(envelope or {}),
            self.clock(),
            self.sessionmaker,
            self._sql_slots,
            shared_reads=self._shared_reads,
        )
        turn.late = held
        try:
            if self._sql_dedupe:
                # Marked processed in the same transaction as the turn's effects: both or
                # neither. On PostgreSQL a second process inserting it waits for this commit.
                session = await turn.sql()
                if not await mark_processed_in(session, message.channel, message.message_id):
                    raise _AlreadyProcessed
            if isinstance(self.states, SqlStateStore):
                session = await turn.sql()
                turn.envelope = dict(await self.states.get_in(session, key) or {})
            await self._find_resident(turn)
            before = turn.profile.facts()
            await self.router.route(turn)
            self._note_profile(turn, before)
            await self._store_submissions(turn)
            await self._finish(turn)
            await self._write(turn)
            if reply is not None and turn.effects and turn.in_transaction:
                await self._keep_reply(turn, reply)
            await turn.commit()
        except BaseException:
            await turn.rollback()
            raise
        if not defer:
            _after_commit(turn)
        return turn

    async def _keep_reply(self, turn: Turn, reply: ReplyEncoder) -> None:
        """Without Redis: the rendered reply in the turn's own transaction, so it exists
        exactly when the turn does (``notifier.reply_outbox`` sends and forgets it)."""
        entry = reply(turn.locale, turn.effects)
        if entry is None:
            return
        session = await turn.sql()
        row = PendingReply(
            channel=turn.message.channel,
            address=turn.message.address,
            entry=entry.decode(),
            created_at=turn.now,
        )
        session.add(row)
        await session.flush()
        turn.pending_reply = row.id

    async def _write(self, turn: Turn) -> None:
        """The turn's noted writes: in its transaction if it has one, else group committed."""
        if not turn.writes:
            return
        if turn.in_transaction or self._writes is None:
            await run_writes(await turn.sql(), turn.writes)
        else:
            await self._writes.submit(turn.writes)

    async def _find_resident(self, turn: Turn) -> None:
        message, now = turn.message, turn.now
        profile = ResidentProfile.from_json(turn.envelope.get("resident"))
        due = (
            profile is None
            or profile.checked_at is None
            or now - profile.checked_at >= self.profile_recheck
        )
        if due and self._residents is not None and not turn.in_transaction:
            locale = normalise_locale(message.language_hint)
            contact = FirstContact(message.channel, message.address, locale, now)
            profile, turn.new_resident = await self._residents.submit(contact)
        elif due:
            session = await turn.sql()
            profile = await find_resident(session, message.channel, message.address, now)
            if profile is None:
                locale = normalise_locale(message.language_hint)
                profile = await create_resident(
                    session, message.channel, message.address, locale, now
                )
                turn.new_resident = True
        assert profile is not None
        turn.profile = profile

    async def _store_submissions(self, turn: Turn) -> None:
        """Each Submit becomes a submission and its outbox row, and a confirmation to say."""
        submits = [e for e in turn.effects if isinstance(e, Submit)]
        if not submits:
            return
        message = turn.message
        if self._stores is not None and not turn.in_transaction:
            # Group committed with other turns' reports: marker, reports, outbox rows and this
            # turn's other writes, all in one transaction.
            work = StoreWork(
                message.channel,
                message.message_id,
                turn.resident_id,
                tuple((s, self.forms.get(s.form_id)) for s in submits),
                tuple(turn.writes),
                turn.now,
            )
            stored = await self._stores.submit(work)
            if stored is None:
                raise _AlreadyProcessed
            references = stored
            turn.writes.clear()
            turn.marked_processed = True
        else:
            session = await turn.sql()
            references = [
                await store_submission(
                    session,
                    submit,
                    self.forms.get(submit.form_id),
                    resident_id=turn.resident_id,
                    channel=message.channel,
                    now=turn.now,
                )
                for submit in submits
            ]
        told = iter(references)
        effects: list[Effect] = []
        for effect in turn.effects:
            if not isinstance(effect, Submit):
                effects.append(effect)
                continue
            turn.reference = reference = next(told)
            if turn.envelope.get("form") is not None:
                # Optional questions follow the report: their answers are counted with it.
                remember_report(turn, reference)
            text = N_("{confirmation} Your reference is {reference}.")
            said = tr(effect.locale, text, confirmation=effect.confirmation, reference=reference)
            effects.append(Notice(said))
        turn.effects = effects

    def _note_profile(self, turn: Turn, before: tuple[Any, ...]) -> None:
        """A profile the turn changed is written back, committed with the turn."""
        if not turn.forget_resident and turn.profile.facts() != before:
            turn.write(*resident_update(turn.profile))

    async def _finish(self, turn: Turn) -> None:
        """Log the messages, save the state (SQL store)."""
        message, now, profile = turn.message, turn.now, turn.profile
        if not turn.forget_resident:
            if profile.seen_at is None or now - profile.seen_at >= SEEN_RESOLUTION:
                profile.seen_at = now
                if turn.in_transaction:
                    await touch_address(await turn.sql(), message.channel, message.address, now)
                elif self.message_log is not None:
                    self.message_log.touch(message.channel, message.address, now)
            turn.envelope["resident"] = profile.to_json()
        turn.envelope["locale"] = profile.locale
        turn.envelope["touched"] = now.isoformat()
        rows = [inbound_row(message, profile.id, now)]
        if turn.withhold_text:
            rows[0]["text"] = None
        if turn.effects:
            rows.append(outbound_row(message, profile.id, turn.effects, now, late=turn.late))
        if turn.forget_resident:
            # The erasure's own exchange is logged after the scrub: its words ("yes") are not
            # personal, but where it came from is.
            for row in rows:
                row["address"] = None
        if self.message_log is None:
            await write_rows(await turn.sql(), rows)
        else:
            writer = self.message_log
            if turn.forget_resident:
                # Rows of this resident still queued lose their text once written.
                resident_id = profile.id
                turn.after_commit.append(lambda: writer.scrub(resident_id))
            turn.after_commit.append(lambda: writer.add(*rows))
        # A turn that stored a report is marked in SQL too, so the report is stored once even
        # if Redis fails after the commit and the provider retries. (Other SQL work of a turn,
        # such as finding the resident, is safe to repeat.)
        if (
            turn.reference is not None
            and not self._sql_dedupe
            and not turn.marked_processed
            and not await mark_processed_in(await turn.sql(), message.channel, message.message_id)
        ):
            raise _AlreadyProcessed
        if isinstance(self.states, SqlStateStore):
            await self.states.set_in(await turn.sql(), turn.key, turn.envelope)


def _after_commit(turn: Turn) -> None:
    actions, turn.after_commit = turn.after_commit, []
    for action in actions:
        action()


async def _commit_writes(connection: AsyncConnection, turns: list[list[Write]]) -> list[None]:
    """The writes of many turns in one transaction (the ``SqlBatcher`` of writes)."""
    await run_writes(connection, [write for writes in turns for write in writes])
    return [None] * len(turns)


def _sql_slots(engine: AsyncEngine) -> int:
    """How many turns may hold a SQL transaction at once.

    SQLite has one writer at a time: turns queue in order here rather than in SQLite's busy
    handler, which polls with sleeps of up to 100 ms and lets a lucky connection win again and
    again. PostgreSQL: the pool's steady size, leaving the overflow to the web and workers.
    """
    if engine.dialect.name == "sqlite":
        return 1
    size = getattr(engine.pool, "size", None)
    return max(1, int(size())) if callable(size) else 5


def _duplicate(message: InboundMessage) -> TurnResult:
    return TurnResult(normalise_locale(message.language_hint), [], duplicate=True)


def _rate_limited(
    message: InboundMessage, envelope: dict[str, Any], decision: RateDecision, *, kept: bool = True
) -> TurnResult:
    locale = normalise_locale(envelope.get("locale") or message.language_hint)
    effects: list[Effect] = []
    if decision is RateDecision.WARN:
        text = (
            N_(
                "You are sending messages faster than I can answer. I have them all and will answer them in order in a moment."
            )
            if kept
            else N_(
                "You are sending messages faster than I can answer. Wait a minute, then send your last message again."
            )
        )
        effects.append(Notice(tr(locale, text)))
    return TurnResult(locale, effects, rate_limited=True)
