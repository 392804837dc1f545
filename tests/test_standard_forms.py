"""The standard forms library: every form loads, lints clean, and asks only what a crew needs."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from forms_runtime.effects import Ask, Inbound, Reject
from forms_runtime.engine import start, step
from forms_runtime.i18n import LOCALES, tr
from forms_runtime.linter import lint_paths
from forms_runtime.loader import form_files, load_form, standard_forms, standard_forms_dir
from forms_runtime.model import Form, StepType
from forms_runtime.sms import segments

# The services issue 2 asks for, by form id.
REQUIRED = {
    "pothole",
    "water_leak",
    "no_water",
    "sewage",
    "power_outage",
    "streetlight",
    "illegal_dumping",
    "refuse_missed",
    "general_enquiry",
}
FILES = form_files(standard_forms_dir())
SERVICE_CODE = re.compile(r"^[A-Z]+(-[A-Z]+)+$")


def _ids(path: object) -> str:
    return getattr(path, "stem", str(path))


@pytest.fixture(scope="module")
def forms() -> dict[str, Form]:
    return standard_forms()


def test_the_library_has_every_required_service(forms: dict[str, Form]) -> None:
    assert set(forms) >= REQUIRED
    assert {p.stem for p in FILES} == set(forms), "one file per form, named after its id"


@pytest.mark.parametrize("path", FILES, ids=_ids)
def test_each_form_file_loads(path) -> None:
    form = load_form(path)
    assert form.id == path.stem
    assert form.version >= 1
    assert form.review is True
    assert form.retention_days > 0


def test_the_library_lints_clean_without_warnings() -> None:
    issues = lint_paths([standard_forms_dir()])
    assert issues == [], "\n".join(f"{i.path}:{i.line} {i.rule} {i.message}" for i in issues)


def test_service_codes_are_open311_style_and_unique(forms: dict[str, Form]) -> None:
    codes = [f.service_code for f in forms.values()]
    assert all(SERVICE_CODE.match(c) for c in codes), codes
    assert len(set(codes)) == len(codes)


def test_keywords_in_every_locale_and_no_word_picks_two_forms(forms: dict[str, Form]) -> None:
    for locale in LOCALES:
        seen: dict[str, str] = {}
        for form in forms.values():
            words = form.keywords.get(locale, ())
            assert len(words) >= 5, f"{form.id}: few {locale} keywords"
            for word in words:
                key = word.casefold()
                assert key not in seen, f"{locale} keyword {word!r}: {seen.get(key)} and {form.id}"
                seen[key] = form.id


def test_residents_slang_reaches_the_right_form(forms: dict[str, Form]) -> None:
    expected = {
        ("en", "no lights"): "power_outage",
        ("af", "krag is af"): "power_outage",
        ("zu", "akukho gesi"): "power_outage",
        ("xh", "awukho umbane"): "power_outage",
        ("en", "burst pipe"): "water_leak",
        ("af", "slaggat"): "pothole",
        ("zu", "akukho manzi"): "no_water",
    }
    for (locale, word), form_id in expected.items():
        assert word in forms[form_id].keywords[locale]


def test_a_report_about_a_place_asks_the_place_first(forms: dict[str, Form]) -> None:
    for form in forms.values():
        # An enquiry need not be about a place; a bus or train report names the bus or train
        # first, then the stop (it needs the operator's route to be understood).
        if form.id in ("general_enquiry", "transport_reliability"):
            continue
        assert form.steps[0].type is StepType.LOCATION, form.id


def test_contact_details_only_when_the_resident_wants_a_call_back(
    forms: dict[str, Form],
) -> None:
    for form in forms.values():
        for s in form.steps:
            if s.type in (StepType.PHONE, StepType.EMAIL, StepType.NAME):
                assert s.personal and s.purpose, f"{form.id}.{s.id}"
            if s.personal:
                # Never asked outright: a choice the resident made earlier opens the step, or
                # it can be skipped.
                assert s.when or not s.required, f"{form.id}.{s.id} is asked of everyone"


def test_choices_fit_an_sms_menu(forms: dict[str, Form]) -> None:
    for form in forms.values():
        for s in form.steps:
            assert len(s.options) <= 9 or all(o.group for o in s.options), f"{form.id}.{s.id}"


def test_the_power_outage_asks_for_the_meter_only_for_a_single_home(
    forms: dict[str, Form],
) -> None:
    form = forms["power_outage"]
    assert form.step("meter").when == "only_home == yes"
    assert form.step("meter").personal


@pytest.mark.parametrize("locale", LOCALES)
def test_every_prompt_is_one_sms_segment(forms: dict[str, Form], locale: str) -> None:
    for form in forms.values():
        for s in form.steps:
            text = tr(locale, s.prompt)
            assert segments(text) == 1, f"{form.id}.{s.id} [{locale}]: {text}"


@pytest.mark.parametrize("locale", ["af", "zu", "xh"])
def test_each_form_starts_in_the_residents_language(forms: dict[str, Form], locale: str) -> None:
    for form in forms.values():
        _, effects = start(form, locale)
        ask = next(e for e in effects if isinstance(e, Ask))
        first = form.steps[0]
        assert ask.prompt == tr(locale, first.prompt) != first.prompt, form.id


@pytest.mark.parametrize(
    ("typed", "route"),
    [("T1", "t01"), ("t01", "t01"), ("Dunoon", "t01"), ("table viw", "t01"), ("101", "r101")],
)
def test_bus_routes_are_found_by_number_or_name_with_typos(
    forms: dict[str, Form], typed: str, route: str
) -> None:
    form = forms["transport_reliability"]
    state, _ = start(form, "en")
    state, _ = step(form, state, Inbound(text="myciti"))
    state, _ = step(form, state, Inbound(text=typed))
    assert state["answers"]["route_myciti"] == route and state["at"] == "stop"


_ON_A_TUESDAY = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)


def _bus_reported(form: Form, *answers: str) -> tuple[dict[str, Any], list[Any]]:
    state, effects = start(form, "en")
    for text in answers:
        state, effects = step(form, state, Inbound(text=text, received_at=_ON_A_TUESDAY))
    return state, effects


@pytest.mark.parametrize(
    ("answers", "at", "told"),
    [
        # An operator or route the city does not list: asked again with the choices.
        (("a taxi",), "operator", "Choose"),
        (("myciti", "Z99"), "route_myciti", "Choose"),
        # Late by how much: a number of minutes, 1 to 600.
        (("myciti", "t1", "Site C Khayelitsha", "late", "0"), "late_minutes", "between 1 and 600"),
        (
            ("myciti", "t1", "Site C Khayelitsha", "late", "601"),
            "late_minutes",
            "between 1 and 600",
        ),
        (
            ("myciti", "t1", "Site C Khayelitsha", "late", "soon"),
            "late_minutes",
            "between 1 and 600",
        ),
        # When: today or earlier, within 30 days; never the future.
        (
            ("myciti", "t1", "Site C Khayelitsha", "full", "10/12/2026"),
            "day",
            "today or in the past",
        ),
        (("myciti", "t1", "Site C Khayelitsha", "full", "1 October"), "day", "after"),
        (("myciti", "t1", "Site C Khayelitsha", "full", "sometime"), "day", "Enter a date"),
    ],
)
def test_a_bus_report_asks_again_on_each_bad_answer(
    forms: dict[str, Form], answers: tuple[str, ...], at: str, told: str
) -> None:
    state, effects = _bus_reported(forms["transport_reliability"], *answers)
    assert state["at"] == at
    rejected = [e for e in effects if isinstance(e, Reject)]
    assert rejected and told in rejected[0].message, effects
    assert isinstance(effects[-1], Ask) and effects[-1].step_id == at


@pytest.mark.parametrize(
    ("day", "date"), [("today", "2026-12-08"), ("yesterday", "2026-12-07"), ("3 Dec", "2026-12-03")]
)
def test_a_bus_report_takes_today_or_an_earlier_day_and_how_late_it_was(
    forms: dict[str, Form], day: str, date: str
) -> None:
    state, effects = _bus_reported(
        forms["transport_reliability"],
        "golden arrow",
        "bellville",
        "Site C Khayelitsha",
        "late",
        "25",
        day,
    )
    assert state["at"] == "review", effects
    assert state["answers"]["late_minutes"] == 25 and state["answers"]["day"] == date
    assert state["answers"]["route_golden_arrow"] == "ga_bellville_cbd"
