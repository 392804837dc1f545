"""Office hours: a week schedule with public holidays in the city's time zone, the old plain
text still read, and the next opening in each resident's language."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conversations.office_hours import DEFAULT_OFFICE_HOURS, OfficeHours

# Times in UTC; Johannesburg is UTC+2 all year (no daylight saving).
FRIDAY_1700_LOCAL = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)
HOURS = OfficeHours.parse(
    "mon-fri 08:00-16:30; sat 09:00-12:00", holidays="2026-12-16, 2026-12-25,2026-12-26"
)


def test_open_and_closed_by_the_local_clock() -> None:
    assert HOURS.is_open(datetime(2026, 12, 4, 6, 0, tzinfo=UTC))  # Friday 08:00 local
    assert not HOURS.is_open(datetime(2026, 12, 4, 5, 59, tzinfo=UTC))
    assert not HOURS.is_open(FRIDAY_1700_LOCAL)
    assert HOURS.is_open(datetime(2026, 12, 5, 9, 0, tzinfo=UTC))  # Saturday 11:00
    assert not HOURS.is_open(datetime(2026, 12, 6, 9, 0, tzinfo=UTC))  # Sunday


def test_the_next_opening_skips_sundays_and_public_holidays() -> None:
    assert HOURS.next_opening(FRIDAY_1700_LOCAL) == datetime(2026, 12, 5, 7, 0, tzinfo=UTC)
    # Christmas (Friday) and the Day of Goodwill (Saturday) are closed: Monday 28th, 08:00.
    christmas_eve_late = datetime(2026, 12, 24, 15, 0, tzinfo=UTC)
    assert not HOURS.is_open(datetime(2026, 12, 25, 8, 0, tzinfo=UTC))
    assert HOURS.next_opening(christmas_eve_late) == datetime(2026, 12, 28, 6, 0, tzinfo=UTC)


def test_open_since_is_the_start_of_the_present_period() -> None:
    assert HOURS.open_since(datetime(2026, 12, 4, 9, 0, tzinfo=UTC)) == datetime(
        2026, 12, 4, 6, 0, tzinfo=UTC
    )
    assert HOURS.open_since(FRIDAY_1700_LOCAL) is None
    always = OfficeHours.parse("always", holidays="2026-12-25")
    assert always.open_since(datetime(2026, 12, 25, 9, tzinfo=UTC)) is None
    since = always.open_since(datetime(2026, 12, 27, 9, tzinfo=UTC))
    assert since == datetime(2026, 12, 25, 22, 0, tzinfo=UTC)  # the 26th, 00:00 local


@pytest.mark.parametrize(
    ("locale", "words"),
    [
        ("en", "Saturday 5 December, 09:00"),
        ("af", "Saterdag 5 Desember, 09:00"),
        ("zu", "UMgqibelo 5 Disemba, 09:00"),
        ("xh", "Mgqibelo 5 Disemba, 09:00"),
    ],
)
def test_when_back_in_each_language(locale: str, words: str) -> None:
    assert HOURS.when_back(FRIDAY_1700_LOCAL, locale) == words


@pytest.mark.parametrize(
    "text",
    [
        "Monday to Friday, 08:00 to 16:30",  # the old plain-text default
        "mon-fri 08:00-16:30",
        "weekdays 08h00-16h30",
        "Mon, Tue, Wed, Thu, Fri 08:00-16:30",
    ],
)
def test_ways_of_writing_the_same_week(text: str) -> None:
    assert OfficeHours.parse(text).week == OfficeHours.parse(DEFAULT_OFFICE_HOURS).week


def test_several_periods_a_day_and_the_description() -> None:
    hours = OfficeHours.parse("mon,wed 08:00-12:00, 13:00-16:00; sat and sun 09:00-11:00")
    assert hours.is_open(datetime(2026, 12, 7, 7, 0, tzinfo=UTC))  # Monday 09:00
    assert not hours.is_open(datetime(2026, 12, 7, 10, 30, tzinfo=UTC))  # Monday 12:30: lunch
    assert not hours.is_open(datetime(2026, 12, 8, 7, 0, tzinfo=UTC))  # Tuesday
    assert (
        hours.describe()
        == "Mon 08:00-12:00, 13:00-16:00; Wed 08:00-12:00, 13:00-16:00; Sat-Sun 09:00-11:00"
    )


@pytest.mark.parametrize(
    ("text", "holidays", "says"),
    [
        ("weekdays", "", "no opening times"),
        ("someday 08:00-09:00", "", "not a day"),
        ("mon 17:00-08:00", "", "closes before it opens"),
        ("mon 08:00-25:00", "", "not a time of day"),
        ("mon 08:00-16:00 except lunch", "", "cannot read"),
        ("mon-fri 08:00-16:30", "25 December", "not an ISO date"),
    ],
)
def test_a_schedule_that_cannot_be_read_says_why(text: str, holidays: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        OfficeHours.parse(text, holidays=holidays)


def test_a_week_is_searched_past_a_long_closure() -> None:
    closed = ",".join(
        (datetime(2026, 12, 14) + timedelta(days=d)).date().isoformat() for d in range(30)
    )
    hours = OfficeHours.parse("mon-fri 08:00-16:30", holidays=closed)
    assert hours.next_opening(datetime(2026, 12, 12, 9, tzinfo=UTC)) == datetime(
        2027, 1, 13, 6, 0, tzinfo=UTC
    )
