"""The resident's language: read from their first words, the LANGUAGE command and question,
and switching mid-form.

A new resident who writes in Afrikaans, isiZulu or isiXhosa ("Sawubona, amanzi ayaphuma
emgwaqweni") is answered in that language from the privacy notice on
(``detect_first_language``), and the bot's question carries one more option to go back to the
language they would have had ("Reply 3 for English", a button where the channel has them:
``offer_switch``); taking it (``taken_switch``) asks the same question again in that language.
A switch keeps the open form where it was and asks its question again in the new language.

Example::

    previous = detect_first_language(turn)   # "en"; turn.locale is now "zu"
    ...                                      # the privacy notice and the picker, in isiZulu
    offer_switch(turn, previous)             # + OptionView("language:en", "English")
    ask_language(turn)                       # "Which language do you want?" with four options
    switch_language(turn, "zu", flow)        # "Language changed to isiZulu." + the question again
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from channels.types import InboundMessage
from conversations.commands import CommandKind, parse_command
from conversations.form_flow import FormFlow, pending_kind
from conversations.turn_context import Turn
from forms_runtime.effects import Ask, InputKind, Notice, OptionView
from forms_runtime.i18n import LANGUAGE_NAMES, LOCALES, N_, tr
from forms_runtime.understanding.language import detect_language
from forms_runtime.understanding.text import fold, small_number

__all__ = [
    "LANGUAGE",
    "answer_language",
    "ask_language",
    "chosen_language",
    "detect_first_language",
    "offer_switch",
    "switch_language",
    "taken_switch",
]

# The bot's own question, kept in the state envelope under "pending".
LANGUAGE = "language"
# The option that switches back after a language was read from the first words; the offer is
# kept in the envelope under "switch" for the next message only.
SWITCH_OPTION_PREFIX = "language:"


def detect_first_language(turn: Turn) -> str | None:
    """On a new resident's first message: when its words are clearly af, zu or xh, answer in
    that language from now on and return the locale it replaces (to offer the way back)."""
    text = turn.message.text
    guess = detect_language(text) if text else None
    if guess is None or guess.locale == turn.profile.locale:
        return None
    previous = turn.profile.locale
    turn.profile.locale = guess.locale
    return previous


def offer_switch(turn: Turn, locale: str) -> None:
    """Add "<language>" as the last option of the bot's question, when it is a choice."""
    last = turn.effects[-1] if turn.effects else None
    if not isinstance(last, Ask) or last.kind is not InputKind.CHOICE:
        return
    option = OptionView(SWITCH_OPTION_PREFIX + locale, LANGUAGE_NAMES[locale])
    turn.effects[-1] = replace(last, options=(*last.options, option))
    turn.envelope["switch"] = {
        "locale": locale,
        "number": len(last.options) + 1,  # what an SMS resident types for it
        "text": turn.message.text,
    }


def taken_switch(turn: Turn, offered: dict[str, Any]) -> str | None:
    """The locale, when this message takes the switch offered with the previous answer."""
    locale = offered.get("locale")
    if locale not in LOCALES:
        return None
    message = turn.message
    if message.option_id is not None:
        return str(locale) if message.option_id == SWITCH_OPTION_PREFIX + locale else None
    if small_number(message.text or "") == offered.get("number"):
        return str(locale)
    return None


def ask_language(turn: Turn) -> None:
    turn.envelope["pending"] = {"kind": LANGUAGE}
    turn.say(language_question(turn.locale))


def language_question(locale: str) -> Ask:
    return Ask(
        step_id=LANGUAGE,
        prompt=tr(locale, N_("Which language do you want?")),
        kind=InputKind.CHOICE,
        options=tuple(OptionView(code, LANGUAGE_NAMES[code]) for code in LOCALES),
    )


def answer_language(turn: Turn, flow: FormFlow) -> None:
    chosen = chosen_language(turn.message)
    if chosen is None:
        turn.say(language_question(turn.locale))
    else:
        turn.envelope.pop("pending", None)
        switch_language(turn, chosen, flow)


def switch_language(turn: Turn, locale: str, flow: FormFlow) -> None:
    turn.profile.locale = locale
    if pending_kind(turn) == LANGUAGE:
        turn.envelope.pop("pending", None)
    text = N_("Language changed to {language}.")
    turn.say(Notice(tr(locale, text, language=LANGUAGE_NAMES[locale])))
    state = turn.envelope.get("form")
    if state is not None:
        turn.envelope["form"] = {**state, "locale": locale}
        flow.repeat_question(turn)
    elif turn.envelope.get("pending") is None:
        flow.menu(turn, locale)


def chosen_language(message: InboundMessage) -> str | None:
    """The locale an answer to "which language?" names: a button, 1-4, or a language's name."""
    if message.option_id in LOCALES:
        return message.option_id
    text = fold(message.text or "")
    number = small_number(text)
    if number is not None and 1 <= number <= len(LOCALES):
        return LOCALES[number - 1]
    command = parse_command(text)
    if command is not None and command.kind is CommandKind.LANGUAGE and command.argument in LOCALES:
        return command.argument
    return text if text in LOCALES else None
