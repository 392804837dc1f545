"""The USSD dialogue: one gateway request in, one screen out, the same turn loop underneath.

USSD gives a menu of numbers and a few characters of free text, 182 at a time, and forgets
everything between requests but what was typed. This module keeps the rest
(``conversations.ussd_sessions``) and turns each request into what the conversation core
already understands, so the same forms, consent, filing and references serve USSD residents:

* the gateway's ``text`` is everything typed so far: the parts past those already taken are
  the new input ("1*2*Main Road" after two taken -> "Main Road"); a request that brings
  nothing new is the gateway asking again, and gets the same answer (nothing doubled);
* "00" shows the next page of a long screen, "0" the previous one, or goes back a step;
* a number on a screen of choices becomes that choice (a button press for the form engine);
  anything else is typed text;
* a question about a place becomes a search: the first letters of a suburb or settlement, or
  a ward number, list places of the gazetteer to pick from (USSD has no pins);
* the menu: report a problem, check a request, area alerts, language, talk to a person. They
  send the turn loop its own commands (menu, status REF, subscribe PLACE, language, agent);
* the first screen a new resident sees offers the language; a resident cut off with a form
  open who dials again within ten minutes is offered to continue;
* a reference (and all later news) also goes by SMS: the screen is gone once the session ends.

Built once by the composition root (``bot.bootstrap``), which hands it the one door into the
turn loop (``Services.handle_inbound``: metrics, turns a shutdown waits for) and the reply sender.

Example::

    dialogue = UssdDialogue(channel, UssdSessions(sessionmaker), turns=handle, sender=sender)
    await dialogue.answer(hit)      # "CON Choose a language\\n1 English\\n2 Afrikaans\\n..."
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from channels.types import InboundKind, InboundMessage
from channels.ussd import UssdChannel, UssdHit
from channels.ussd_screens import BACK, MORE, paginate, places_in_ward, places_starting
from conversations.picker import PICKER_STEP
from conversations.turn import TurnResult
from conversations.ussd_sessions import SavedUssd, UssdSessions
from forms_runtime.effects import (
    Ask,
    Cancelled,
    Effect,
    Handoff,
    InputKind,
    Notice,
    Reject,
    Review,
    Submit,
)
from forms_runtime.gazetteer import Gazetteer, default_gazetteer
from forms_runtime.i18n import LOCALES, N_, tr
from notifier.replies import ReplySender

__all__ = ["LANGUAGE_NAMES", "TIME_BUDGET", "UssdDialogue"]

log = logging.getLogger("citybot.ussd")

# Africa's Talking waits a few seconds for an answer; staying well under it leaves room for the
# network. A turn that takes longer still completes (it is shielded); the resident is told to
# dial again and is offered to continue.
TIME_BUDGET = 1.6
# What the "dial again" answer may wait for the resident's language: the read that finds it can
# be stalled by what made the step late, and the gateway gives up at 2 s.
LOCALE_WAIT = 0.2

# Each language in its own name: the resident may not read the current one.
LANGUAGE_NAMES = {"en": "English", "af": "Afrikaans", "zu": "isiZulu", "xh": "isiXhosa"}

_MENU = (
    ("report", N_("Report a problem")),
    ("status", N_("Check a request")),
    ("subscribe", N_("Area alerts")),
    ("language", N_("Language")),
    ("agent", N_("Talk to a person")),
)
_PLACE_PROMPT = N_("Type the first letters of the suburb or settlement, or the ward number.")
_NOTHING_FOUND = N_("No place starts with that. Type other letters or the ward number.")

Screen = dict[str, Any]


Turns = Callable[[InboundMessage], Awaitable[TurnResult]]


class UssdDialogue:
    def __init__(
        self,
        channel: UssdChannel,
        sessions: UssdSessions,
        *,
        turns: Turns,
        sender: ReplySender,
        gazetteer: Gazetteer | None = None,
    ) -> None:
        self.channel = channel
        self._turns = turns
        self._sender = sender
        self.sessions = sessions
        self.gazetteer = gazetteer or default_gazetteer()
        # Dialogue steps still running after their answer went out (over the time budget).
        self._late: set[asyncio.Task[str]] = set()

    async def answer(self, hit: UssdHit) -> str:
        """The gateway's answer to ``hit`` ("CON ..." or "END ..."), within ``TIME_BUDGET``."""
        task = asyncio.ensure_future(self._answer(hit))
        try:
            return await asyncio.wait_for(asyncio.shield(task), TIME_BUDGET)
        except TimeoutError:
            # The step carries on and saves where the resident is: dialling again resumes.
            self._late.add(task)
            task.add_done_callback(self._late.discard)
            log.warning("USSD answer over the time budget", extra={"channel": "ussd"})
            saved = await _quietly(asyncio.wait_for(self.sessions.get(hit.phone), LOCALE_WAIT))
            locale = saved.screen.get("locale", "en") if saved else "en"
            return "END " + tr(locale, N_("We are busy. Please dial again in a minute."))

    async def _answer(self, hit: UssdHit) -> str:
        saved = await self.sessions.get(hit.phone)
        same = saved is not None and saved.session_id == hit.session_id
        consumed = saved.consumed if saved is not None and same else 0
        if same and saved is not None and len(hit.parts) <= consumed:
            return saved.answer  # the gateway asked again: the same answer, nothing redone
        entry = "*".join(hit.parts[consumed:]).strip()
        if same and saved is not None:
            screen, ended = await self._step(hit, dict(saved.screen), entry)
        else:
            screen, ended = await self._start(hit, saved)
        page = paginate(
            screen["text"],
            [tuple(c) for c in screen.get("choices", [])],
            screen.get("page", 0),
            screen["locale"],
            back=bool(screen.get("back", True)) and not ended,
            more=not ended,
        )
        answer = ("END " if ended else "CON ") + page.text
        if ended and page.more and not screen.get("texted"):
            # A closed session cannot show "00 More": what did not fit goes by SMS, whole.
            self._sms_text(hit.phone, str(screen["text"]), str(screen["locale"]))
        screen["ended"] = ended
        if screen.get("erased"):
            # DELETE MY DATA: where the phone stood goes too (erasure deleted the row); a
            # gateway retry of this request then starts afresh rather than seeing old answers.
            await self.sessions.forget(hit.phone)
            return answer
        await self.sessions.put(
            hit.phone, SavedUssd(hit.session_id, len(hit.parts), screen, answer)
        )
        return answer

    # --- the first screen of a session -----------------------------------------------------

    async def _start(self, hit: UssdHit, saved: SavedUssd | None) -> tuple[Screen, bool]:
        if saved is None:
            return _language_screen("en", back=False), False
        previous = saved.screen
        locale = str(previous.get("locale", "en"))
        if (
            not previous.get("ended")
            and previous.get("mode") in ("form", "place")
            and saved.resumable(datetime.now(UTC))
        ):
            return {
                "mode": "resume",
                "locale": locale,
                "text": tr(locale, N_("You were cut off. Continue where you stopped?")),
                "choices": [
                    ["continue", tr(locale, N_("Continue"))],
                    ["restart", tr(locale, N_("Start again"))],
                ],
                "back": False,
                "previous": {k: v for k, v in previous.items() if k != "previous"},
            }, False
        return _menu_screen(locale), False

    # --- every later screen ----------------------------------------------------------------

    async def _step(self, hit: UssdHit, screen: Screen, entry: str) -> tuple[Screen, bool]:
        locale = str(screen.get("locale", "en"))
        mode = screen.get("mode")
        if entry == MORE:
            screen["page"] = screen.get("page", 0) + 1
            return screen, False
        if entry == BACK:
            if screen.get("page", 0) > 0:
                screen["page"] -= 1
                return screen, False
            if mode == "place" and screen.get("choices"):
                # Back from the places found is the search, to type other letters.
                lead = str(screen.get("lead", ""))
                return _place_screen(locale, str(screen.get("purpose", "form")), lead), False
            if screen.get("step") == PICKER_STEP:
                # The service picker is the first question: back from it is the menu it came
                # from (the turn loop's "back" would only show the picker again).
                return _menu_screen(locale), False
            if mode in ("form", "place") and screen.get("purpose") != "subscribe":
                return await self._turn(hit, "back", locale)
            return _menu_screen(locale), False
        picked = _picked(screen, entry)
        if mode == "language":
            if picked is None:
                return _again(screen, locale), False
            after, _ = await self._turn(hit, f"language {picked}", picked)
            shown_locale = str(after.get("locale", picked))
            notices = after["text"] if after.get("mode") != "form" else ""
            return _menu_screen(shown_locale, notices), False
        if mode == "menu":
            return await self._menu_choice(hit, entry, picked, locale, screen)
        if mode == "resume":
            if picked == "continue":
                return dict(screen["previous"]), False
            if picked == "restart":
                await self._turn(hit, "cancel", locale)
                return _menu_screen(locale), False
            return _again(screen, locale), False
        if mode == "status":
            if not entry:
                return screen, False
            return await self._turn(hit, f"status {entry}", locale)
        if mode == "place":
            return await self._place(hit, screen, entry, picked, locale)
        # mode "form": a number picks a choice; anything else is the resident's own words.
        if picked is not None:
            return await self._turn(hit, None, locale, option_id=picked)
        return await self._turn(hit, entry, locale)

    async def _menu_choice(
        self, hit: UssdHit, entry: str, picked: str | None, locale: str, screen: Screen
    ) -> tuple[Screen, bool]:
        if picked == "report":
            return await self._turn(hit, "menu", locale)
        if picked == "status":
            text = tr(locale, N_("Type the reference of your request, for example CT7KQ4XM."))
            return {"mode": "status", "locale": locale, "text": text, "choices": []}, False
        if picked == "subscribe":
            return _place_screen(locale, "subscribe", ""), False
        if picked == "language":
            return _language_screen(locale, back=True), False
        if picked == "agent":
            return await self._turn(hit, "agent", locale)
        if entry and not entry.isdigit():
            # Words, not a number: what residents type on every channel (DELETE MY DATA,
            # EXPORT MY DATA, HELP, a service's name) goes to the turn loop as it is.
            return await self._turn(hit, entry, locale)
        return _again(screen, locale), False

    async def _place(
        self, hit: UssdHit, screen: Screen, entry: str, picked: str | None, locale: str
    ) -> tuple[Screen, bool]:
        purpose = str(screen.get("purpose", "form"))
        if picked is not None:
            if purpose == "subscribe":
                return await self._turn(hit, f"subscribe {picked}", locale)
            after, ended = await self._turn(hit, picked, locale)
            if after.get("mode") == "place":
                # The place is known; the engine now asks which street in it: typed words.
                after = {**after, "mode": "form", "text": after["lead"]}
            return after, ended
        if entry.isdigit():
            names = places_in_ward(self.gazetteer, entry)
        else:
            names = places_starting(self.gazetteer, entry)
        lead = str(screen.get("lead", ""))
        if not names:
            return _place_screen(locale, purpose, lead, tr(locale, _NOTHING_FOUND)), False
        found = _place_screen(locale, purpose, lead)
        found["text"] = tr(locale, N_("Choose the place:"))
        found["choices"] = [[name, name] for name in names]
        return found, False

    # --- through the turn loop -------------------------------------------------------------

    async def _turn(
        self, hit: UssdHit, text: str | None, locale: str, *, option_id: str | None = None
    ) -> tuple[Screen, bool]:
        inbound = InboundMessage(
            channel=self.channel.name,
            address=hit.phone,
            message_id=f"{hit.session_id}:{len(hit.parts)}",
            kind=InboundKind.BUTTON if option_id is not None else InboundKind.TEXT,
            text=text,
            option_id=option_id,
            language_hint=locale,
        )
        result = await self._turns(inbound)
        texted = self._sms_news(hit.phone, result)
        screen, ended = _screen_of(result)
        if texted:
            screen["texted"] = True
        if result.erased:
            screen["erased"] = True
        return screen, ended

    def _sms_news(self, phone: str, result: TurnResult) -> bool:
        """The reference goes by SMS too: the resident cannot scroll back to a USSD screen."""
        if not result.reference:
            return False
        kept: list[Effect] = [e for e in result.effects if isinstance(e, Notice | Submit)]
        self._sender.schedule(self.channel, self.channel.render(kept, result.locale, phone))
        return True

    def _sms_text(self, phone: str, text: str, locale: str) -> None:
        self._sender.schedule(self.channel, self.channel.render([Notice(text)], locale, phone))


