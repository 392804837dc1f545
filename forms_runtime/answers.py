"""Turning what a resident sent into the answer a step needs, or saying what to do instead.

Each step type has one reader here; the readers use ``forms_runtime.understanding`` for the
language work (typos, yes/no words, dates, phone numbers) and the gazetteer for places. Messages
follow GOV.UK style: they say what to do, never "invalid", never blame the resident.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from babel.dates import format_date
from babel.numbers import format_decimal

from forms_runtime.effects import Inbound, OptionView
from forms_runtime.gazetteer import Gazetteer, Place, placement
from forms_runtime.i18n import LOCALES, N_, catalog, tr
from forms_runtime.model import Step, StepType
from forms_runtime.understanding.choices import ChoiceOption, match_choice, match_choices
from forms_runtime.understanding.contact import normalise_phone, parse_email, parse_name
from forms_runtime.understanding.dates import parse_date
from forms_runtime.understanding.numbers import parse_number
from forms_runtime.understanding.text import clean_text, small_number
from forms_runtime.understanding.yes_no import parse_yes_no

__all__ = [
    "MAX_PHOTO_BYTES",
    "PHOTO_TOO_BIG",
    "NeedsPick",
    "NotUnderstood",
    "Outcome",
    "Understood",
    "display",
    "option_views",
    "parse_yes_no",
    "understand",
]

# Photos a crew's browser can open (HEIC is not, in most); anything else is answered with
# what to send instead. The channels and the media proxy check the same list.
PHOTO_TYPES = frozenset({"image/jpeg", "image/png", "image/webp"})
# The one photo limit: the engine, the channels' screening and the media proxy all use it, so a
# photo the resident was told is fine is never refused later. A phone photo is a few MB.
MAX_PHOTO_BYTES = 10 * 1024 * 1024
# What a resident is told when a photo is over MAX_PHOTO_BYTES (keep the two in step).
PHOTO_TOO_BIG = N_("Send a photo smaller than 10 MB.")
# A resident may type at most this much into one answer; the rest is cut, never stored.
MAX_TEXT = 4000


@dataclass(frozen=True, slots=True)
class Understood:
    value: Any


@dataclass(frozen=True, slots=True)
class NeedsPick:
    """Several places fit: ask the resident to pick one. ``pending`` goes into the state."""

    pending: dict[str, Any]

    @property
    def names(self) -> list[str]:
        return list(self.pending.get("names", []))


@dataclass(frozen=True, slots=True)
class NotUnderstood:
    message: str
    # Counts towards "we could not find that place twice: take it as an address".
    count_miss: bool = False


Outcome = Understood | NeedsPick | NotUnderstood


def understand(
    s: Step,
    inbound: Inbound,
    *,
    locale: str,
    pending: dict[str, Any] | None,
    misses: int,
    today: date,
    gazetteer: Gazetteer,
) -> Outcome:
    if s.type is StepType.LOCATION:
        return _location(s, inbound, locale, pending, misses, gazetteer)
    if s.type is StepType.PHOTO:
        return _photo(inbound, locale)
    if s.type in (StepType.CHOICE, StepType.MULTI_CHOICE, StepType.YES_NO) and inbound.option_id:
        return _tapped(s, inbound.option_id, locale)
    if inbound.text is None or not inbound.text.strip():
        return NotUnderstood(_what_to_send(s, locale))
    reader = _READERS[s.type]
    return reader(s, inbound.text, locale, today)


# --- readers, one per step type ---------------------------------------------------------------


def _text(s: Step, raw: str, locale: str, today: date) -> Outcome:
    text = clean_text(raw, MAX_TEXT, multiline=s.type is StepType.LONG_TEXT)
    v = s.validation
    if not text:
        return NotUnderstood(_what_to_send(s, locale))
    if v.min_length is not None and len(text) < v.min_length:
        return NotUnderstood(
            tr(locale, N_("Enter at least {count} characters."), count=v.min_length)
        )
    if v.max_length is not None and len(text) > v.max_length:
        return NotUnderstood(
            tr(locale, N_("Enter {count} characters or fewer."), count=v.max_length)
        )
    if v.pattern is not None and not _pattern(v.pattern).fullmatch(text):
        message = v.pattern_message or N_("Enter the answer in the format shown in the question.")
        return NotUnderstood(tr(locale, message))
    return Understood(text)


def _number(s: Step, raw: str, locale: str, today: date) -> Outcome:
    value = parse_number(raw, locale)
    lo, hi = s.validation.min, s.validation.max
    if value is None or (lo is not None and value < lo) or (hi is not None and value > hi):
        if lo is not None and hi is not None:
            msg = tr(
                locale,
                N_("Enter a number between {min} and {max}."),
                min=_num(lo, locale),
                max=_num(hi, locale),
            )
        elif lo is not None:
            msg = tr(locale, N_("Enter a number of {min} or more."), min=_num(lo, locale))
        elif hi is not None:
            msg = tr(locale, N_("Enter a number of {max} or less."), max=_num(hi, locale))
        else:
            msg = tr(locale, N_("Enter a number, like 3."))
        return NotUnderstood(msg)
    return Understood(int(value) if float(value).is_integer() else value)


def _yes_no(s: Step, raw: str, locale: str, today: date) -> Outcome:
    value = parse_yes_no(raw)
    if value is None:
        # Channels number yes/no as 1 and 2, so a bare digit is a tap on SMS.
        stripped = raw.strip()
        if stripped in ("1", "2"):
            return Understood(stripped == "1")
        return NotUnderstood(tr(locale, N_("Answer yes or no.")))
    return Understood(value)


def _choice(s: Step, raw: str, locale: str, today: date) -> Outcome:
    match = match_choice(raw, _choice_options(s))
    if match.option_id is not None:
        return Understood(match.option_id)
    labels = _labels(s, locale)
    described = next((o.id for o in s.options if o.self_described), None)
    # The resident's own words, which are not kept: only that they described it. Not a wrong
    # number, a stray key, a yes or no, or a close miss of two options: those are asked again.
    if (
        described is not None
        and not match.candidates
        and sum(c.isalpha() for c in raw) >= 3
        and parse_yes_no(raw) is None
    ):
        return Understood(described)
    if match.candidates:
        names = [labels[c] for c in match.candidates if c in labels][:3]
        msg = tr(
            locale,
            N_("Choose one option: {options}. Reply with its number."),
            options=", ".join(names),
        )
        return NotUnderstood(msg)
    return NotUnderstood(tr(locale, N_("Choose one of the options. Reply with its number.")))


def _multi_choice(s: Step, raw: str, locale: str, today: date) -> Outcome:
    ids, unknown = match_choices(raw, _choice_options(s))
    if not ids or unknown:
        return NotUnderstood(tr(locale, N_("Choose one or more options by number, like 1, 3.")))
    return Understood(list(ids))


def _date(s: Step, raw: str, locale: str, today: date) -> Outcome:
    value = parse_date(raw, today)
    if value is None:
        return NotUnderstood(tr(locale, N_("Enter a date, like 3 December or 03/12/2026.")))
    v = s.validation
    latest = today + timedelta(days=v.max_days_future or 0)
    if value > latest:
        return NotUnderstood(tr(locale, N_("Enter a date that is today or in the past.")))
    if v.max_days_past is not None and value < today - timedelta(days=v.max_days_past):
        earliest = today - timedelta(days=v.max_days_past)
        return NotUnderstood(
            tr(
                locale,
                N_("Enter a date after {date}."),
                date=_long_date(earliest, locale),
            )
        )
    return Understood(value.isoformat())


def _phone(s: Step, raw: str, locale: str, today: date) -> Outcome:
    value = normalise_phone(raw)
    if value is None:
        return NotUnderstood(tr(locale, N_("Enter a phone number, like 083 123 4567.")))
    return Understood(value)


def _email(s: Step, raw: str, locale: str, today: date) -> Outcome:
    value = parse_email(raw)
    if value is None:
        return NotUnderstood(tr(locale, N_("Enter an email address, like name@example.com.")))
    return Understood(value)


def _name(s: Step, raw: str, locale: str, today: date) -> Outcome:
    value = parse_name(raw)
    if value is None:
        return NotUnderstood(tr(locale, N_("Enter your name using letters.")))
    return Understood(value)


_Reader = Callable[[Step, str, str, date], Outcome]
_READERS: dict[StepType, _Reader] = {
    StepType.TEXT: _text,
    StepType.LONG_TEXT: _text,
    StepType.NUMBER: _number,
    StepType.YES_NO: _yes_no,
    StepType.CHOICE: _choice,
    StepType.MULTI_CHOICE: _multi_choice,
    StepType.DATE: _date,
    StepType.PHONE: _phone,
    StepType.EMAIL: _email,
    StepType.NAME: _name,
}


def _tapped(s: Step, option_id: str, locale: str) -> Outcome:
    if s.type is StepType.YES_NO:
        if option_id in ("yes", "no"):
            return Understood(option_id == "yes")
        return NotUnderstood(tr(locale, N_("Answer yes or no.")))
    ids = [o.id for o in s.options]
    chosen = [part for part in option_id.split(",") if part]
    if not chosen or any(c not in ids for c in chosen):
        return NotUnderstood(tr(locale, N_("Choose one of the options. Reply with its number.")))
    if s.type is StepType.MULTI_CHOICE:
        return Understood([i for i in ids if i in chosen])
    return (
        Understood(chosen[0])
        if len(chosen) == 1
        else NotUnderstood(tr(locale, N_("Choose one of the options. Reply with its number.")))
    )


def _photo(inbound: Inbound, locale: str) -> Outcome:
    media = inbound.media
    if media is None:
        return NotUnderstood(tr(locale, N_("Send a photo.")))
    if media.content_type.lower() not in PHOTO_TYPES:
        return NotUnderstood(tr(locale, N_("Send a photo in JPEG or PNG format.")))
    if media.size is not None and media.size > MAX_PHOTO_BYTES:
        return NotUnderstood(tr(locale, PHOTO_TOO_BIG))
    return Understood({"url": media.url, "content_type": media.content_type, "size": media.size})


def _location(
    s: Step,
    inbound: Inbound,
    locale: str,
    pending: dict[str, Any] | None,
    misses: int,
    gazetteer: Gazetteer,
) -> Outcome:
    if inbound.location is not None:
        lat, lon = inbound.location.lat, inbound.location.lon
        placed = placement.of_point(gazetteer, lat, lon)
        if not placed.known:
            return NotUnderstood(
                tr(
                    locale,
                    N_(
                        "That pin is outside {city}. Send a pin in {city}, or type the street and suburb."
                    ),
                    city=gazetteer.city,
                )
            )
        return Understood(
            {
                "lat": round(lat, 6),
                "lon": round(lon, 6),
                **_placement_fields(placed),
                "place": placed.settlement,
                "source": "gps",
            }
        )
    if pending and pending.get("kind") == "detail":
        return _street_in(pending, inbound, locale, gazetteer)
    if pending and pending.get("names"):
        picked = _pick(pending, inbound)
        if picked == "none":
            return NotUnderstood(_landmark_message(locale), count_miss=True)
        if picked is not None:
            place = gazetteer.get(picked)
            if place is not None:
                return _placed(gazetteer, place, str(pending.get("text", "")))
    raw = inbound.text or ""
    text = clean_text(raw, 300)
    if not text:
        return NotUnderstood(_landmark_message(locale))
    match = gazetteer.match_place(text)
    if match.best is not None:
        return _placed(gazetteer, match.best, text)
    if match.candidates:
        return NeedsPick(
            {"kind": "place", "names": [p.name for p in match.candidates], "text": text}
        )
    if misses >= 1 and len(text) >= 5:
        # Second miss: a crew can still use a street address, so keep it rather than loop.
        return Understood(_address_answer(text))
    return NotUnderstood(_landmark_message(locale), count_miss=True)


def _placed(gazetteer: Gazetteer, place: Place, text: str) -> Outcome:
    """A named place is enough for a settlement; a suburb or town also needs its street."""
    if place.kind == "informal_settlement":
        return Understood(_place_answer(gazetteer, place, text))
    if placement.says_where_in(text, place):
        return Understood(_place_answer(gazetteer, place, text, street=True))
    return NeedsPick({"kind": "detail", "place": place.name})


def _street_in(
    pending: dict[str, Any], inbound: Inbound, locale: str, gazetteer: Gazetteer
) -> Outcome:
    place = gazetteer.get(str(pending.get("place", "")))
    text = clean_text(inbound.text or "", 300)
    if place is None:
        return (
            Understood(_address_answer(text)) if text else NotUnderstood(_landmark_message(locale))
        )
    if not text:
        return NotUnderstood(_landmark_message(locale))
    # A settlement named inside the suburb pins it down better than the suburb itself.
    inner = gazetteer.match_place(text).best
    if inner is not None and inner.kind == "informal_settlement":
        return Understood(_place_answer(gazetteer, inner, f"{text}, {place.name}"))
    return Understood(_place_answer(gazetteer, place, f"{text}, {place.name}", street=True))


def _address_answer(text: str) -> dict[str, Any]:
    return {
        "lat": None,
        "lon": None,
        # Text that names no known place: stored as unknown (how precise it is, nobody knows).
        **_placement_fields(placement.UNKNOWN),
        "place": None,
        "address": text,
        "source": "address",
        "approximate": False,
    }


def _pick(pending: dict[str, Any], inbound: Inbound) -> str | None:
    names: list[str] = list(pending.get("names", []))
    option = inbound.option_id
    if option == "pick:none":
        return "none"
    picked = small_number(option[5:]) if option and option.startswith("pick:") else None
    if picked is not None:
        return names[picked - 1] if 1 <= picked <= len(names) else None
    text = (inbound.text or "").strip()
    i = small_number(text)
    if i is not None:
        if i == len(names) + 1:
            return "none"
        return names[i - 1] if 1 <= i <= len(names) else None
    match = match_choice(text, tuple(ChoiceOption(id=n, labels=(n,)) for n in names))
    return match.option_id


def _place_answer(
    gazetteer: Gazetteer, place: Place, text: str, *, street: bool = False
) -> dict[str, Any]:
    """A typed place: its representative point, wards, suburb and area type, and the text as
    typed.

    ``street`` when the text says where in a suburb ("12 Main Road, Sea Point"): the point is
    still the suburb's, but a crew can find the street, so the answer is that precise.
    """
    return {
        "lat": place.lat,
        "lon": place.lon,
        "address": text or place.name,
        "place": place.name,
        **_placement_fields(placement.of_place(gazetteer, place, street=street)),
        "source": "place",
        "approximate": place.approximate,
    }


def _placement_fields(placed: placement.Placement) -> dict[str, Any]:
    """The place fields every location answer carries (``submissions`` stores them)."""
    return {
        "ward": placed.ward,
        "wards": list(placed.wards),
        "suburb": placed.suburb,
        "area_type": placed.area_type,
        "precision": placed.precision,
    }


def _landmark_message(locale: str) -> str:
    return tr(
        locale,
        N_(
            "We could not find that place. Send a location pin, or type a nearby landmark and the suburb."
        ),
    )


def _what_to_send(s: Step, locale: str) -> str:
    if s.type in (StepType.CHOICE, StepType.MULTI_CHOICE):
        return tr(locale, N_("Choose one of the options. Reply with its number."))
    if s.type is StepType.YES_NO:
        return tr(locale, N_("Answer yes or no."))
    return tr(locale, N_("Type your answer."))


# --- options and display ----------------------------------------------------------------------

_OPTION_CACHE: dict[int, tuple[Step, tuple[ChoiceOption, ...]]] = {}


def _choice_options(s: Step) -> tuple[ChoiceOption, ...]:
    """Every way to name each option, in every locale; built once per step."""
    cached = _OPTION_CACHE.get(id(s))
    if cached is not None and cached[0] is s:
        return cached[1]
    built = []
    for o in s.options:
        labels: list[str] = [o.label]
        for loc in LOCALES:
            labels.append(tr(loc, o.label))
            labels.extend(tr(loc, syn) for syn in o.synonyms)
        built.append(ChoiceOption(id=o.id, labels=tuple(dict.fromkeys(labels))))
    options = tuple(built)
    # Keep the step alive with its entry so the id() key can never be reused by another object.
    _OPTION_CACHE[id(s)] = (s, options)
    return options


def _labels(s: Step, locale: str) -> dict[str, str]:
    return {o.id: tr(locale, o.label) for o in s.options}


# Every question with options shows them, translated, as frozen OptionViews that are costly to
# build: built once per step and locale, and checked against the catalog they were translated
# with. Keyed by id() like _OPTION_CACHE, each entry keeping its step alive; bounded.
_VIEW_CACHE: dict[tuple[int, str], tuple[Step, Mapping[str, str], tuple[OptionView, ...]]] = {}
_VIEW_CACHE_LIMIT = 4096


def option_views(s: Step, locale: str) -> tuple[OptionView, ...]:
    if s.type not in (StepType.YES_NO, StepType.CHOICE, StepType.MULTI_CHOICE):
        return ()
    translations = catalog(locale)
    cached = _VIEW_CACHE.get((id(s), locale))
    if cached is not None and cached[0] is s and cached[1] is translations:
        return cached[2]
    views = _option_views(s, locale)
    if len(_VIEW_CACHE) >= _VIEW_CACHE_LIMIT:
        _VIEW_CACHE.clear()
    _VIEW_CACHE[(id(s), locale)] = (s, translations, views)
    return views


def _option_views(s: Step, locale: str) -> tuple[OptionView, ...]:
    if s.type is StepType.YES_NO:
        return (OptionView("yes", tr(locale, N_("Yes"))), OptionView("no", tr(locale, N_("No"))))
    return tuple(OptionView(o.id, tr(locale, o.label)) for o in s.options)


def display(s: Step, value: Any, locale: str) -> str:
    """An answer as the review screen shows it, in the resident's language."""
    if value is None:
        return tr(locale, N_("Not answered"))
    if s.type is StepType.YES_NO:
        return tr(locale, N_("Yes")) if value else tr(locale, N_("No"))
    if s.type is StepType.CHOICE:
        return _labels(s, locale).get(str(value), str(value))
    if s.type is StepType.MULTI_CHOICE:
        labels = _labels(s, locale)
        return ", ".join(labels.get(str(v), str(v)) for v in value)
    if s.type is StepType.DATE:
        return _long_date(date.fromisoformat(str(value)), locale)
    if s.type is StepType.NUMBER:
        return _num(value, locale)
    if s.type is StepType.PHOTO:
        return tr(locale, N_("Photo attached"))
    if s.type is StepType.LOCATION and isinstance(value, dict):
        return _display_location(value, locale)
    return str(value)


def _display_location(value: dict[str, Any], locale: str) -> str:
    name = value.get("address") or value.get("place")
    ward = value.get("ward")
    if not name and value.get("lat") is not None:
        name = tr(locale, N_("Location pin"))
    if ward:
        return tr(locale, N_("{place} (ward {ward})"), place=name, ward=ward)
    return str(name)


# Babel formats a date or a number in 10-25 us, and review screens and re-asks show the same few
# values over and over: remembered, per locale (typed, so 1 and 1.0 stay apart).
@lru_cache(maxsize=4096, typed=True)
def _num(value: float | int, locale: str) -> str:
    return str(format_decimal(value, locale=locale))


@lru_cache(maxsize=4096)
def _long_date(day: date, locale: str) -> str:
    return str(format_date(day, "d MMMM yyyy", locale=locale))


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _pattern(source: str) -> re.Pattern[str]:
    compiled = _PATTERNS.get(source)
    if compiled is None:
        compiled = _PATTERNS[source] = re.compile(source)
    return compiled
