"""Navigation words: back, skip, cancel, restart, change N, send, and language names.

Words in every locale are understood whatever the resident's current locale, because residents
mix languages. Only a whole message counts ("at the back of the house" is an answer, not BACK).
STOP is not here on purpose: it is the opt-out word, handled before any form sees a message.

Example::

    parse_navigation("Terug")          # Navigation(kind='back')
    parse_navigation("shintsha 2")     # Navigation(kind='change', number=2)
    parse_navigation("isiXhosa")       # Navigation(kind='language', locale='xh')
"""

from __future__ import annotations

from dataclasses import dataclass

from forms_runtime.understanding.numbers import NUMBER_WORDS
from forms_runtime.understanding.text import clean_text, fold

__all__ = ["NAVIGATION_KINDS", "NAVIGATION_WORDS", "Navigation", "parse_navigation"]

NAVIGATION_KINDS: tuple[str, ...] = (
    "back", "skip", "cancel", "restart", "change", "send", "language",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Navigation:
    """A navigation request: ``number`` for "change N", ``locale`` for a language switch."""

    kind: str
    number: int | None = None
    locale: str | None = None


# The one word per locale that prompts teach ("Reply TERUG to go back"). Each is a common
# everyday word in that language: isiZulu emuva (behind), yeqa (jump over), khansela (cancel),
# qala kabusha (start anew), shintsha (change), thumela (send); isiXhosa emva (behind),
# tsiba (skip over), rhoxisa (withdraw, cancel), qala kwakhona (start again), tshintsha (change),
# thumela (send).
NAVIGATION_WORDS: dict[str, dict[str, str]] = {
    "en": {
        "back": "back",
        "skip": "skip",
        "cancel": "cancel",
        "restart": "restart",
        "change": "change",
        "send": "send",
    },
    "af": {
        "back": "terug",
        "skip": "oorslaan",
        "cancel": "kanselleer",
        "restart": "begin weer",
        "change": "verander",
        "send": "stuur",
    },
    "zu": {
        "back": "emuva",
        "skip": "yeqa",
        "cancel": "khansela",
        "restart": "qala kabusha",
        "change": "shintsha",
        "send": "thumela",
    },
    "xh": {
        "back": "emva",
        "skip": "tsiba",
        "cancel": "rhoxisa",
        "restart": "qala kwakhona",
        "change": "tshintsha",
        "send": "thumela",
    },
}

# Every accepted whole message (folded) -> kind, beyond the canonical words above.
_PHRASES: dict[str, tuple[str, ...]] = {
    "back": (
        "go back", "previous", "prev", "back please",
        "terug", "gaan terug", "vorige",
        "emuva", "buyela emuva", "buya emuva",
        "emva", "buyela umva", "buyela emva", "umva",
    ),
    "skip": (
        "skip this", "skip it", "skip question", "next", "skp",
        "slaan oor", "oorslaan", "oorslaan asseblief",
        "yeqa", "eqa", "yeqa lokhu",
        "tsiba", "tsiba lo",
    ),
    "cancel": (
        "cancel form", "cancel report", "cancel this", "cancle", "cancell",
        "kanselleer", "kanseleer",
        "khansela", "yeka",
        "rhoxisa",
    ),
    "restart": (
        "start again", "start over", "begin again", "start from the beginning", "restart form",
        "begin weer", "begin oor", "herbegin", "begin van voor af",
        "qala kabusha", "qala phansi", "qala futhi",
        "qala kwakhona", "qala ngokutsha", "phinda uqale",
    ),
    "change": ("edit", "verander", "wysig", "shintsha", "tshintsha"),
    "send": (
        "submit", "confirm", "send it", "send report",
        "stuur", "dien in", "indien", "bevestig", "stuur dit",
        "thumela", "thumela manje", "thumela ngoku",
    ),
}  # fmt: skip

# Language names as residents write them, in each of the four languages.
_LANGUAGES: dict[str, str] = {
    "english": "en", "engels": "en", "isingisi": "en", "isingesi": "en", "eng": "en",
    "in english": "en", "english please": "en",
    "afrikaans": "af", "afrikaan": "af", "afrikaans asseblief": "af", "in afrikaans": "af",
    "isibhunu": "af", "isibhulu": "af", "afr": "af",
    "isizulu": "zu", "zulu": "zu", "zoeloe": "zu", "in zulu": "zu", "in isizulu": "zu",
    "isixhosa": "xh", "xhosa": "xh", "in xhosa": "xh", "in isixhosa": "xh",
}  # fmt: skip


def _build() -> dict[str, Navigation]:
    table: dict[str, Navigation] = {}
    for words in NAVIGATION_WORDS.values():
        for kind, word in words.items():
            table[fold(word)] = Navigation(kind)
    for kind, phrases in _PHRASES.items():
        for phrase in phrases:
            table[fold(phrase)] = Navigation(kind)
    for name, locale in _LANGUAGES.items():
        table[fold(name)] = Navigation("language", locale=locale)
    return table


_TABLE: dict[str, Navigation] = _build()
_CHANGE_WORDS = frozenset(fold(w) for w in ("change", "edit", "verander", "wysig", "shintsha", "tshintsha"))  # fmt: skip
# Words allowed between "change" and its number: "change number 2", "verander nommer 2".
_NUMBER_NOUNS = frozenset({"number", "no", "nr", "nommer", "item", "question", "vraag", "inombolo", "answer"})  # fmt: skip
_MAX_CHANGE = 99


def _number(word: str) -> int | None:
    if word.isdecimal() and len(word) <= 3:
        value = int(word)
    else:
        spelled = NUMBER_WORDS.get(word)
        if spelled is None:
            return None
        value = spelled
    return value if 1 <= value <= _MAX_CHANGE else None


def _change(words: list[str]) -> Navigation | None:
    """ "change 2", "2 change", "change number 2", "verander twee", "shintsha 2"."""
    if words[0] in _CHANGE_WORDS:
        rest = words[1:]
    elif words[-1] in _CHANGE_WORDS:
        rest = words[:-1]
    else:
        return None
    if rest and rest[0] in _NUMBER_NOUNS:
        rest = rest[1:]
    if len(rest) != 1:
        return None
    number = _number(rest[0])
    return Navigation("change", number=number) if number is not None else None


def parse_navigation(text: str) -> Navigation | None:
    """The navigation a whole message asks for, or None when it is an ordinary answer.

    Example::

        parse_navigation("qala kabusha")   # Navigation(kind='restart')
    """
    if len(text) > 200:
        # Navigation is a word or two; a long message is an answer (and is not cleaned for nothing).
        return None
    folded = fold(clean_text(text, 200))
    if not folded:
        return None
    found = _TABLE.get(folded)
    if found is not None:
        return found
    words = folded.split()
    if 2 <= len(words) <= 4:
        return _change(words)
    return None