def _screen_of(result: TurnResult) -> tuple[Screen, bool]:
    """The screen that shows a turn's effects; ended when it asks nothing more."""
    locale = result.locale
    texts: list[str] = []
    choices: list[list[str]] = []
    asked: Ask | Review | None = None
    for effect in result.effects:
        if isinstance(effect, Ask):
            asked = effect
            texts.append(effect.prompt)
            # A location question's hint speaks of pins, which USSD has not: the search says how.
            if effect.hint and effect.kind is not InputKind.LOCATION:
                texts.append(effect.hint)
            choices = [[o.id, o.label] for o in effect.options]
        elif isinstance(effect, Review):
            asked = effect
            texts.append(effect.title)
            texts.extend(f"{i.number}. {i.label}: {i.value}" for i in effect.items)
            texts.append(effect.prompt)
            choices = [[o.id, o.label] for o in effect.options]
        elif isinstance(effect, Submit):
            texts.append(effect.confirmation)
        elif isinstance(effect, Reject | Notice | Cancelled | Handoff):
            texts.append(effect.message)
    text = "\n".join(t for t in texts if t)
    if asked is None:
        # Nothing said (a person holds the conversation now): the session still needs words.
        text = text or tr(locale, N_("Thank you. We will answer you by SMS."))
        return {"mode": "end", "locale": locale, "text": text, "choices": []}, True
    if isinstance(asked, Ask) and asked.kind is InputKind.LOCATION:
        return _place_screen(locale, "form", text), False
    step = asked.step_id if isinstance(asked, Ask) else None
    return {"mode": "form", "locale": locale, "text": text, "choices": choices, "step": step}, False


