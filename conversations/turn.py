"""The turn loop: one inbound message in, the effects to send out, everything stored on the way.

Order of a turn (DESIGN.md), all under the conversation's lock:

1. lock the conversation (first, so one resident's messages keep their arrival order), then
   dedupe (the provider's message id; with SQL dedupe the marker is the first write of the
   turn's transaction) and the per-resident rate limit;
2. load the state, find or create the resident;
3. opt-out / opt-in / help keywords, in every locale and every state;
4. support takeover (placeholder: no agent holds conversations yet);
5. global commands: menu, cancel, back, language, agent, status REF, subscribe, delete my data;
6. an open question of the bot's own (consent, continue?, language, service choice);
7. an open form: ``forms_runtime.engine.step`` (after a long break: continue or start over?);
8. no form: the service picker;
9. one database transaction writes the message log, a ``Submit`` as submission + outbox row,
   the processed marker and (SQL store) the state; only then is the resident's confirmation
   with the reference returned. If the database fails, ``handle`` raises and nothing is written,
   so the web layer answers 503 and the provider retries the same message.

Example::

    loop = await build_turn_loop(database_url="sqlite+aiosqlite:///./citybot.sqlite3")
    result = await loop.handle(InboundMessage("webchat", "s1", "m1", text="pothole"))
    result.effects   # [Notice(privacy...), Ask(step_id="service", ...)]
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.db.models import (
    AuditLog,
    HandoffRequest,
    MessageLog,
    Resident,
    ResidentAddress,
    Submission,
    SubmissionOutbox,
    Subscription,
)
from bot.db.session import create_engine, create_sessionmaker, default_database_url
from bot.db.types import utc_now
from channels.types import InboundMessage
from conversations.commands import Command, CommandKind, parse_command, parse_keyword
from conversations.dedupe import BaseDedupe, RedisDedupe, SqlDedupe
from conversations.keys import ConversationKey
from conversations.locks import BaseLocks, InProcessLocks, RedisLocks
from conversations.picker import MENU_OPTION, ServicePicker
from conversations.rate_limit import (
    BaseRateLimiter,
    InProcessRateLimiter,
    RateDecision,
    RedisRateLimiter,
)
from conversations.references import new_reference
from conversations.state_store import BaseStateStore, RedisStateStore, SqlStateStore
from forms_runtime import engine
from forms_runtime.effects import (
    Ask,
    Cancelled,
    Effect,
    Inbound,
    InputKind,
    Notice,
    OptionView,
    Reject,
    Review,
    Submit,
)
from forms_runtime.gazetteer import Gazetteer
from forms_runtime.i18n import LANGUAGE_NAMES, LOCALES, N_, normalise_locale, tr
from forms_runtime.model import Form, StepType
from forms_runtime.understanding.text import fold
from forms_runtime.understanding.yes_no import parse_yes_no

__all__ = ["DEFAULT_IDLE_TIMEOUT", "CityStatus", "TurnLoop", "TurnResult", "build_turn_loop"]

DEFAULT_IDLE_TIMEOUT = timedelta(hours=24)
Clock = Callable[[], datetime]
# What the city's back end says now about a filed report, in the resident's language:
# ``await city_status(reference, service_request_id, locale)`` -> a sentence, or None when the
# city cannot be asked (the answer then comes from the submissions table). Wired in bot/.
CityStatus = Callable[[str, str, str], Awaitable[str | None]]

# The bot's own questions, kept in the state envelope under "pending".
_CONSENT = "consent"
_RESUME = "resume"
_LANGUAGE = "language"
_SERVICE = "service"
_ERASE = "erase"

_CONTINUE_WORDS = frozenset({"continue", "carry on", "gaan voort", "qhubeka", "qhuba", "1"})
_RESTART_WORDS = frozenset(
    {
        "start over",
        "start again",
        "restart",
        "new",
        "begin weer",
        "qala kabusha",
        "qala kwakhona",
        "2",
    }
)

_STATUS_TEXTS: dict[str, str] = {
    "pending": N_("received and waiting to be sent to the city"),
    "filed": N_("sent to the city"),
    "open": N_("open: the city is working on it"),
    "acknowledged": N_("acknowledged by the city"),
    "closed": N_("closed by the city"),
    "failed": N_("delayed: we are still trying to send it to the city"),
}


@dataclass
class TurnResult:
    locale: str
    effects: list[Effect]
    duplicate: bool = False
    rate_limited: bool = False
    reference: str | None = None


class _AlreadyProcessed(Exception):
    """Another process committed this message first: roll back ours."""


@dataclass
class _Turn:
    message: InboundMessage
    key: ConversationKey
    session: AsyncSession
    resident: Resident
    envelope: dict[str, Any]
    now: datetime
    new_resident: bool
    effects: list[Effect] = field(default_factory=list)
    reference: str | None = None
    # "status REF" of a filed report: (index of the local answer in effects, reference, city id),
    # asked of the city after the transaction commits (the city may be this process, on SQLite).
    city_query: tuple[int, str, str] | None = None

    @property
    def locale(self) -> str:
        return self.resident.locale

    def say(self, *effects: Effect) -> None:
        self.effects.extend(effects)


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
        office_hours: str = "Monday to Friday, 08:00 to 16:30",
        city_status: CityStatus | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.states = states
        self.dedupe = dedupe
        self.locks = locks
        self.rate_limiter = rate_limiter
        self.forms = dict(forms)
        self.picker = ServicePicker(self.forms)
        self.gazetteer = gazetteer
        self.clock = clock
        self.idle_timeout = idle_timeout
        self.office_hours = office_hours
        self.city_status = city_status
        self._owned: list[Callable[[], Any]] = []

    async def close(self) -> None:
        """Close the stores and whatever ``build_turn_loop`` opened."""
        await self.states.close()
        await self.dedupe.close()
        await self.locks.close()
        await self.rate_limiter.close()
        for closer in reversed(self._owned):
            await closer()

    # --- the turn ------------------------------------------------------------------------

    async def handle(self, message: InboundMessage) -> TurnResult:
        key = ConversationKey.of(message)
        sql_dedupe = isinstance(self.dedupe, SqlDedupe)
        async with self.locks.hold(key):
            # The SQL marker is written first thing in the turn's own transaction (see _run), so
            # a separate look-up first would only cost a round trip.
            if not sql_dedupe and await self.dedupe.seen(message.channel, message.message_id):
                return TurnResult(normalise_locale(message.language_hint), [], duplicate=True)
            decision = await self.rate_limiter.hit(key)
            if decision is not RateDecision.ALLOW:
                if sql_dedupe and await self.dedupe.seen(message.channel, message.message_id):
                    return TurnResult(normalise_locale(message.language_hint), [], duplicate=True)
                envelope = await self.states.get(key) or {}
                return self._rate_limited(message, envelope, decision)
            try:
                turn = await self._run(message, key)
            except _AlreadyProcessed:
                return TurnResult(normalise_locale(message.language_hint), [], duplicate=True)
            if not isinstance(self.states, SqlStateStore):
                await self.states.set(key, turn.envelope)
            if not sql_dedupe:
                await self.dedupe.mark(message.channel, message.message_id)
            if turn.city_query is not None:
                await self._ask_city(turn, *turn.city_query)
        return TurnResult(turn.locale, turn.effects, reference=turn.reference)

    async def _ask_city(self, turn: _Turn, index: int, reference: str, number: str) -> None:
        """Replace the local status answer with what the city says now, if it answers."""
        if self.city_status is None:
            return
        said = await self.city_status(reference, number, turn.locale)
        if said:
            turn.effects[index] = Notice(said)

    def _rate_limited(
        self, message: InboundMessage, envelope: dict[str, Any], decision: RateDecision
    ) -> TurnResult:
        locale = normalise_locale(envelope.get("locale") or message.language_hint)
        effects: list[Effect] = []
        if decision is RateDecision.WARN:
            text = N_(
                "You are sending messages faster than I can answer. Wait a minute, then send your last message again."
            )
            effects.append(Notice(tr(locale, text)))
        return TurnResult(locale, effects, rate_limited=True)

    async def _run(self, message: InboundMessage, key: ConversationKey) -> _Turn:
        now = self.clock()
        states = self.states
        envelope = None if isinstance(states, SqlStateStore) else await states.get(key)
        async with self.sessionmaker() as session, session.begin():
            # Marked processed in the same transaction as the turn's effects: both or neither.
            # On PostgreSQL a second process inserting the same marker waits for this commit.
            if isinstance(self.dedupe, SqlDedupe) and not await self.dedupe.mark_in(
                session, message.channel, message.message_id
            ):
                raise _AlreadyProcessed
            if isinstance(states, SqlStateStore):
                envelope = await states.get_in(session, key)
            resident, new = await self._resident(session, message, now)
            turn = _Turn(message, key, session, resident, dict(envelope or {}), now, new)
            session.add(_log_in(message, resident.id, now))
            await self._route(turn)
            await self._store_submissions(turn)
            turn.envelope["locale"] = turn.resident.locale
            turn.envelope["touched"] = now.isoformat()
            if turn.effects:
                session.add(_log_out(message, resident.id, turn.effects, now))
            if isinstance(states, SqlStateStore):
                await states.set_in(session, key, turn.envelope)
        return turn

    async def _resident(
        self, session: AsyncSession, message: InboundMessage, now: datetime
    ) -> tuple[Resident, bool]:
        row = await session.execute(
            select(ResidentAddress, Resident)
            .join(Resident, Resident.id == ResidentAddress.resident_id)
            .where(
                ResidentAddress.channel == message.channel,
                ResidentAddress.address == message.address,
            )
        )
        found = row.first()
        if found is not None:
            address, resident = found
            address.last_inbound_at = now
            return resident, False
        resident = Resident(locale=normalise_locale(message.language_hint), created_at=now)
        session.add(resident)
        await session.flush()
        session.add(
            ResidentAddress(
                resident_id=resident.id,
                channel=message.channel,
                address=message.address,
                last_inbound_at=now,
                created_at=now,
            )
        )
        return resident, True

    async def _route(self, turn: _Turn) -> None:
        message = turn.message
        opted_out = turn.resident.opted_out_at is not None
        keyword = parse_keyword(message.text, channel=message.channel, opted_out=opted_out)
        if opted_out:
            # Nothing is sent to an opted-out resident; only opting back in is acted on.
            if keyword is not None and keyword.kind is CommandKind.OPT_IN:
                await self._opt_in(turn)
            return
        if turn.new_resident:
            turn.say(Notice(tr(turn.locale, _PRIVACY_NOTICE)))
        if keyword is not None:
            await self._keyword(turn, keyword)
            return
        if self._agent_holds(turn.key):
            return
        command = parse_command(message.text) if message.option_id is None else None
        if command is not None and await self._command(turn, command):
            return
        pending = turn.envelope.get("pending")
        if pending is not None and await self._answer_pending(turn, pending):
            return
        if turn.envelope.get("form") is not None:
            await self._form_turn(turn)
            return
        await self._pick_service(turn)

    def _agent_holds(self, key: ConversationKey) -> bool:
        """Support takeover comes with the support issue; until then no agent holds a chat."""
        return False

    # --- keywords ------------------------------------------------------------------------

    async def _keyword(self, turn: _Turn, keyword: Command) -> None:
        if keyword.kind is CommandKind.OPT_OUT:
            turn.resident.opted_out_at = turn.now
            turn.session.add(_audit(turn, "opt_out"))
            turn.envelope.pop("pending", None)
            # On SMS, Twilio confirms the opt-out itself and blocks our messages from now on.
            if turn.message.channel != "sms":
                text = N_(
                    "You will not get any more messages from us. Send START to use this service again."
                )
                turn.effects = [Notice(tr(turn.locale, text))]
            else:
                turn.effects = []
        elif keyword.kind is CommandKind.HELP:
            turn.say(Notice(tr(turn.locale, _HELP_TEXT)))
            self._repeat_question(turn)

    async def _opt_in(self, turn: _Turn) -> None:
        turn.resident.opted_out_at = None
        turn.session.add(_audit(turn, "opt_in"))
        turn.say(Notice(tr(turn.locale, N_("Welcome back. You will get messages from us again."))))
        if turn.envelope.get("form") is not None:
            self._offer_resume(turn)
        else:
            turn.say(self.picker.menu(turn.locale))

    def _repeat_question(self, turn: _Turn) -> None:
        state = turn.envelope.get("form")
        form = self._form_of(state)
        if form is not None and state is not None:
            turn.envelope["form"], effects = engine.resume(form, state)
            turn.say(*effects)

    # --- global commands -----------------------------------------------------------------

    async def _command(self, turn: _Turn, command: Command) -> bool:
        """Carry out a global command; ``False`` hands the text on (the form's own words)."""
        form_open = turn.envelope.get("form") is not None
        kind = command.kind
        if kind in (CommandKind.CANCEL, CommandKind.BACK) and form_open:
            return False  # the engine knows cancel and back in every locale
        if kind is CommandKind.MENU:
            if form_open:
                turn.say(
                    Notice(
                        tr(
                            turn.locale,
                            N_("Your unfinished report was cancelled. Nothing was sent."),
                        )
                    )
                )
            self._clear(turn)
            turn.say(self.picker.menu(turn.locale))
        elif kind in (CommandKind.CANCEL, CommandKind.BACK):
            self._clear(turn)
            turn.say(self.picker.menu(turn.locale))
        elif kind is CommandKind.LANGUAGE:
            if command.argument in LOCALES:
                self._switch_language(turn, command.argument)
            else:
                turn.envelope["pending"] = {"kind": _LANGUAGE}
                turn.say(_language_question(turn.locale))
        elif kind is CommandKind.AGENT:
            await self._request_agent(turn)
        elif kind is CommandKind.STATUS:
            await self._status(turn, command.argument or "")
        elif kind is CommandKind.SUBSCRIBE:
            await self._subscribe(turn, command.argument)
        elif kind is CommandKind.DELETE_DATA:
            turn.envelope["pending"] = {"kind": _ERASE}
            turn.say(_yes_no(turn.locale, _ERASE, _ERASE_QUESTION))
        return True

    def _clear(self, turn: _Turn) -> None:
        turn.envelope.pop("form", None)
        turn.envelope.pop("pending", None)

    def _switch_language(self, turn: _Turn, locale: str) -> None:
        turn.resident.locale = locale
        if _pending_kind(turn) == _LANGUAGE:
            turn.envelope.pop("pending", None)
        turn.say(
            Notice(
                tr(locale, N_("Language changed to {language}."), language=LANGUAGE_NAMES[locale])
            )
        )
        state = turn.envelope.get("form")
        if state is not None:
            state = {**state, "locale": locale}
            turn.envelope["form"] = state
            self._repeat_question(turn)
        elif turn.envelope.get("pending") is None:
            turn.say(self.picker.menu(locale))

    async def _request_agent(self, turn: _Turn) -> None:
        turn.session.add(
            HandoffRequest(
                resident_id=turn.resident.id, channel=turn.message.channel, created_at=turn.now
            )
        )
        text = N_(
            "I have asked our staff to contact you. They reply during office hours ({hours}), so it may take a while. Send MENU to report a problem meanwhile."
        )
        turn.say(Notice(tr(turn.locale, text, hours=self.office_hours)))

    async def _status(self, turn: _Turn, reference: str) -> None:
        found = None
        if reference:
            row = await turn.session.execute(
                select(Submission).where(Submission.reference == reference)
            )
            found = row.scalar_one_or_none()
        if found is None and reference:
            # The city's number: only the resident's own reports (city numbers are guessable).
            found = await turn.session.scalar(
                select(Submission)
                .where(
                    Submission.service_request_id == reference,
                    Submission.resident_id == turn.resident.id,
                )
                .limit(1)
            )
        if found is None:
            text = N_("I cannot find a report with that reference. References look like CT-7KQ4XM.")
            turn.say(Notice(tr(turn.locale, text)))
            return
        form = self.forms.get(found.form_id)
        title = tr(turn.locale, form.title) if form else found.service_code
        status = (
            tr(turn.locale, _STATUS_TEXTS[found.status])
            if found.status in _STATUS_TEXTS
            else found.status
        )
        if found.service_request_id:
            text = N_(
                "Report {reference} ({title}) is {status}. The city's number for it is {number}."
            )
            turn.say(
                Notice(
                    tr(
                        turn.locale,
                        text,
                        reference=found.reference,
                        title=title,
                        status=status,
                        number=found.service_request_id,
                    )
                )
            )
            if found.status != "pending" and self.city_status is not None:
                turn.city_query = (len(turn.effects) - 1, found.reference, found.service_request_id)
        else:
            text = N_("Report {reference} ({title}) is {status}.")
            turn.say(
                Notice(tr(turn.locale, text, reference=found.reference, title=title, status=status))
            )

    async def _subscribe(self, turn: _Turn, place: str | None) -> None:
        ward = self._ward_of_place(place) if place else await self._last_ward(turn)
        if ward is None:
            if place:
                text = N_(
                    "I do not know that place. Send SUBSCRIBE and the name of your suburb, for example SUBSCRIBE Khayelitsha."
                )
            else:
                text = N_(
                    "Send SUBSCRIBE and the name of your suburb, for example SUBSCRIBE Khayelitsha."
                )
            turn.say(Notice(tr(turn.locale, text)))
            return
        exists = await turn.session.execute(
            select(Subscription.id).where(
                Subscription.resident_id == turn.resident.id, Subscription.ward == ward
            )
        )
        if exists.first() is None:
            turn.session.add(
                Subscription(resident_id=turn.resident.id, ward=ward, created_at=turn.now)
            )
        text = N_("You will get news for ward {ward}. Send STOP to stop all messages.")
        turn.say(Notice(tr(turn.locale, text, ward=ward)))

    def _ward_of_place(self, place: str) -> str | None:
        if self.gazetteer is None:
            return None
        match = self.gazetteer.match_place(place)
        return match.best.ward if match.best is not None else None

    async def _last_ward(self, turn: _Turn) -> str | None:
        row = await turn.session.execute(
            select(Submission.ward)
            .where(Submission.resident_id == turn.resident.id, Submission.ward.is_not(None))
            .order_by(Submission.id.desc())
            .limit(1)
        )
        ward: str | None = row.scalar_one_or_none()
        return ward

    # --- the bot's own questions ---------------------------------------------------------

    async def _answer_pending(self, turn: _Turn, pending: dict[str, Any]) -> bool:
        kind = pending.get("kind")
        message = turn.message
        if kind == _SERVICE:
            return self._answer_service(turn, pending)
        if kind == _LANGUAGE:
            chosen = _chosen_language(message)
            if chosen is None:
                turn.say(_language_question(turn.locale))
            else:
                turn.envelope.pop("pending", None)
                self._switch_language(turn, chosen)
            return True
        if kind == _RESUME:
            return self._answer_resume(turn, message)
        answer = _yes_no_answer(message)
        if answer is None:
            turn.say(Reject(tr(turn.locale, N_("Reply YES or NO."))))
            if kind == _ERASE:
                turn.say(_yes_no(turn.locale, _ERASE, _ERASE_QUESTION))
            else:
                turn.say(self._consent_question(turn))
            return True
        turn.envelope.pop("pending", None)
        if kind == _ERASE:
            if answer:
                await self._erase(turn)
            else:
                turn.say(Notice(tr(turn.locale, N_("Nothing was deleted."))))
            return True
        if kind == _CONSENT:
            if answer:
                turn.resident.consent_at = turn.now
                turn.resident.consent_declined_at = None
            else:
                turn.resident.consent_declined_at = turn.now
                text = N_(
                    "That is fine. I will not ask for your name, phone number or email, so the city cannot contact you about this report."
                )
                turn.say(Notice(tr(turn.locale, text)))
            turn.session.add(_audit(turn, "consent_given" if answer else "consent_declined"))
            form = self.forms.get(str(pending.get("form_id")))
            if form is not None:
                self._start_form(turn, form)
            return True
        return False

    def _answer_service(self, turn: _Turn, pending: dict[str, Any]) -> bool:
        offered = [str(f) for f in pending.get("offered", [])]
        chosen = self.picker.choose(turn.message.text, turn.message.option_id, offered)
        if chosen is None:
            turn.envelope.pop("pending", None)
            return False  # new words: let the picker try them
        turn.envelope.pop("pending", None)
        if chosen == MENU_OPTION:
            self._show_menu(turn)
        else:
            self._open_form(turn, self.forms[chosen])
        return True

    def _answer_resume(self, turn: _Turn, message: InboundMessage) -> bool:
        choice = message.option_id or fold(message.text or "")
        turn.envelope.pop("pending", None)
        if choice in _CONTINUE_WORDS or parse_yes_no(message.text or "") is True:
            self._repeat_question(turn)
            return True
        turn.envelope.pop("form", None)
        if choice in _RESTART_WORDS or parse_yes_no(message.text or "") is False:
            turn.say(self.picker.menu(turn.locale))
            return True
        return False  # something new: the old form is dropped and the picker reads it

    def _offer_resume(self, turn: _Turn) -> None:
        form = self._form_of(turn.envelope.get("form"))
        if form is None:
            turn.envelope.pop("form", None)
            return
        turn.envelope["pending"] = {"kind": _RESUME}
        locale = turn.locale
        turn.say(
            Ask(
                step_id=_RESUME,
                prompt=tr(
                    locale,
                    N_(
                        "You have an unfinished report: {title}. Do you want to continue it or start over?"
                    ),
                    title=tr(locale, form.title),
                ),
                kind=InputKind.CHOICE,
                options=(
                    OptionView("continue", tr(locale, N_("Continue"))),
                    OptionView("restart", tr(locale, N_("Start over"))),
                ),
            )
        )

    def _consent_question(self, turn: _Turn) -> Ask:
        return _yes_no(turn.locale, _CONSENT, _CONSENT_QUESTION)

    # --- forms -----------------------------------------------------------------------------

    def _form_of(self, state: dict[str, Any] | None) -> Form | None:
        if not state:
            return None
        return self.forms.get(str(state.get("form")))

    def _open_form(self, turn: _Turn, form: Form) -> None:
        """Start ``form``, asking for consent first when it has personal steps."""
        resident = turn.resident
        if (
            form.collects_personal_data
            and resident.consent_at is None
            and resident.consent_declined_at is None
        ):
            turn.envelope["pending"] = {"kind": _CONSENT, "form_id": form.id}
            turn.say(Notice(tr(turn.locale, _CONSENT_PURPOSE)), self._consent_question(turn))
            return
        self._start_form(turn, form)

    def _start_form(self, turn: _Turn, form: Form) -> None:
        declined = (
            turn.resident.consent_at is None and turn.resident.consent_declined_at is not None
        )
        state, effects = engine.start(form, turn.locale, skip_personal=declined)
        turn.envelope["form"] = state
        turn.say(*effects)

    async def _form_turn(self, turn: _Turn) -> None:
        state = turn.envelope["form"]
        form = self._form_of(state)
        if form is None:  # the form was removed from the library since
            turn.envelope.pop("form", None)
            await self._pick_service(turn)
            return
        touched = turn.envelope.get("touched")
        if touched and turn.now - datetime.fromisoformat(touched) > self.idle_timeout:
            self._offer_resume(turn)
            return
        message = turn.message
        inbound = Inbound(
            text=message.text,
            option_id=message.option_id,
            location=message.location,
            media=message.media[0] if message.media else None,
            received_at=message.received_at or turn.now,
        )
        new_state, effects = engine.step(form, state, inbound, gazetteer=self.gazetteer)
        if new_state.get("locale") != turn.resident.locale and new_state.get("locale") in LOCALES:
            turn.resident.locale = str(new_state["locale"])  # switched with the form's own words
        done = new_state.get("at") == "done" or any(
            isinstance(e, Submit | Cancelled) for e in effects
        )
        turn.envelope["form"] = None if done else new_state
        turn.say(*effects)

    async def _pick_service(self, turn: _Turn) -> None:
        message = turn.message
        if message.option_id is not None and message.option_id in self.forms:
            self._open_form(turn, self.forms[message.option_id])
            return
        if message.option_id == MENU_OPTION:
            self._show_menu(turn)
            return
        matches = self.picker.match(message.text or "", turn.locale) if message.text else []
        if matches:
            turn.envelope["pending"] = {"kind": _SERVICE, "offered": [m.form.id for m in matches]}
            turn.say(self.picker.offer(matches, turn.locale))
            return
        offered = [f for f in ("general_enquiry",) if f in self.forms]
        turn.envelope["pending"] = {"kind": _SERVICE, "offered": offered}
        turn.say(self.picker.miss(turn.locale))

    def _show_menu(self, turn: _Turn) -> None:
        turn.envelope["pending"] = {"kind": _SERVICE, "offered": list(self.forms)}
        turn.say(self.picker.menu(turn.locale))

    # --- storing ---------------------------------------------------------------------------

    async def _store_submissions(self, turn: _Turn) -> None:
        """Each Submit becomes a submission and its outbox row, and a confirmation to say."""
        effects: list[Effect] = []
        for effect in turn.effects:
            if not isinstance(effect, Submit):
                effects.append(effect)
                continue
            reference = await self._free_reference(turn.session)
            submission = _submission(effect, self.forms.get(effect.form_id), turn, reference)
            turn.session.add(submission)
            await turn.session.flush()
            turn.session.add(
                SubmissionOutbox(
                    submission_id=submission.id, created_at=turn.now, next_attempt_at=turn.now
                )
            )
            turn.reference = reference
            text = N_("{confirmation} Your reference is {reference}.")
            effects.append(
                Notice(
                    tr(effect.locale, text, confirmation=effect.confirmation, reference=reference)
                )
            )
        turn.effects = effects

    async def _free_reference(self, session: AsyncSession) -> str:
        while True:
            reference = new_reference()
            taken = await session.execute(
                select(Submission.id).where(Submission.reference == reference)
            )
            if taken.first() is None:
                return reference

    async def _erase(self, turn: _Turn) -> None:
        """Delete the resident's personal data; keep anonymous facts (counts, report locations)."""
        session = turn.session
        resident_id = turn.resident.id
        submissions = (
            (await session.execute(select(Submission).where(Submission.resident_id == resident_id)))
            .scalars()
            .all()
        )
        for submission in submissions:
            form = self.forms.get(submission.form_id)
            personal = {s.id for s in form.steps if s.personal} if form else set(submission.answers)
            submission.answers = {k: v for k, v in submission.answers.items() if k not in personal}
        messages = await session.execute(
            update(MessageLog)
            .where(MessageLog.resident_id == resident_id)
            .values(text=None, address=None)
        )
        await session.execute(delete(Subscription).where(Subscription.resident_id == resident_id))
        await session.execute(
            delete(ResidentAddress).where(ResidentAddress.resident_id == resident_id)
        )
        turn.resident.erased_at = turn.now
        turn.resident.consent_at = None
        turn.resident.consent_declined_at = None
        counts = {"reports": len(submissions), "messages": int(getattr(messages, "rowcount", 0))}
        session.add(_audit(turn, "erase", counts))
        turn.envelope.clear()
        text = N_(
            "Your personal data is deleted: your contact details, your messages and the personal answers in your {reports} reports. We kept the reports without your details, and anonymous counts of messages and reports."
        )
        turn.say(Notice(tr(turn.locale, text, reports=counts["reports"])))


# --- texts ---------------------------------------------------------------------------------

_PRIVACY_NOTICE = N_(
    "Hello, this is the City's service line. We use what you send to handle your reports. "
    "Send DELETE MY DATA at any time to erase your details, or STOP to stop messages."
)
_CONSENT_PURPOSE = N_(
    "This report can include your name or phone number so the city can contact you. "
    "We keep them only as long as the report needs, and only staff handling it see them."
)
_ERASE_QUESTION = N_(
    "This deletes your contact details, your messages and the personal answers in your "
    "reports. Do you want to delete your data?"
)
_CONSENT_QUESTION = N_("Do you agree to share your contact details for this report?")
_HELP_TEXT = N_(
    "Describe the problem in a few words, or send MENU to see all services. "
    "Other words: STATUS and your reference, LANGUAGE, AGENT for a person, "
    "DELETE MY DATA, STOP to stop messages."
)


def _yes_no(locale: str, step_id: str, prompt: str) -> Ask:
    return Ask(
        step_id=step_id,
        prompt=tr(locale, prompt),
        kind=InputKind.YES_NO,
        options=(OptionView("yes", tr(locale, N_("Yes"))), OptionView("no", tr(locale, N_("No")))),
    )


def _yes_no_answer(message: InboundMessage) -> bool | None:
    if message.option_id in ("yes", "no"):
        return message.option_id == "yes"
    return parse_yes_no(message.text or "") if message.text else None


def _language_question(locale: str) -> Ask:
    return Ask(
        step_id=_LANGUAGE,
        prompt=tr(locale, N_("Which language do you want?")),
        kind=InputKind.CHOICE,
        options=tuple(OptionView(code, LANGUAGE_NAMES[code]) for code in LOCALES),
    )


def _chosen_language(message: InboundMessage) -> str | None:
    if message.option_id in LOCALES:
        return message.option_id
    text = fold(message.text or "")
    if text.isdigit() and 1 <= int(text) <= len(LOCALES):
        return LOCALES[int(text) - 1]
    command = parse_command(text)
    if command is not None and command.kind is CommandKind.LANGUAGE and command.argument in LOCALES:
        return command.argument
    return text if text in LOCALES else None


def _pending_kind(turn: _Turn) -> str | None:
    pending = turn.envelope.get("pending")
    return str(pending.get("kind")) if isinstance(pending, dict) else None


def _submission(effect: Submit, form: Form | None, turn: _Turn, reference: str) -> Submission:
    location: dict[str, Any] = {}
    if form is not None:
        for s in form.steps:
            answer = effect.answers.get(s.id)
            if s.type is StepType.LOCATION and isinstance(answer, dict):
                location = answer
                break
    ward = location.get("ward")
    return Submission(
        reference=reference,
        resident_id=turn.resident.id,
        channel=turn.message.channel,
        form_id=effect.form_id,
        form_version=effect.form_version,
        service_code=effect.service_code,
        locale=effect.locale,
        answers=effect.answers,
        lat=location.get("lat"),
        lon=location.get("lon"),
        ward=str(ward) if ward is not None else None,
        area_type=location.get("area_type"),
        address_string=location.get("place"),
        status="pending",
        created_at=turn.now,
        updated_at=turn.now,
    )


def _effect_text(effect: Effect) -> str:
    if isinstance(effect, Ask):
        options = " | ".join(o.label for o in effect.options)
        return f"{effect.prompt} [{options}]" if options else effect.prompt
    if isinstance(effect, Review):
        items = "; ".join(f"{i.number}. {i.label}: {i.value}" for i in effect.items)
        return f"{effect.title} {items} {effect.prompt}"
    if isinstance(effect, Reject | Notice | Cancelled):
        return effect.message
    return ""


def _log_in(message: InboundMessage, resident_id: int, now: datetime) -> MessageLog:
    text = message.text if message.text is not None else message.option_id
    if text is None and message.location is not None:
        text = f"{message.location.lat},{message.location.lon}"
    return MessageLog(
        direction="in",
        channel=message.channel,
        address=message.address,
        resident_id=resident_id,
        provider_message_id=message.message_id,
        kind=str(message.kind),
        text=text,
        created_at=now,
    )


def _log_out(
    message: InboundMessage, resident_id: int, effects: list[Effect], now: datetime
) -> MessageLog:
    return MessageLog(
        direction="out",
        channel=message.channel,
        address=message.address,
        resident_id=resident_id,
        kind="reply",
        text="\n".join(t for t in map(_effect_text, effects) if t),
        status="queued",
        created_at=now,
    )


def _audit(turn: _Turn, action: str, details: dict[str, Any] | None = None) -> AuditLog:
    return AuditLog(
        at=turn.now,
        actor=f"resident:{turn.resident.id}",
        action=action,
        subject=f"resident:{turn.resident.id}",
        details=details or {},
    )


# --- wiring --------------------------------------------------------------------------------


async def build_turn_loop(
    *,
    database_url: str | None = None,
    redis_url: str | None = None,
    forms: Mapping[str, Form] | None = None,
    gazetteer: Gazetteer | None = None,
    idle_timeout: timedelta = DEFAULT_IDLE_TIMEOUT,
    rate_per_second: float = 1.0,
    rate_burst: int = 12,
    engine_: AsyncEngine | None = None,
    redis_prefix: str = "citybot:",
) -> TurnLoop:
    """The turn loop ``serve`` uses: SQL state and in-process locks, or Redis when configured.

    The database must already be upgraded (``bot.db.migrate.upgrade_database``).
    """
    if forms is None:
        from forms_runtime.loader import standard_forms

        forms = standard_forms()
    if gazetteer is None:
        from forms_runtime.gazetteer import default_gazetteer

        gazetteer = default_gazetteer()
    db = engine_ or create_engine(database_url or default_database_url())
    sessionmaker = create_sessionmaker(db)
    states: BaseStateStore
    dedupe: BaseDedupe
    locks: BaseLocks
    limiter: BaseRateLimiter
    redis: Redis | None = Redis.from_url(redis_url) if redis_url else None
    if redis is not None:
        ttl = int(max(idle_timeout * 4, timedelta(days=7)).total_seconds())
        states = RedisStateStore(redis, ttl=ttl, prefix=f"{redis_prefix}state:")
        dedupe = RedisDedupe(redis, prefix=f"{redis_prefix}seen:")
        locks = RedisLocks(redis, prefix=f"{redis_prefix}lock:")
        limiter = RedisRateLimiter(
            redis, rate=rate_per_second, burst=rate_burst, prefix=f"{redis_prefix}rate:"
        )
    else:
        states = SqlStateStore(sessionmaker)
        dedupe = SqlDedupe(sessionmaker)
        locks = InProcessLocks()
        limiter = InProcessRateLimiter(rate=rate_per_second, burst=rate_burst)
    loop = TurnLoop(
        sessionmaker=sessionmaker,
        states=states,
        dedupe=dedupe,
        locks=locks,
        rate_limiter=limiter,
        forms=forms,
        gazetteer=gazetteer,
        idle_timeout=idle_timeout,
    )
    if engine_ is None:
        loop._owned.append(db.dispose)
    if redis is not None:
        loop._owned.append(redis.aclose)
    return loop
