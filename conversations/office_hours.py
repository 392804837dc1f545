"""Office hours: when staff answer, day by day, and the public holidays when they do not.

``CITYBOT_OFFICE_HOURS`` is a week schedule, rules separated by ``;``, each a set of days and one
or more ``HH:MM-HH:MM`` periods; ``CITYBOT_PUBLIC_HOLIDAYS`` lists ISO dates that are closed all
day; the times are local to ``CITYBOT_TIMEZONE``::

    mon-fri 08:00-16:30; sat 09:00-12:00
    mon,wed,fri 08:00-12:00, 13:00-16:00
    weekdays 07:30-17:00; weekends 09:00-13:00
    Monday to Friday, 08:00 to 16:30          (the old plain-text default reads the same)
    always                                    (staff answer at any hour)

A resident who asks for a person while the office is closed is told when someone will be back
(the next opening, in their language) and that their message stays in the queue; the unclaimed
timeout counts only open time (``open_since``).

Example::

    hours = OfficeHours.parse("mon-fri 08:00-16:30", holidays="2026-12-25")
    hours.is_open(datetime(2026, 12, 25, 9, tzinfo=UTC))          # False: a public holiday
    hours.next_opening(datetime(2026, 12, 25, 9, tzinfo=UTC))     # 2026-12-28 06:00 UTC
    hours.when_back(..., "zu")                                    # 'UMsombuluko 28 Disemba, 08:00'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from babel.dates import format_datetime, get_day_names

__all__ = ["DEFAULT_OFFICE_HOURS", "OfficeHours"]

DEFAULT_OFFICE_HOURS = "mon-fri 08:00-16:30"

# Monday is 0, as ``date.weekday()``; full names and common short forms, in English.
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_DAY_WORDS = {
    **{d: i for i, d in enumerate(_DAYS)},
    **{
        n: i
        for i, n in enumerate(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        )
    },
    "tues": 1,
    "weds": 2,
    "thur": 3,
    "thurs": 3,
}
# Words that stand for several days.
_DAY_SETS = {
    "weekdays": range(5),
    "weekends": range(5, 7),
    "weekend": range(5, 7),
    "daily": range(7),
    "every day": range(7),
}
_TIME = r"\d{1,2}[:h]\d{2}"
_PERIOD = re.compile(rf"({_TIME})\s*(?:-|to|until)\s*({_TIME})")
# A week is searched at most this far ahead for the next opening (holidays included).
_SEARCH_DAYS = 400

Period = tuple[time, time]


@dataclass(frozen=True, slots=True)
class OfficeHours:
    """Open periods for each day of the week (Monday first), closed holidays, a time zone."""

    week: tuple[tuple[Period, ...], ...]
    holidays: frozenset[date] = frozenset()
    zone: str = "Africa/Johannesburg"
    always: bool = False

    @classmethod
    def parse(
        cls, text: str, *, holidays: str = "", zone: str = "Africa/Johannesburg"
    ) -> OfficeHours:
        """Read a schedule; ``ValueError`` says what is wrong, with an example."""
        ZoneInfo(zone)  # an unknown zone fails here, not at the first resident
        days = _holidays(holidays)
        spec = " ".join(text.lower().split())
        if spec in ("always", "24/7", "24x7"):
            return cls(week=((),) * 7, holidays=days, zone=zone, always=True)
        week: list[list[Period]] = [[] for _ in range(7)]
        for rule in filter(None, (r.strip() for r in spec.split(";"))):
            first = _PERIOD.search(rule)
            if first is None:
                raise ValueError(f"{rule!r} has no opening times like 08:00-16:30")
            chosen = _days(rule[: first.start()].strip(" ,:"))
            periods = [_period(m.group(1), m.group(2)) for m in _PERIOD.finditer(rule)]
            leftover = _PERIOD.sub("", rule[first.start() :]).strip(" ,and")
            if leftover:
                raise ValueError(f"cannot read {leftover!r} in {rule!r}")
            for day in chosen:
                week[day].extend(periods)
        if not any(week):
            raise ValueError("the schedule has no opening times")
        return cls(week=tuple(tuple(sorted(periods)) for periods in week), holidays=days, zone=zone)

    # --- when ---

    def _local(self, now: datetime) -> datetime:
        return now.astimezone(ZoneInfo(self.zone))

    def _periods_on(self, day: date) -> tuple[Period, ...]:
        return () if day in self.holidays else self.week[day.weekday()]

    def open_since(self, now: datetime) -> datetime | None:
        """When the current open period began (UTC-aware like ``now``), None while closed."""
        local = self._local(now)
        if self.always:
            if local.date() in self.holidays:
                return None
            # Open since the end of the last holiday (or for as long as is worth looking back).
            day = local.date()
            for _ in range(_SEARCH_DAYS):
                if day - timedelta(days=1) in self.holidays:
                    break
                day -= timedelta(days=1)
            return datetime.combine(day, time(0), local.tzinfo).astimezone(now.tzinfo)
        for start, end in self._periods_on(local.date()):
            if start <= local.time() < end:
                return datetime.combine(local.date(), start, local.tzinfo).astimezone(now.tzinfo)
        return None

    def is_open(self, now: datetime) -> bool:
        return self.open_since(now) is not None

    def next_opening(self, now: datetime) -> datetime | None:
        """The start of the next open period after ``now`` (None if there is none in a year)."""
        local = self._local(now)
        zone = local.tzinfo
        for ahead in range(_SEARCH_DAYS):
            day = local.date() + timedelta(days=ahead)
            if self.always:
                if day not in self.holidays and ahead > 0:
                    return datetime.combine(day, time(0), zone).astimezone(now.tzinfo)
                continue
            for start, _ in self._periods_on(day):
                opening = datetime.combine(day, start, zone)
                if opening > local:
                    return opening.astimezone(now.tzinfo)
        return None

    # --- in words ---

    def when_back(self, now: datetime, locale: str) -> str | None:
        """The next opening as a resident reads it in their language ("Monday 7 December,
        08:00"), from CLDR's names of days and months; None if there is none."""
        opening = self.next_opening(now)
        if opening is None:
            return None
        return format_datetime(
            self._local(opening), "EEEE d MMMM, HH:mm", tzinfo=ZoneInfo(self.zone), locale=locale
        )

    def describe(self, locale: str = "en") -> str:
        """The week in short words, days in the resident's language: "Mon-Fri 08:00-16:30"."""
        if self.always:
            return "24/7"
        names = get_day_names("abbreviated", locale=locale)
        parts: list[str] = []
        day = 0
        while day < 7:
            periods = self.week[day]
            last = day
            while last + 1 < 7 and self.week[last + 1] == periods:
                last += 1
            if periods:
                span = names[day] if last == day else f"{names[day]}-{names[last]}"
                times = ", ".join(f"{s:%H:%M}-{e:%H:%M}" for s, e in periods)
                parts.append(f"{span} {times}")
            day = last + 1
        return "; ".join(parts)


def _days(words: str) -> list[int]:
    """``mon-fri``, ``monday to friday``, ``sat,sun``, ``sat and sun`` -> weekday numbers."""
    if not words:
        raise ValueError("a rule starts with its days, e.g. mon-fri 08:00-16:30")
    found: list[int] = []
    for part in re.split(r"\s*(?:,|\band\b|&)\s*", words):
        if not part:
            continue
        if part in _DAY_SETS:
            found += _DAY_SETS[part]
            continue
        ends = re.split(r"\s*(?:-|\bto\b)\s*", part)
        try:
            numbers = [_DAY_WORDS[e.strip(". ")] for e in ends]
        except KeyError as exc:
            raise ValueError(f"{exc.args[0]!r} is not a day (mon, tue, ... sun)") from None
        if len(numbers) == 1:
            found.append(numbers[0])
        elif len(numbers) == 2:
            first, last = numbers
            found += [(first + i) % 7 for i in range((last - first) % 7 + 1)]
        else:
            raise ValueError(f"cannot read the days {part!r}")
    return found


def _period(start: str, end: str) -> Period:
    opening, closing = _clock(start), _clock(end)
    if closing <= opening:
        raise ValueError(f"{start}-{end} closes before it opens (periods cannot span midnight)")
    return opening, closing


def _clock(text: str) -> time:
    hours, minutes = re.split("[:h]", text)
    try:
        return time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"{text!r} is not a time of day") from None


def _holidays(text: str) -> frozenset[date]:
    days: set[date] = set()
    for word in filter(None, re.split(r"[\s,;]+", text.strip())):
        try:
            days.add(date.fromisoformat(word))
        except ValueError:
            raise ValueError(f"{word!r} is not an ISO date like 2026-12-25") from None
    return frozenset(days)