def _language_screen(locale: str, *, back: bool) -> Screen:
    return {
        "mode": "language",
        "locale": locale,
        "text": "Language / Taal / Ulimi / Ulwimi",
        "choices": [[code, LANGUAGE_NAMES[code]] for code in LOCALES],
        "back": back,
    }


def _menu_screen(locale: str, lead: str = "") -> Screen:
    title = tr(locale, N_("City services"))
    return {
        "mode": "menu",
        "locale": locale,
        "text": f"{lead}\n{title}" if lead else title,
        "choices": [[key, tr(locale, label)] for key, label in _MENU],
        "back": False,
    }


def _place_screen(locale: str, purpose: str, lead: str, problem: str = "") -> Screen:
    prompt = problem or tr(locale, _PLACE_PROMPT)
    return {
        "mode": "place",
        "purpose": purpose,
        "locale": locale,
        # The question that asked for the place stays on top of the search prompt.
        "lead": lead,
        "text": f"{lead}\n{prompt}" if lead else prompt,
        "choices": [],
    }


def _picked(screen: Screen, entry: str) -> str | None:
    """The id of the choice numbered ``entry`` on ``screen``, if it is one."""
    choices = screen.get("choices") or []
    if entry.isdigit() and 1 <= int(entry) <= len(choices):
        return str(choices[int(entry) - 1][0])
    return None


def _again(screen: Screen, locale: str) -> Screen:
    """The same screen, told that the answer was not one of its numbers."""
    again = dict(screen)
    problem = tr(locale, N_("Choose one of the numbers."))
    text = str(screen["text"])
    if not text.startswith(problem):
        again["text"] = f"{problem}\n{text}"
    again["page"] = 0
    return again


async def _quietly(step: Any) -> SavedUssd | None:
    """``step``'s result, or None when it fails or times out (then the answer is in English)."""
    try:
        result: SavedUssd | None = await step
    except Exception:
        return None
    return result
