"""What a message means, in the order DESIGN.md gives, and what the bot answers.

1. opt-out / opt-in / help keywords, in every locale and every state;
2. support takeover (placeholder: no agent holds conversations yet);
3. global commands: menu, cancel, back, language, agent, status REF, subscribe, delete my data;
4. an open question of the bot's own (consent, continue?, language, service choice, erase?);
5. an open form: ``forms_runtime.engine.step`` (after a long break: continue or start over?);
6. no form: the service picker.

The router changes the turn (its envelope, the resident's profile, the effects) and asks for the
turn's SQL session only for the rare things that need the database (audit rows, a status
look-up, a subscription, an erasure). Storing submissions and the state is the turn loop's job.

Example::

    router = Router(forms, gazetteer=default_gazetteer())
    await router.route(turn)
    turn.effects   # [Ask(step_id="location", ...)]
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from channels.types import InboundMessage
from conversations.commands import Command, CommandKind, parse_command, parse_keyword
from conversations.consent import (
    CONSENT,
    PRIVACY_NOTICE,
    ask_consent,
    consent_question,
    needs_consent,
    record_consent,
    skips_personal_steps,
    yes_no_question,
)
from conversations.erasure import erase_resident
from conversations.keys import ConversationKey
from conversations.picker import MENU_OPTION, ServicePicker
from conversations.turn_context import Turn
from forms_runtime import engine
from forms_runtime.effects import (
    Ask,
    Cancelled,
    Inbound,
    InputKind,
    Notice,
    OptionView,
    Reject,
    Submit,
)
from forms_runtime.gazetteer import Gazetteer
from forms_runtime.i18n import LANGUAGE_NAMES, LOCALES, N_, tr
from forms_runtime.model import Form
from forms_runtime.understanding.text import fold
from forms_runtime.understanding.yes_no import parse_yes_no
from storage.models import HandoffRequest, Submission, Subscription

__all__ = ["DEFAULT_IDLE_TIMEOUT", "Router"]

DEFAULT_IDLE_TIMEOUT = timedelta(hours=24)

# The bot's own questions, kept in the state envelope under "pending".
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

_ERASE_QUESTION = N_(
    "This deletes your contact details, your messages and the personal answers in your "
    "reports. Do you want to delete your data?"
)
_HELP_TEXT = N_(
    "Describe the problem in a few words, or send MENU to see all services. "
    "Other words: STATUS and your reference, LANGUAGE, AGENT for a person, "
    "DELETE MY DATA, STOP to stop messages."
)


class Router:
    def __init__(
        self,
        forms: Mapping[str, Form],
        *,
        gazetteer: Gazetteer | None = None,
        idle_timeout: timedelta = DEFAULT_IDLE_TIMEOUT,
        office_hours: str = "Monday to Friday, 08:00 to 16:30",
    ) -> None:
        self.forms = forms
        self.picker = ServicePicker(forms)
        self.gazetteer = gazetteer
        self.idle_timeout = idle_timeout
        self.office_hours = office_hours

    async def route(self, turn: Turn) -> None:
        message = turn.message
        opted_out = turn.profile.opted_out_at is not None
        keyword = parse_keyword(message.text, channel=message.channel, opted_out=opted_out)
        if opted_out:
            # Nothing is sent to an opted-out resident; only opting back in is acted on.
            if keyword is not None and keyword.kind is CommandKind.OPT_IN:
                await self._opt_in(turn)
            return
        if turn.new_resident:
            turn.say(Notice(tr(turn.locale, PRIVACY_NOTICE)))
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
            self._form_turn(turn)
            return
        self._pick_service(turn)

    def _agent_holds(self, key: ConversationKey) -> bool:
        """Support takeover comes with the support issue; until then no agent holds a chat."""
        return False

    # --- keywords ------------------------------------------------------------------------

    async def _keyword(self, turn: Turn, keyword: Command) -> None:
        if keyword.kind is CommandKind.OPT_OUT:
            turn.profile.opted_out_at = turn.now
            await turn.audit("opt_out")
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

    async def _opt_in(self, turn: Turn) -> None:
        turn.profile.opted_out_at = None
        await turn.audit("opt_in")
        turn.say(Notice(tr(turn.locale, N_("Welcome back. You will get messages from us again."))))
        if turn.envelope.get("form") is not None:
            self._offer_resume(turn)
        else:
            turn.say(self.picker.menu(turn.locale))

    def _repeat_question(self, turn: Turn) -> None:
        state = turn.envelope.get("form")
        form = self._form_of(state)
        if form is not None and state is not None:
            turn.envelope["form"], effects = engine.resume(form, state)
            turn.say(*effects)

    # --- global commands -----------------------------------------------------------------

    async def _command(self, turn: Turn, command: Command) -> bool:
        """Carry out a global command; ``False`` hands the text on (the form's own words)."""
        form_open = turn.envelope.get("form") is not None
        kind = command.kind
        if kind in (CommandKind.CANCEL, CommandKind.BACK) and form_open:
            return False  # the engine knows cancel and back in every locale
        if kind is CommandKind.MENU:
            if form_open:
                text = N_("Your unfinished report was cancelled. Nothing was sent.")
                turn.say(Notice(tr(turn.locale, text)))
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
            turn.say(yes_no_question(turn.locale, _ERASE, _ERASE_QUESTION))
        return True

    def _clear(self, turn: Turn) -> None:
        turn.envelope.pop("form", None)
        turn.envelope.pop("pending", None)

    def _switch_language(self, turn: Turn, locale: str) -> None:
        turn.profile.locale = locale
        if _pending_kind(turn) == _LANGUAGE:
            turn.envelope.pop("pending", None)
        text = N_("Language changed to {language}.")
        turn.say(Notice(tr(locale, text, language=LANGUAGE_NAMES[locale])))
        state = turn.envelope.get("form")
        if state is not None:
            turn.envelope["form"] = {**state, "locale": locale}
            self._repeat_question(turn)
        elif turn.envelope.get("pending") is None:
            turn.say(self.picker.menu(locale))

    async def _request_agent(self, turn: Turn) -> None:
        session = await turn.sql()
        session.add(
            HandoffRequest(
                resident_id=turn.resident_id, channel=turn.message.channel, created_at=turn.now
            )
        )
        text = N_(
            "I have asked our staff to contact you. They reply during office hours ({hours}), so it may take a while. Send MENU to report a problem meanwhile."
        )
        turn.say(Notice(tr(turn.locale, text, hours=self.office_hours)))

    async def _status(self, turn: Turn, reference: str) -> None:
        found = None
        if reference:
            session = await turn.sql()
            found = await session.scalar(
                select(Submission).where(Submission.reference == reference)
            )
            if found is None:
                # The city's number: only the resident's own reports (city numbers are guessable).
                found = await session.scalar(
                    select(Submission)
                    .where(
                        Submission.service_request_id == reference,
                        Submission.resident_id == turn.resident_id,
                    )
                    .limit(1)
                )
        locale = turn.locale
        if found is None:
            text = N_("I cannot find a report with that reference. References look like CT-7KQ4XM.")
            turn.say(Notice(tr(locale, text)))
            return
        form = self.forms.get(found.form_id)
        title = tr(locale, form.title) if form else found.service_code
        status = (
            tr(locale, _STATUS_TEXTS[found.status])
            if found.status in _STATUS_TEXTS
            else found.status
        )
        if found.service_request_id:
            text = N_(
                "Report {reference} ({title}) is {status}. The city's number for it is {number}."
            )
            said = tr(
                locale,
                text,
                reference=found.reference,
                title=title,
                status=status,
                number=found.service_request_id,
            )
            turn.say(Notice(said))
            if found.status != "pending":
                turn.city_query = (len(turn.effects) - 1, found.reference, found.service_request_id)
        else:
            text = N_("Report {reference} ({title}) is {status}.")
            said = tr(locale, text, reference=found.reference, title=title, status=status)
            turn.say(Notice(said))

    async def _subscribe(self, turn: Turn, place: str | None) -> None:
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
        session = await turn.sql()
        exists = await session.execute(
            select(Subscription.id).where(
                Subscription.resident_id == turn.resident_id, Subscription.ward == ward
            )
        )
        if exists.first() is None:
            session.add(Subscription(resident_id=turn.resident_id, ward=ward, created_at=turn.now))
        text = N_("You will get news for ward {ward}. Send STOP to stop all messages.")
        turn.say(Notice(tr(turn.locale, text, ward=ward)))

    def _ward_of_place(self, place: str) -> str | None:
        if self.gazetteer is None:
            return None
        match = self.gazetteer.match_place(place)
        return match.best.ward if match.best is not None else None

    async def _last_ward(self, turn: Turn) -> str | None:
        session = await turn.sql()
        ward: str | None = await session.scalar(
            select(Submission.ward)
            .where(Submission.resident_id == turn.resident_id, Submission.ward.is_not(None))
            .order_by(Submission.id.desc())
            .limit(1)
        )
        return ward

    # --- the bot's own questions ---------------------------------------------------------

    async def _answer_pending(self, turn: Turn, pending: dict[str, Any]) -> bool:
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
                turn.say(yes_no_question(turn.locale, _ERASE, _ERASE_QUESTION))
            else:
                turn.say(consent_question(turn.locale))
            return True
        turn.envelope.pop("pending", None)
        if kind == _ERASE:
            if answer:
                await self._erase(turn)
            else:
                turn.say(Notice(tr(turn.locale, N_("Nothing was deleted."))))
            return True
        if kind == CONSENT:
            await record_consent(turn, answer)
            form = self.forms.get(str(pending.get("form_id")))
            if form is not None:
                self._start_form(turn, form)
            return True
        return False

    def _answer_service(self, turn: Turn, pending: dict[str, Any]) -> bool:
        offered = [str(f) for f in pending.get("offered", [])]
        chosen = self.picker.choose(turn.message.text, turn.message.option_id, offered)
        turn.envelope.pop("pending", None)
        if chosen is None:
            return False  # new words: let the picker try them
        if chosen == MENU_OPTION:
            self._show_menu(turn)
        else:
            self._open_form(turn, self.forms[chosen])
        return True

    def _answer_resume(self, turn: Turn, message: InboundMessage) -> bool:
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

    def _offer_resume(self, turn: Turn) -> None:
        form = self._form_of(turn.envelope.get("form"))
        if form is None:
            turn.envelope.pop("form", None)
            return
        turn.envelope["pending"] = {"kind": _RESUME}
        locale = turn.locale
        prompt = N_(
            "You have an unfinished report: {title}. Do you want to continue it or start over?"
        )
        turn.say(
            Ask(
                step_id=_RESUME,
                prompt=tr(locale, prompt, title=tr(locale, form.title)),
                kind=InputKind.CHOICE,
                options=(
                    OptionView("continue", tr(locale, N_("Continue"))),
                    OptionView("restart", tr(locale, N_("Start over"))),
                ),
            )
        )

    async def _erase(self, turn: Turn) -> None:
        """Delete the resident's personal data; keep anonymous facts (counts, report locations)."""
        session = await turn.sql()
        counts = await erase_resident(
            session, self.forms, resident_id=turn.resident_id, now=turn.now
        )
        turn.forget_resident = True
        turn.envelope.clear()
        text = N_(
            "Your personal data is deleted: your contact details, your messages and the personal answers in your {reports} reports. We kept the reports without your details, and anonymous counts of messages and reports."
        )
        turn.say(Notice(tr(turn.locale, text, reports=counts.reports)))

    # --- forms -----------------------------------------------------------------------------

    def _form_of(self, state: dict[str, Any] | None) -> Form | None:
        if not state:
            return None
        return self.forms.get(str(state.get("form")))

    def _open_form(self, turn: Turn, form: Form) -> None:
        """Start ``form``, asking for consent first when it has personal steps."""
        if needs_consent(form, turn.profile):
            ask_consent(turn, form)
            return
        self._start_form(turn, form)

    def _start_form(self, turn: Turn, form: Form) -> None:
        skip = skips_personal_steps(turn.profile)
        state, effects = engine.start(form, turn.locale, skip_personal=skip)
        turn.envelope["form"] = state
        turn.say(*effects)

    def _form_turn(self, turn: Turn) -> None:
        state = turn.envelope["form"]
        form = self._form_of(state)
        if form is None:  # the form was removed from the library since
            turn.envelope.pop("form", None)
            self._pick_service(turn)
            return
        touched = turn.envelope.get("touched")
        if touched and turn.now - datetime.fromisoformat(touched) > self.idle_timeout:
            self._offer_resume(turn)
            return
        message = turn.message
        inbound = Inbound(
            # A shared contact (Telegram's "Share my number") answers a phone question.
            text=message.text if message.text is not None else message.contact_phone,
            option_id=message.option_id,
            location=message.location,
            media=message.media[0] if message.media else None,
            received_at=message.received_at or turn.now,
        )
        new_state, effects = engine.step(form, state, inbound, gazetteer=self.gazetteer)
        switched = new_state.get("locale")
        if switched != turn.profile.locale and switched in LOCALES:
            turn.profile.locale = str(switched)  # switched with the form's own words
        done = new_state.get("at") == "done" or any(
            isinstance(e, Submit | Cancelled) for e in effects
        )
        turn.envelope["form"] = None if done else new_state
        turn.say(*effects)

    def _pick_service(self, turn: Turn) -> None:
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

    def _show_menu(self, turn: Turn) -> None:
        turn.envelope["pending"] = {"kind": _SERVICE, "offered": list(self.forms)}
        turn.say(self.picker.menu(turn.locale))


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


def _pending_kind(turn: Turn) -> str | None:
    pending = turn.envelope.get("pending")
    return str(pending.get("kind")) if isinstance(pending, dict) else None
