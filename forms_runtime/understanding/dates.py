"""Dates as residents give them, in English, Afrikaans, isiZulu and isiXhosa.

"today", "gister", "izolo", "last monday", "uMsombuluko", "3 Dec", "December 3", "03/12/2026"
(day first, the South African convention), "2026-12-03", "3.12.2026", "3 days ago". A date
without a year is the most recent such date not after today. Impossible dates return None.

Example::

    parse_date("3 Desember", date(2026, 1, 10))   # date(2025, 12, 3)
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from functools import lru_cache

from rapidfuzz import fuzz, process

from forms_runtime.understanding.numbers import NUMBER_WORDS
from forms_runtime.understanding.text import clean_text, fold

__all__ = ["parse_date"]

# Folded phrase -> days before today.
_RELATIVE: dict[str, int] = {
    # English
    "today": 0, "now": 0, "just now": 0, "this morning": 0, "this afternoon": 0,
    "this evening": 0, "tonight": 0, "earlier today": 0, "today morning": 0,
    "yesterday": 1, "last night": 1, "yesterday morning": 1, "yesterday afternoon": 1,
    "yesterday evening": 1, "yesterday night": 1, "yday": 1, "ystrday": 1, "yesterdy": 1,
    "day before yesterday": 2, "the day before yesterday": 2, "a week ago": 7,
    "one week ago": 7, "a day ago": 1,
    # Afrikaans
    "vandag": 0, "vanoggend": 0, "vanmore": 0, "vanmiddag": 0, "vanaand": 0, "netnou": 0,
    "gister": 1, "gisteraand": 1, "gisteroggend": 1, "gistermiddag": 1, "gisternag": 1,
    "laasnag": 1, "laas nag": 1, "gister aand": 1, "eergister": 2, "n week gelede": 7,
    "n dag gelede": 1,
    # isiZulu ("kuthangi" and "ngayizolo": the day before yesterday)
    "namuhla": 0, "namhla": 0, "namhlanje": 0, "ekuseni": 0, "namuhla ekuseni": 0,
    "namhlanje ekuseni": 0, "izolo": 1, "izolo ebusuku": 1, "izolo ekuseni": 1,
    "izolo ntambama": 1, "kuthangi": 2, "ngayizolo": 2,
    # isiXhosa ("phezolo": last night; "ngale ntsasa": this morning)
    "ngale ntsasa": 0, "phezolo": 1,
}  # fmt: skip

_WEEKDAYS: dict[str, int] = {}
for _i, _names in enumerate(
    (
        ("monday", "mon", "maandag", "ma"),
        ("tuesday", "tue", "tues", "dinsdag", "di"),
        ("wednesday", "wed", "woensdag", "wo"),
        ("thursday", "thu", "thur", "thurs", "donderdag", "do"),
        ("friday", "fri", "vrydag", "vrijdag", "vr"),
        ("saturday", "sat", "saterdag", "sa"),
        ("sunday", "sun", "sondag", "so"),
    )
):
    for _name in _names:
        # Two-letter Afrikaans abbreviations are too easily something else on their own.
        if len(_name) > 2:
            _WEEKDAYS[_name] = _i
# isiZulu (uMsombuluko, ngoLwesibili, ngeSonto) and isiXhosa (uMvulo, ngoLwesibini, ngeCawa)
# with the noun prefix "u"/"i" and the "on" prefix "ngo"/"nge".
for _i, _stems in enumerate(
    (
        ("msombuluko", "mvulo"),
        ("lwesibili", "lwesibini"),
        ("lwesithathu",),
        ("lwesine",),
        ("lwesihlanu",),
        ("mgqibelo",),
    )
):
    for _stem in _stems:
        for _prefix in ("", "u", "ngo", "ngou"):
            _WEEKDAYS[_prefix + _stem] = _i
for _stem in ("sonto", "cawa", "cawe"):
    for _prefix in ("", "i", "nge", "ngei"):
        _WEEKDAYS[_prefix + _stem] = 6

_MONTHS: dict[str, int] = {}
_MONTH_BASE_NAMES: list[str] = []
for _i, _names in enumerate(
    (
        ("january", "jan", "januarie", "januwari", "janyuwari", "masingana", "mqungu"),
        ("february", "feb", "februarie", "februwari", "febhuwari", "nhlolanja", "mdumba"),
        ("march", "mar", "maart", "mrt", "mashi", "matshi", "ndasa", "kwindla"),
        (
            "april",
            "apr",
            "ephreli",
            "apreli",
            "epreli",
            "mbasa",
            "tshazimpuzi",
            "tshaziimpuzi",
            "tshazimpunzi",
        ),
        ("may", "mei", "meyi", "nhlaba", "canzibe"),
        ("june", "jun", "junie", "juni", "nhlangulana", "silimela"),
        ("july", "jul", "julie", "julayi", "ntulikazi", "khala", "ntlaba"),
        ("august", "aug", "augustus", "agasti", "ncwaba", "thupha"),
        ("september", "sep", "sept", "septhemba", "septemba", "mandulo", "msintsi"),
        ("october", "oct", "oktober", "okt", "okthoba", "oktobha", "mfumfu", "dwarha"),
        ("november", "nov", "novemba", "lwezi", "nkanga"),
        ("december", "dec", "desember", "des", "disemba", "zibandlela", "mnga"),
    ),
    start=1,
):
    for _name in _names:
        _MONTHS[_name] = _i
        if len(_name) > 4:
            _MONTH_BASE_NAMES.append(_name)
            # isiZulu/isiXhosa: uDisemba, kuDisemba, ngoDisemba, eyoMnga, eyeKhala...
            for _prefix in ("u", "ku", "ka", "ngo", "kwi"):
                _MONTHS.setdefault(_prefix + _name, _i)
for _name, _i in (("mnga", 12), ("mqungu", 1), ("mdumba", 2), ("msintsi", 9)):
    _MONTHS["eyo" + _name] = _i
# isiXhosa month names carry "eyo"/"eye" ("of the month of"); both spellings are seen.
for _name, _i in (("kwindla", 3), ("canzibe", 5), ("silimela", 6), ("khala", 7), ("ntlaba", 7), ("thupha", 8), ("dwarha", 10), ("nkanga", 11)):  # fmt: skip
    _MONTHS["eye" + _name] = _i
    _MONTHS["eyo" + _name] = _i
# Only the bare names are compared for typos: prefixed forms would add time and no matches.
_MONTH_NAMES = tuple(_MONTH_BASE_NAMES)

# Words that carry no date information around the parts that do.
_FILLER = frozenset(
    {
        "on", "the", "of", "last", "past", "this", "in", "at", "around", "about", "it", "was",
        "since", "op", "die", "van", "verlede", "laas", "om", "gelede", "ago", "mhla", "ngomhla",
        "zi", "ziyi", "we", "wesi", "ngo", "nge", "ku", "ka", "u", "i", "e", "odlule",
        "edlule", "odlulileyo", "edlulileyo", "ophelileyo", "eliphelileyo", "ngolwesi",
    }
)  # fmt: skip
# "last Monday" on a Monday means a week ago, not today.
_LAST = frozenset({"last", "past", "verlede", "laas", "odlule", "edlule", "odlulileyo", "edlulileyo", "ophelileyo", "eliphelileyo"})  # fmt: skip
_DAYS_WORDS = frozenset({"days", "day", "dae", "dag"})
_WEEKS_WORDS = frozenset({"weeks", "week", "weke"})
_AGO_WORDS = frozenset({"ago", "gelede"})

_ORDINAL = re.compile(r"^(\d{1,2})(?:st|nd|rd|th|de|ste|e)$")
# Digit dates keep their separators: "03/12/2026", "2026-12-03", "3.12.2026", "3/12".
_NUMERIC = re.compile(r"^(\d{1,4})[-/. ](\d{1,2})(?:[-/. ](\d{2,4}))?\.?$")


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _without_year(day: int, month: int, today: date) -> date | None:
    """The most recent day/month not after today (29 February looks back to a leap year)."""
    if not 1 <= month <= 12 or not 1 <= day <= 31:
        return None
    for year in range(today.year, today.year - 8, -1):
        found = _safe_date(year, month, day)
        if found is not None and found <= today:
            return found
    return None


def _year(text: str) -> int | None:
    value = int(text)
    if len(text) == 2:
        return 2000 + value
    if len(text) == 4 and 1900 <= value <= 2100:
        return value
    return None


def _numeric(cleaned: str, today: date) -> date | None:
    match = _NUMERIC.match(cleaned)
    if match is None:
        return None
    first, second, third = match.groups()
    if third is None:
        if len(first) > 2:
            return None
        return _without_year(int(first), int(second), today)
    if len(first) == 4:
        # ISO order: year, month, day.
        year = _year(first)
        if year is None or len(third) > 2:
            return None
        return _safe_date(year, int(second), int(third))
    if len(first) > 2:
        return None
    year = _year(third)
    if year is None:
        return None
    return _safe_date(year, int(second), int(first))


@lru_cache(maxsize=1024)
def _month(word: str) -> int | None:
    month = _MONTHS.get(word)
    if month is not None or len(word) < 5:
        return month
    # Typos in longer month names: "Decmber", "Febuary", "Desmber".
    found = process.extractOne(word, _MONTH_NAMES, scorer=fuzz.ratio, score_cutoff=85)
    return _MONTHS[found[0]] if found is not None else None


def _day_number(word: str) -> int | None:
    if word.isdecimal() and len(word) <= 2:
        return int(word)
    match = _ORDINAL.match(word)
    if match is not None:
        return int(match.group(1))
    return None


def _weekday(index: int, today: date, last: bool) -> date:
    back = (today.weekday() - index) % 7
    if back == 0 and last:
        back = 7
    return today - timedelta(days=back)


def _words(words: list[str], today: date) -> date | None:
    day = month = year = weekday = None
    last = False
    count = None
    unit = None
    for word in words:
        if word in _FILLER:
            last = last or word in _LAST
            continue
        if word in _DAYS_WORDS or word in _WEEKS_WORDS:
            unit = 7 if word in _WEEKS_WORDS else 1
            continue
        if word.isdecimal() and len(word) == 4:
            if year is not None:
                return None
            year = _year(word)
            if year is None:
                return None
            continue
        number = _day_number(word)
        if number is not None:
            if day is not None:
                return None
            day = number
            continue
        spelled = NUMBER_WORDS.get(word)
        if spelled is not None:
            if count is not None:
                return None
            count = spelled
            continue
        found_weekday = _WEEKDAYS.get(word)
        if found_weekday is not None:
            if weekday is not None:
                return None
            weekday = found_weekday
            continue
        found_month = _month(word)
        if found_month is not None:
            if month is not None:
                return None
            month = found_month
            continue
        return None
    if unit is not None:
        # "3 days ago", "twee dae gelede", "a week ago".
        amount = day if day is not None else count
        if amount is None or month is not None or weekday is not None or year is not None:
            return None
        if not any(w in _AGO_WORDS for w in words):
            return None
        return today - timedelta(days=amount * unit)
    if month is not None:
        if day is None:
            day = count
        # A weekday given with the date ("Monday 3 December") adds nothing: the date decides.
        if day is None:
            return None
        if year is not None:
            return _safe_date(year, month, day)
        return _without_year(day, month, today)
    if weekday is not None and day is None and year is None and count is None:
        return _weekday(weekday, today, last)
    return None


def parse_date(text: str, today: date) -> date | None:
    """The date a resident means, or None.

    Words in every supported locale are understood, whatever the resident's language, because
    residents mix languages; ``today`` is the resident's local date, so the caller decides the
    time zone.

    Example::

        parse_date("izolo", date(2026, 3, 5))   # date(2026, 3, 4)
    """
    cleaned = clean_text(text, 100)
    if not cleaned:
        return None
    numeric = _numeric(cleaned, today)
    if numeric is not None:
        return numeric
    folded = fold(cleaned)
    if not folded:
        return None
    offset = _RELATIVE.get(folded)
    if offset is not None:
        return today - timedelta(days=offset)
    words = folded.split()
    if len(words) > 8:
        return None
    if words[0] in _RELATIVE and len(words) > 1:
        # "yesterday at 5", "vandag om 3": the day is what matters.
        return today - timedelta(days=_RELATIVE[words[0]]) if _only_times(words[1:]) else None
    return _words(words, today)


_TIME_WORDS = frozenset({"at", "om", "around", "about", "am", "pm", "morning", "evening", "afternoon", "night", "oggend", "middag", "aand", "nag", "ebusuku", "ekuseni", "ntambama", "ngo", "ngu"})  # fmt: skip


def _only_times(words: list[str]) -> bool:
    return all(w in _TIME_WORDS or w.isdecimal() or w.rstrip("hapm").isdecimal() for w in words)
