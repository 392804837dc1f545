"""Numbers as residents type them: "5", "5,5", "1 000", "-3", "about 5", "five", "vyf", "ishumi".

Example::

    parse_number("about 5,5 metres", "af")   # 5.5
"""

from __future__ import annotations

import re

from forms_runtime.understanding.text import clean_text, fold

__all__ = ["NUMBER_WORDS", "parse_number"]

_EN_UNITS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
]  # fmt: skip
_EN_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_AF_UNITS = [
    "nul", "een", "twee", "drie", "vier", "vyf", "ses", "sewe", "agt", "nege", "tien", "elf",
    "twaalf", "dertien", "veertien", "vyftien", "sestien", "sewentien", "agtien", "negentien",
    "twintig",
]  # fmt: skip
_AF_TENS = {
    "twintig": 20,
    "dertig": 30,
    "veertig": 40,
    "vyftig": 50,
    "sestig": 60,
    "sewentig": 70,
    "tagtig": 80,
    "negentig": 90,
}
# Counting words, as said when counting aloud (isiZulu: kunye, kubili...; isiXhosa: inye,
# zimbini...). Short stems such as "ne" (four) are left out: as a whole answer they are more
# likely something else.
_ZU = {
    "kunye": 1,
    "kubili": 2,
    "kuthathu": 3,
    "kune": 4,
    "kuhlanu": 5,
    "isithupha": 6,
    "isikhombisa": 7,
    "isishiyagalombili": 8,
    "isishiyagalolunye": 9,
    "ishumi": 10,
}
_XH = {
    "inye": 1,
    "zimbini": 2,
    "zintathu": 3,
    "zine": 4,
    "zintlanu": 5,
    "zintandathu": 6,
    "isithandathu": 6,
    "isixhenxe": 7,
    "isibhozo": 8,
    "ithoba": 9,
    "ishumi": 10,
}


def _build_words() -> dict[str, int]:
    words: dict[str, int] = {}
    words.update({w: i for i, w in enumerate(_EN_UNITS)})
    words.update(_EN_TENS)
    words["hundred"] = 100
    words["a hundred"] = 100
    words["one hundred"] = 100
    words["honderd"] = 100
    for tens_word, tens in _EN_TENS.items():
        for unit in range(1, 10):
            unit_word = _EN_UNITS[unit]
            words[f"{tens_word} {unit_word}"] = tens + unit
            words[f"{tens_word}{unit_word}"] = tens + unit
    words.update({w: i for i, w in enumerate(_AF_UNITS)})
    words.update(_AF_TENS)
    for tens_word, tens in _AF_TENS.items():
        for unit in range(1, 10):
            unit_word = _AF_UNITS[unit]
            # "vyfentwintig"; "tweeëntwintig" folds to "tweeentwintig".
            words[f"{unit_word}en{tens_word}"] = tens + unit
            words[f"{unit_word} en {tens_word}"] = tens + unit
    words.update(_ZU)
    words.update(_XH)
    return words


# Folded word (or two-word phrase) -> value, in every locale.
NUMBER_WORDS: dict[str, int] = _build_words()

# A number with optional sign; grouping by spaces, commas or dots; decimal comma or point.
_NUMBER = re.compile(
    r"(?:(?:^|(?<=\s))([-+\u2212]))?(?<![\d.,])"
    r"(\d{1,3}(?:(?:[ \u00a0\u202f]\d{3})+|(?:,\d{3}){2,}|(?:\.\d{3}){2,})(?:[.,]\d+)?"
    r"|\d{1,3},\d{3}\.\d+|\d{1,3}\.\d{3},\d+"
    r"|\d+(?:[.,]\d+)?)"
)


def _to_float(digits: str, locale: str) -> float | None:
    if "," in digits and "." in digits:
        # Whichever comes last is the decimal separator: "1,234.5" / "1.234,5".
        if digits.rfind(",") > digits.rfind("."):
            digits = digits.replace(".", "").replace(",", ".")
        else:
            digits = digits.replace(",", "")
    elif digits.count(",") > 1:
        digits = digits.replace(",", "")
    elif digits.count(".") > 1:
        digits = digits.replace(".", "")
    elif "," in digits:
        whole, _, fraction = digits.partition(",")
        # "1,500" is fifteen hundred to an English writer but one and a half in the South
        # African decimal-comma convention the other locales follow.
        if len(fraction) == 3 and locale == "en" and whole != "0":
            digits = whole + fraction
        else:
            digits = f"{whole}.{fraction}"
    digits = digits.replace(" ", "").replace("\u00a0", "").replace("\u202f", "")
    try:
        return float(digits)
    except ValueError:
        return None


def parse_number(text: str, locale: str) -> float | None:
    """The first number in a short answer, or None when there is none.

    Digits may use a decimal comma or point and space grouping ("1 000"); number words are
    understood in English and Afrikaans (zero to ninety-nine) and the isiZulu and isiXhosa
    counting words one to ten, whatever ``locale`` is. ``locale`` decides only whether "1,500"
    is fifteen hundred ("en") or one and a half (the decimal comma of af, zu, xh).

    Example::

        parse_number("about 1 000", "en")   # 1000.0
    """
    cleaned = clean_text(text, 200)
    if not cleaned:
        return None
    match = _NUMBER.search(cleaned)
    if match is not None:
        value = _to_float(match.group(2), locale)
        if value is not None and match.group(1) in ("-", "\u2212"):
            value = -value
        return value
    words = fold(cleaned).split()
    for i, word in enumerate(words):
        if i + 2 < len(words):
            # Afrikaans "vyf en twintig".
            three = NUMBER_WORDS.get(f"{word} {words[i + 1]} {words[i + 2]}")
            if three is not None:
                return float(three)
        if i + 1 < len(words):
            two = NUMBER_WORDS.get(f"{word} {words[i + 1]}")
            if two is not None:
                return float(two)
        one = NUMBER_WORDS.get(word)
        if one is not None:
            return float(one)
    return None
