"""Understanding answers: how residents really reply, in en, af, zu and xh, with typos.

Pure functions with no I/O, fast enough to run on every message: text cleaning and folding,
choices (by number or label), yes/no, dates, numbers, phone/email/name, navigation words, and the
language a resident writes in (``detect_language``).

Example::

    from forms_runtime.understanding import match_choice, parse_yes_no
    parse_yes_no("yebo")   # True
"""

from forms_runtime.understanding.choices import (
    ChoiceMatch,
    ChoiceOption,
    CompiledOptions,
    compile_options,
    match_choice,
    match_choices,
)
from forms_runtime.understanding.contact import normalise_phone, parse_email, parse_name
from forms_runtime.understanding.dates import parse_date
from forms_runtime.understanding.language import LanguageGuess, detect_language
from forms_runtime.understanding.navigation import (
    NAVIGATION_KINDS,
    NAVIGATION_WORDS,
    Navigation,
    parse_navigation,
)
from forms_runtime.understanding.numbers import parse_number
from forms_runtime.understanding.text import clean_text, fold
from forms_runtime.understanding.yes_no import parse_yes_no

__all__ = [
    "NAVIGATION_KINDS",
    "NAVIGATION_WORDS",
    "ChoiceMatch",
    "ChoiceOption",
    "CompiledOptions",
    "LanguageGuess",
    "Navigation",
    "clean_text",
    "compile_options",
    "detect_language",
    "fold",
    "match_choice",
    "match_choices",
    "normalise_phone",
    "parse_date",
    "parse_email",
    "parse_name",
    "parse_navigation",
    "parse_number",
    "parse_yes_no",
]
