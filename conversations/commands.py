"""The words that work everywhere: opt-out/opt-in/help keywords and the global commands.

Keywords are checked first, in every state, and only match a whole message ("STOP", not "stop
the water"), as carriers and Twilio match them.

SMS and the word CANCEL: Twilio's Advanced Opt-Out treats CANCEL, END and QUIT (like STOP,
STOPALL, UNSUBSCRIBE, OPTOUT, REVOKE) as an opt-out and blocks further messages to the number at
the carrier, whatever the bot does. So on SMS those words opt the resident out here too (the
database agrees with what Twilio enforces), and the way to leave a form on SMS is MENU, or the
form's own "start again" words. On every other channel CANCEL, END and QUIT are not opt-outs:
CANCEL cancels the open form.

Example::

    parse_keyword("Stop", channel="sms", opted_out=False)    # Command(CommandKind.OPT_OUT)
    parse_keyword("cancel", channel="sms", opted_out=False)  # Command(CommandKind.OPT_OUT)
    parse_keyword("cancel", channel="telegram", opted_out=False)  # None (the form cancels)
    parse_command("status ct-7kq4xm")   # Command(CommandKind.STATUS, "CT-7KQ4XM")
    parse_command("status 1042")        # Command(CommandKind.STATUS, "1042"): the city's number
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from conversations.references import REFERENCE_ALPHABET
from forms_runtime.i18n import LOCALES
from forms_runtime.understanding.text import fold
from forms_runtime.understanding.yes_no import parse_yes_no

__all__ = [
    "SMS_ONLY_OPT_OUT_WORDS",
    "Command",
    "CommandKind",
    "bypasses_rate_limit",
    "parse_command",
    "parse_keyword",
    "parse_reference",
]


class CommandKind(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"
    MENU = "menu"
    CANCEL = "cancel"
    BACK = "back"
    LANGUAGE = "language"
    AGENT = "agent"
    STATUS = "status"
    SUBSCRIBE = "subscribe"
    DELETE_DATA = "delete_data"
    EXPORT_DATA = "export_data"


@dataclass(frozen=True, slots=True)
class Command:
    kind: CommandKind
    # STATUS: the reference; SUBSCRIBE: the place; LANGUAGE: the chosen locale, if named.
    argument: str | None = None


# Twilio's opt-out words (Advanced Opt-Out defaults) and their equivalents in af, zu, xh.
OPT_OUT_WORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "optout", "opt out", "revoke"}
    | {"staak", "uitteken", "teken uit"}  # af
    | {"misa", "yeka", "ngiyayeka"}  # zu
    | {"yima", "ndiyayeka"}  # xh
)
SMS_ONLY_OPT_OUT_WORDS = frozenset({"cancel", "end", "quit"})
OPT_IN_WORDS = frozenset({"start", "unstop", "yes", "begin", "qala", "qalisa"})
# Opt-in words that cannot be an answer to a question ("yes" can): these pass the rate limit.
_EXPLICIT_OPT_IN_WORDS = frozenset({"start", "unstop"})
HELP_WORDS = frozenset({"help", "info", "hulp", "inligting", "usizo", "siza", "uncedo", "nceda"})

_COMMAND_WORDS: dict[CommandKind, frozenset[str]] = {
    CommandKind.MENU: frozenset({"menu", "main menu", "kieslys", "hoofkieslys", "imenyu"}),
    CommandKind.CANCEL: frozenset({"cancel", "kanselleer", "khansela", "rhoxisa", "yeka ifomu"}),
    CommandKind.BACK: frozenset({"back", "go back", "terug", "emuva", "buyela emuva", "emva"}),
    CommandKind.LANGUAGE: frozenset({"language", "languages", "taal", "ulimi", "ulwimi"}),
    CommandKind.AGENT: frozenset(
        {"agent", "human", "person", "operator", "talk to a person", "speak to a person"}
        | {"speak to someone", "talk to someone", "a real person", "customer service"}
        | {"mens", "praat met iemand", "umuntu", "ngifuna umuntu", "umntu", "ndifuna umntu"}
    ),
    CommandKind.DELETE_DATA: frozenset(
        {"delete my data", "erase my data", "delete my details", "forget me", "delete me"}
        | {"vee my data uit", "skrap my data", "vee my inligting uit"}
        | {"susa imininingwane yami", "susa idatha yami"}
        | {"cima iinkcukacha zam", "cima idatha yam"}
    ),
    CommandKind.EXPORT_DATA: frozenset(
        {"export my data", "my data", "send my data", "download my data", "what do you know"}
        | {"what do you know about me", "what data do you have", "export data"}
        | {
            "my data uitvoer",
            "voer my data uit",
            "stuur my data",
            "my inligting",
            "stuur my inligting",
        }
        | {"idatha yami", "imininingwane yami", "thumela idatha yami", "thumela imininingwane yami"}
        | {"idatha yam", "iinkcukacha zam", "thumela idatha yam", "thumela iinkcukacha zam"}
    ),
}
_LANGUAGE_NAMES: dict[str, str] = {
    "english": "en",
    "engels": "en",
    "afrikaans": "af",
    "zulu": "zu",
    "isizulu": "zu",
    "xhosa": "xh",
    "isixhosa": "xh",
}
_STATUS_WORDS = ("status", "stand", "isimo", "imeko")
_SUBSCRIBE_WORDS = ("subscribe", "teken in", "inteken", "bhalisa")
_REFERENCE = re.compile(r"^CT[\s-]?([A-Z0-9]{6})$")
# A city's service_request_id after a status word ("status 1042"): digits, letters, dashes.
_CITY_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,63}$")
_REFERENCE_ALPHABET = frozenset(REFERENCE_ALPHABET)


def parse_keyword(text: str | None, *, channel: str, opted_out: bool) -> Command | None:
    """Opt-out, opt-in and help: checked before anything else, in every state."""
    if not text:
        return None
    folded = fold(text)
    if folded in OPT_OUT_WORDS or (channel == "sms" and folded in SMS_ONLY_OPT_OUT_WORDS):
        return Command(CommandKind.OPT_OUT)
    # "yes" and its translations only mean "opt me in" to someone who opted out.
    if opted_out and (folded in OPT_IN_WORDS or parse_yes_no(text) is True):
        return Command(CommandKind.OPT_IN)
    if folded in HELP_WORDS:
        return Command(CommandKind.HELP)
    return None


def bypasses_rate_limit(text: str | None, *, channel: str) -> bool:
    """Whether a message is let through even when the resident is over the rate limit: an
    opt-out word (a flooded resident who sends STOP must be opted out, whatever the bucket says)
    or an explicit opt-in word. Cheap on purpose: it runs before the turn's lock and state."""
    if not text or len(text) > 32:
        return False
    folded = fold(text)
    return (
        folded in OPT_OUT_WORDS
        or folded in _EXPLICIT_OPT_IN_WORDS
        or (channel == "sms" and folded in SMS_ONLY_OPT_OUT_WORDS)
    )


