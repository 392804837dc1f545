"""Forms in a conversation: the service picker, opening a form (consent first), each step
through the pure engine, and "continue or start over?" after a long break.

The other modules of the conversation (keywords, commands, language, erasure) call this one to
show the menu or to ask the open question again; it owns the envelope's ``form`` entry and the
``service`` and ``resume`` questions of the bot.

Example::

    flow = FormFlow(forms, gazetteer=default_gazetteer())
    flow.pick_service(turn)     # free text: offers the matching services, or the menu
    flow.form_turn(turn)        # an answer to the open form's question
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from channels.types import InboundMessage
from conversations.aggregate_answers import forget_report, keep_contributions
from conversations.consent import ask_consent, needs_consent, skips_personal_steps
from conversations.picker import MENU_OPTION, ServicePicker
from conversations.turn_context import Turn
from forms_runtime import engine
from forms_runtime.effects import (
    Ask,
    Cancelled,
    Contribute,
    Effect,
    Inbound,
    InputKind,
    OptionView,
    Reject,
)
from forms_runtime.gazetteer import Gazetteer
from forms_runtime.i18n import LOCALES, N_, tr
from forms_runtime.model import Form
from forms_runtime.understanding.text import fold
from forms_runtime.understanding.yes_no import parse_yes_no

__all__ = ["DEFAULT_IDLE_TIMEOUT", "RESUME", "SERVICE", "FormFlow", "pending_kind"]

DEFAULT_IDLE_TIMEOUT = timedelta(hours=24)

# The bot's own questions about forms, kept in the state envelope under "pending".
RESUME = "resume"
SERVICE = "service"

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


class FormFlow:
    def __init__(
        self,
        forms: Mapping[str, Form],
        *,
        gazetteer: Gazetteer | None = None,
        idle_timeout: timedelta = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        self.forms = forms
        self.picker = ServicePicker(forms)
        self.gazetteer = gazetteer
        self.idle_timeout = idle_timeout

    # --- the menu and the picker -------------------------------------------------------------

    def menu(self, turn: Turn, locale: str | None = None) -> None:
        """The menu, with its answer expected: on SMS the resident replies with its numbers."""
        turn.envelope["pending"] = {"kind": SERVICE, "offered": list(self.forms)}
        turn.say(self.picker.menu(locale or turn.locale))

    def clear(self, turn: Turn) -> None:
        turn.envelope.pop("form", None)
        turn.envelope.pop("pending", None)
        forget_report(turn)

    @staticmethod
    def report_sent(turn: Turn) -> bool:
        """Whether the open form's report is already stored: only its optional questions are
        left, so closing them cancels nothing."""
        state = turn.envelope.get("form")
        return isinstance(state, dict) and state.get("after") is True

    def pick_service(self, turn: Turn, text: str | None = None) -> None:
        """The service the message asks for (or ``text``, words said before)."""
        message = turn.message
        if text is None:
            if message.option_id is not None and message.option_id in self.forms:
                self.open_form(turn, self.forms[message.option_id])
                return
            if message.option_id == MENU_OPTION:
                self.menu(turn)
                return
            text = message.text
        matches = self.picker.match(text, turn.locale) if text else []
        if matches:
            turn.envelope["pending"] = {"kind": SERVICE, "offered": [m.form.id for m in matches]}
            turn.say(self.picker.offer(matches, turn.locale))
            return
        offered = [f for f in ("general_enquiry",) if f in self.forms]
        turn.envelope["pending"] = {"kind": SERVICE, "offered": offered}
        turn.say(self.picker.miss(turn.locale))

    def answer_service(self, turn: Turn, pending: dict[str, Any]) -> bool:
        """The answer to "which service?"; ``False`` lets the picker read new words afresh."""
        offered = [str(f) for f in pending.get("offered", [])]
        chosen = self.picker.choose(turn.message.text, turn.message.option_id, offered)
        turn.envelope.pop("pending", None)
        if chosen is None:
            return False
        if chosen == MENU_OPTION:
            self.menu(turn)
        else:
            self.open_form(turn, self.forms[chosen])
        return True

    # --- one form ------------------------------------------------------------------------------

    def form_of(self, state: dict[str, Any] | None) -> Form | None:
        if not state:
            return None
        return self.forms.get(str(state.get("form")))

    def open_form(self, turn: Turn, form: Form) -> None:
        """Start ``form``, asking for consent first when it has personal steps."""
        if needs_consent(form, turn.profile):
            ask_consent(turn, form)
            return
        self.start_form(turn, form)

    def start_form(self, turn: Turn, form: Form) -> None:
        skip = skips_personal_steps(turn.profile)
        state, effects = engine.start(form, turn.locale, skip_personal=skip)
        turn.envelope["form"] = state
        turn.say(*effects)

    def repeat_question(self, turn: Turn) -> None:
        """Ask the open form's current question again (after help, a language change...)."""
        state = turn.envelope.get("form")
        form = self.form_of(state)
        if form is not None and state is not None:
            turn.envelope["form"], effects = engine.resume(form, state)
            turn.say(*effects)

    def form_turn(self, turn: Turn) -> None:
        state = turn.envelope["form"]
        form = self.form_of(state)
        if form is None:  # the form was removed from the library since
            turn.envelope.pop("form", None)
            self.pick_service(turn)
            return
        touched = turn.envelope.get("touched")
        if touched and turn.now - datetime.fromisoformat(touched) > self.idle_timeout:
            if self.report_sent(turn):
                # Nothing to resume: the report was sent, and "start over" would make a second
                # one. The optional questions end unanswered and the message is read as new.
                self.clear(turn)
                self.pick_service(turn)
                return
            self.offer_resume(turn)
            return
        message = turn.message
        at = state.get("at")
        if any(s.id == at for s in form.aggregate_steps):
            turn.withhold_text = True
        inbound = Inbound(
            # A shared contact (Telegram's "Share my number") answers a phone question.
            text=message.text if message.text is not None else message.contact_phone,
            option_id=message.option_id,
            location=message.location,
            media=message.media[0] if message.media else None,
            received_at=message.received_at or turn.now,
        )
        new_state, effects = engine.step(form, state, inbound, gazetteer=self.gazetteer)
        if self.report_sent(turn) and self._names_a_service(turn, form, effects, inbound.text):
            # Not an answer to an optional question but something new ("there is a water
            # leak"): the questions end unanswered and the picker reads it, words logged.
            turn.withhold_text = False
            self.clear(turn)
            self.pick_service(turn)
            return
        switched = new_state.get("locale")
        if switched != turn.profile.locale and switched in LOCALES:
            turn.profile.locale = str(switched)  # switched with the form's own words
        # A report sent may be followed by optional questions: the form stays open for them.
        done = new_state.get("at") == "done" or any(isinstance(e, Cancelled) for e in effects)
        turn.envelope["form"] = None if done else new_state
        turn.say(*effects)
        keep_contributions(turn)
        if done:
            forget_report(turn)

    def _names_a_service(
        self, turn: Turn, form: Form, effects: list[Effect], text: str | None
    ) -> bool:
        """Whether words said to an optional question name a service instead of answering it:
        the question did not take them (or took them only as a description in the resident's
        own words) and the service picker knows them."""
        described = {
            (s.id, o.id) for s in form.aggregate_steps for o in s.options if o.self_described
        }
        not_an_answer = any(
            isinstance(e, Reject)
            or (isinstance(e, Contribute) and (e.step_id, e.value) in described)
            for e in effects
        )
        if not not_an_answer or not text or parse_yes_no(text) is not None:
            return False  # "no" to a question is not a wish for no water, power or bus
        return bool(self.picker.match(text, turn.locale))

    # --- after a long break ----------------------------------------------------------------------

    def offer_resume(self, turn: Turn) -> None:
        form = self.form_of(turn.envelope.get("form"))
        if form is None:
            turn.envelope.pop("form", None)
            return
        turn.envelope["pending"] = {"kind": RESUME}
        locale = turn.locale
        prompt = N_(
            "You have an unfinished report: {title}. Do you want to continue it or start over?"
        )
        turn.say(
            Ask(
                step_id=RESUME,
                prompt=tr(locale, prompt, title=tr(locale, form.title)),
                kind=InputKind.CHOICE,
                options=(
                    OptionView("continue", tr(locale, N_("Continue"))),
                    OptionView("restart", tr(locale, N_("Start over"))),
                ),
            )
        )

    def answer_resume(self, turn: Turn, message: InboundMessage) -> bool:
        choice = message.option_id or fold(message.text or "")
        turn.envelope.pop("pending", None)
        if choice in _CONTINUE_WORDS or parse_yes_no(message.text or "") is True:
            self.repeat_question(turn)
            return True
        turn.envelope.pop("form", None)
        if choice in _RESTART_WORDS or parse_yes_no(message.text or "") is False:
            self.menu(turn)
            return True
        return False  # something new: the old form is dropped and the picker reads it


def pending_kind(turn: Turn) -> str | None:
    """Which of the bot's own questions is open, if any."""
    pending = turn.envelope.get("pending")
    return str(pending.get("kind")) if isinstance(pending, dict) else None
