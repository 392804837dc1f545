"""The resident's language: the LANGUAGE command and question, and switching mid-form.

A switch keeps the open form where it was and asks its question again in the new language.

Example::

    ask_language(turn)                       # "Which language do you want?" with four options
    switch_language(turn, "zu", flow)        # "Language changed to isiZulu." + the question again
"""

from __future__ import annotations

from channels.types import InboundMessage
from conversations.commands import CommandKind, parse_command
from conversations.form_flow import FormFlow, pending_kind
from conversations.turn_context import Turn
from forms_runtime.effects import Ask, InputKind, Notice, OptionView
from forms_runtime.i18n import LANGUAGE_NAMES, LOCALES, N_, tr
from forms_runtime.understanding.text import fold, small_number

__all__ = ["LANGUAGE", "answer_language", "ask_language", "chosen_language", "switch_language"]

# The bot's own question, kept in the state envelope under "pending".
LANGUAGE = "language"


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