def parse_command(text: str | None) -> Command | None:
    """The global commands: menu, cancel, back, language, agent, status, subscribe, delete,
    export."""
    if not text:
        return None
    folded = fold(text)
    for kind, words in _COMMAND_WORDS.items():
        if folded in words:
            return Command(kind)
    if folded in _LANGUAGE_NAMES:
        return Command(CommandKind.LANGUAGE, _LANGUAGE_NAMES[folded])
    first, _, rest = folded.partition(" ")
    if first in _COMMAND_WORDS[CommandKind.LANGUAGE] and rest:
        chosen = _LANGUAGE_NAMES.get(rest, rest if rest in LOCALES else None)
        if chosen is not None:
            return Command(CommandKind.LANGUAGE, chosen)
    for word in _STATUS_WORDS:
        if folded.startswith(word + " "):
            given = text[text.lower().index(word) + len(word) :].strip()
            reference = parse_reference(given)
            if reference is None and _CITY_NUMBER.match(given):
                reference = given
            return Command(CommandKind.STATUS, reference or "")
    reference = parse_reference(text)
    if reference is not None:
        return Command(CommandKind.STATUS, reference)
    for word in _SUBSCRIBE_WORDS:
        if folded == word or folded.startswith(word + " "):
            place = folded[len(word) :].strip()
            return Command(CommandKind.SUBSCRIBE, place or None)
    return None


def parse_reference(text: str) -> str | None:
    """``"ct 7kq4xm"``, ``"CT-7KQ4XM"`` -> ``"CT-7KQ4XM"``; anything else -> ``None``."""
    match = _REFERENCE.match(text.strip().upper())
    if match is None or not set(match.group(1)) <= _REFERENCE_ALPHABET:
        return None
    return f"CT-{match.group(1)}"
