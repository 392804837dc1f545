"""What a message means, in the order DESIGN.md gives, and who answers it.

0. a new resident's language from their first words (``language``);
1. opt-out / opt-in / help keywords, in every locale and every state (``keywords``);
2. support takeover: while the conversation is with a person the bot is silent, and the
   resident's messages go to them (``support``);
3. global commands (``commands`` reads them): menu, cancel, back, language (``language``), agent
   (``support``), status REF (``status_lookup``), subscribe (``subscriptions``), delete my data
   (``erasure``), export my data (``data_export``);
4. an open question of the bot's own: consent (``consent``), continue?, service choice
   (``form_flow``), language, erase?;
5. an open form: one step of the pure engine (``form_flow``);
6. no form: the service picker (``form_flow``).

The router only decides the order; each concern is a module of its own, and the few that need
the database (a status look-up, a subscription, a hand-off, an erasure, audit rows) ask for the
turn's SQL session themselves. Storing submissions and the state is the turn loop's job.

Example::

    router = Router(forms, gazetteer=default_gazetteer())
    await router.route(turn)
    turn.effects   # [Ask(step_id="location", ...)]
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from channels.types import InboundMessage
from conversations import keywords
from conversations.commands import Command, CommandKind, parse_command, parse_keyword
from conversations.consent import CONSENT, PRIVACY_NOTICE, consent_question, record_consent
from conversations.data_export import DataExport
from conversations.erasure import ERASE, answer_erasure, ask_erasure, erasure_question
from conversations.form_flow import DEFAULT_IDLE_TIMEOUT, RESUME, SERVICE, FormFlow, pending_kind
from conversations.known_incidents import INCIDENT, KnownIncidents
from conversations.known_incidents import question as incident_question
from conversations.language import (
    LANGUAGE,
    answer_language,
    ask_language,
    detect_first_language,
    offer_switch,
    switch_language,
    taken_switch,
)
from conversations.office_hours import OfficeHours
from conversations.status_lookup import answer_status
from conversations.submissions import location_of
from conversations.subscriptions import (
    AREA_NEWS,
    PLACE_CHOICE,
    WHERE,
    answer_area_news,
    answer_place_choice,
    answer_where,
    list_alerts,
    offer_area_news,
    subscribe,
    unsubscribe,
)
from conversations.support import CALLBACK_CHANNELS, URGENT, SupportDesk
from conversations.turn_context import Turn
from forms_runtime.effects import Handoff, Notice, Reject, Submit
from forms_runtime.gazetteer import Gazetteer
from forms_runtime.i18n import LOCALES, N_, tr
from forms_runtime.model import Form
from forms_runtime.understanding.yes_no import parse_yes_no

__all__ = ["DEFAULT_IDLE_TIMEOUT", "Router"]


_MISUNDERSTOOD = N_("Sorry, I keep getting this wrong. I have asked a person to help you.")
_BACK_TO_REPORT = N_("Back to your report.")
# The envelope's mark of a form handed to a person: the first message after the handback hears
# the form's question again (the engine moved on while the person had the conversation).
_BACK_FROM_PERSON = "back_from_person"


class Router:
    def __init__(
        self,
        forms: Mapping[str, Form],
        *,
        gazetteer: Gazetteer | None = None,
        idle_timeout: timedelta = DEFAULT_IDLE_TIMEOUT,
        office_hours: OfficeHours | None = None,
        data_export: DataExport | None = None,
        misses_for_person: int = 3,
    ) -> None:
        self.forms = forms
        self.data_export = data_export or DataExport()
        self.flow = FormFlow(forms, gazetteer=gazetteer, idle_timeout=idle_timeout)
        self.gazetteer = gazetteer
        self.incidents = KnownIncidents()
        self.support = SupportDesk(office_hours)
        self.misses_for_person = misses_for_person

    async def route(self, turn: Turn) -> None:
        message = turn.message
        opted_out = turn.profile.opted_out_at is not None
        keyword = parse_keyword(message.text, channel=message.channel, opted_out=opted_out)
        if opted_out:
            # Nothing is sent to an opted-out resident; only opting back in is acted on.
            if keyword is not None and keyword.kind is CommandKind.OPT_IN:
                await keywords.opt_in(turn, self.flow)
            return
        switch_back = detect_first_language(turn) if turn.new_resident else None
        if turn.new_resident:
            turn.say(Notice(tr(turn.locale, PRIVACY_NOTICE)))
        if keyword is not None:
            if keyword.kind is CommandKind.OPT_OUT:
                await keywords.opt_out(turn)
                await self.support.end_for_opt_out(turn)
            elif keyword.kind is CommandKind.HELP:
                keywords.help_(turn, self.flow)
            return
        ticket = await self.support.ticket_of(turn)
        # A call-back request (USSD) is answered by SMS, not in the session: the menus keep
        # working while it waits, and menu numbers are no words for the agent's transcript.
        callback = turn.message.channel in CALLBACK_CHANNELS
        if ticket is not None and not callback and await self.support.take(turn, ticket):
            # A person answers this conversation, not the bot; asking for one again while
            # nobody has taken it yet hears where they stand, not silence.
            asked = parse_command(message.text) if message.option_id is None else None
            if asked is not None and asked.kind is CommandKind.AGENT:
                await self.support.where_they_stand(turn, ticket)
            return
        offered_switch = turn.envelope.pop("switch", None)
        switched = taken_switch(turn, offered_switch) if offered_switch else None
        if switched is not None:
            self._switch_back(turn, switched, offered_switch.get("text"))
            return
        await self._answer(turn)
        if switch_back is not None:
            offer_switch(turn, switch_back)

    async def _answer(self, turn: Turn) -> None:
        message = turn.message
        command = parse_command(message.text) if message.option_id is None else None
        back_from_person = turn.envelope.pop(_BACK_FROM_PERSON, None)
        if command is not None and await self._command(turn, command):
            return
        pending = turn.envelope.get("pending")
        said = len(turn.effects)
        if pending is not None and await self._answer_pending(turn, pending):
            if pending.get("kind") == SERVICE:
                await self._held_for_incident(turn, said)
            else:
                await self._count_misses(turn, said, question=str(pending.get("kind")))
            return
        form = turn.envelope.get("form")
        if form is not None and back_from_person:
            turn.say(Notice(tr(turn.locale, _BACK_TO_REPORT)))
            self.flow.repeat_question(turn)
            return
        if form is not None:
            self.flow.form_turn(turn)
            if await self._hand_off(turn, said):
                return
            await self._count_misses(turn, said, question=f"form:{form.get('at')}")
            await self._offer_news_after_report(turn, said)
            return
        self.flow.pick_service(turn)
        await self._held_for_incident(turn, said)

    async def _offer_news_after_report(self, turn: Turn, said: int) -> None:
        """A report just made somewhere the resident does not follow: news for that area?
        Not while the report's optional questions are still to come: one question at a time."""
        if turn.envelope.get("form") is not None:
            return
        for effect in turn.effects[said:]:
            if isinstance(effect, Submit):
                place = location_of(effect, self.forms.get(effect.form_id))
                wards = [str(w) for w in place.get("wards") or [] if w] or (
                    [str(place["ward"])] if place.get("ward") else []
                )
                label = place.get("place") or (f"ward {wards[0]}" if wards else "")
                await offer_area_news(turn, str(label), wards)
                return

    async def _hand_off(self, turn: Turn, said: int) -> bool:
        """The form said a person is needed (``Handoff``): the resident hears the form's reason
        and their place in the queue, the ticket is urgent and for the form's team, and the
        form's next question waits until the bot has the conversation back."""
        found = next(
            (i for i, e in enumerate(turn.effects[said:], said) if isinstance(e, Handoff)), None
        )
        if found is None:
            return False
        handoff = turn.effects[found]
        assert isinstance(handoff, Handoff)
        del turn.effects[found:]
        turn.say(Notice(handoff.message))
        form = self.forms.get(handoff.form_id)
        await self.support.request(
            turn,
            reason="form",
            priority=URGENT,
            team=form.group if form is not None else None,
            note=f"the form asked for a person at {handoff.form_id}/{handoff.step_id}: "
            f"{handoff.reason}",
        )
        if turn.envelope.get("form") is not None:
            turn.envelope[_BACK_FROM_PERSON] = True
        return True

    async def _count_misses(self, turn: Turn, said: int, *, question: str) -> None:
        """The same question (a form's step, or one of the bot's own) not understood
        ``misses_for_person`` times in a row: a person is asked to help (the form stays where it
        is, for the bot to carry on after a handback)."""
        missed = any(isinstance(e, Reject) for e in turn.effects[said:])
        if not missed or not self.misses_for_person:
            turn.envelope.pop("misses", None)
            return
        step = question
        misses = turn.envelope.get("misses") or {}
        count = int(misses.get("n", 0)) + 1 if misses.get("step") == step else 1
        if count < self.misses_for_person:
            turn.envelope["misses"] = {"step": step, "n": count}
            return
        turn.envelope.pop("misses", None)
        turn.say(Notice(tr(turn.locale, _MISUNDERSTOOD)))
        await self.support.request(turn, reason="misunderstood")

    async def _held_for_incident(self, turn: Turn, said: int) -> None:
        """A form the resident just chose that a known incident explains waits behind the
        incident's question (``conversations.known_incidents``): its first question (or the
        consent question) is taken back and asked after a NO."""
        opened = turn.envelope.get("form")
        pending = turn.envelope.get("pending") or {}
        if opened is not None:
            form_id = str(opened.get("form"))
        elif pending.get("kind") == CONSENT and pending.get("form_id"):
            form_id = str(pending["form_id"])
        else:
            return
        incident = await self.incidents.explaining(turn, form_id)
        if incident is None:
            return
        del turn.effects[said:]
        turn.envelope.pop("form", None)
        turn.envelope.pop("pending", None)
        self.incidents.ask(turn, incident, form_id)

    def _switch_back(self, turn: Turn, locale: str, first_words: object) -> None:
        """The resident took "English" (say) after their language was read from their first
        words: the same question again, in that language."""
        kind = pending_kind(turn)
        switch_language(turn, locale, self.flow)  # repeats an open form's question
        if turn.envelope.get("form") is not None:
            return
        if kind == SERVICE and isinstance(first_words, str):
            turn.envelope.pop("pending", None)
            self.flow.pick_service(turn, first_words)
        elif kind == CONSENT:
            turn.say(consent_question(locale))

    async def _command(self, turn: Turn, command: Command) -> bool:
        """Carry out a global command; ``False`` hands the text on (the form's own words)."""
        form_open = turn.envelope.get("form") is not None
        kind = command.kind
        if kind in (CommandKind.CANCEL, CommandKind.BACK) and form_open:
            return False  # the engine knows cancel and back in every locale
        if kind is CommandKind.MENU:
            if form_open and not self.flow.report_sent(turn):
                text = N_("Your unfinished report was cancelled. Nothing was sent.")
                turn.say(Notice(tr(turn.locale, text)))
            self.flow.clear(turn)
            self.flow.menu(turn)
        elif kind in (CommandKind.CANCEL, CommandKind.BACK):
            self.flow.clear(turn)
            self.flow.menu(turn)
        elif kind is CommandKind.LANGUAGE:
            if command.argument in LOCALES:
                switch_language(turn, command.argument, self.flow)
            else:
                ask_language(turn)
        elif kind is CommandKind.AGENT:
            await self.support.request(turn)
        elif kind is CommandKind.STATUS:
            await answer_status(turn, command.argument or "", self.forms)
        elif kind is CommandKind.SUBSCRIBE:
            await subscribe(turn, command.argument, self.gazetteer)
        elif kind is CommandKind.MY_ALERTS:
            await list_alerts(turn)
        elif kind is CommandKind.UNSUBSCRIBE:
            await unsubscribe(turn, command.argument or "all")
        elif kind is CommandKind.DELETE_DATA:
            ask_erasure(turn)
        elif kind is CommandKind.EXPORT_DATA:
            await self.data_export.answer(turn)
        return True

    async def _answer_pending(self, turn: Turn, pending: dict[str, Any]) -> bool:
        """An answer to the bot's own open question; ``False`` hands the text on."""
        kind = pending.get("kind")
        if kind == SERVICE:
            return self.flow.answer_service(turn, pending)
        if kind == LANGUAGE:
            answer_language(turn, self.flow)
            return True
        if kind == RESUME:
            return self.flow.answer_resume(turn, turn.message)
        if kind == PLACE_CHOICE:
            return await answer_place_choice(turn, pending, self.gazetteer)
        if kind == WHERE:
            return await answer_where(turn, pending, self.gazetteer)
        answer = _yes_no_answer(turn.message)
        if answer is None and kind == AREA_NEWS:
            turn.envelope.pop("pending", None)  # an offer, not a question to insist on
            return False
        if answer is None:
            turn.say(Reject(tr(turn.locale, N_("Reply YES or NO."))))
            if kind == ERASE:
                turn.say(erasure_question(turn.locale))
            elif kind == INCIDENT:
                turn.say(incident_question(turn.locale))
            else:
                turn.say(consent_question(turn.locale))
            return True
        turn.envelope.pop("pending", None)
        if kind == ERASE:
            await answer_erasure(turn, answer, self.forms)
            return True
        if kind == AREA_NEWS:
            await answer_area_news(turn, answer, pending)
            return True
        if kind == INCIDENT:
            form_id = await self.incidents.answer(turn, answer, pending)
            if form_id is not None and form_id in self.forms:
                self.flow.open_form(turn, self.forms[form_id])
            return True
        if kind == CONSENT:
            await record_consent(turn, answer)
            form = self.forms.get(str(pending.get("form_id")))
            if form is not None:
                self.flow.start_form(turn, form)
            return True
        return False


def _yes_no_answer(message: InboundMessage) -> bool | None:
    if message.option_id in ("yes", "no"):
        return message.option_id == "yes"
    return parse_yes_no(message.text or "") if message.text else None
