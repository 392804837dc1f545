"""Every standard form, driven like a resident would: a clean path and a messy one, per locale."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from forms_runtime.effects import (
    Ask,
    Contribute,
    GeoPoint,
    Inbound,
    InputKind,
    MediaRef,
    Reject,
    Review,
    Submit,
)
from forms_runtime.engine import applicable_steps, start, step
from forms_runtime.loader import standard_forms
from forms_runtime.model import Form
from forms_runtime.sample_answers import typo

NOW = datetime(2026, 12, 10, 9, 0, tzinfo=UTC)
PIN = GeoPoint(-34.0363, 18.6776)
FORMS = standard_forms()
YES = {"en": "yes", "af": "ja", "zu": "yebo", "xh": "ewe"}
# An answer that each kind of question cannot use.
WRONG = {
    InputKind.NUMBER: "lots",
    InputKind.YES_NO: "the blue one",
    InputKind.CHOICE: "qqqq zzzz",
    InputKind.MULTI_CHOICE: "qqqq zzzz",
    InputKind.DATE: "the day the moon fell",
    InputKind.PHONE: "12",
    InputKind.EMAIL: "not-an-address",
    InputKind.PHOTO: "here it is",
}
VALID_TEXT = {
    InputKind.TEXT: "Outside number 12",
    InputKind.NUMBER: "2",
    InputKind.DATE: "yesterday",
    InputKind.PHONE: "083 123 4567",
    InputKind.EMAIL: "resident@example.org",
    InputKind.NAME: "Thandi Mokoena",
}


def good_answer(ask: Ask, locale: str, messy: bool) -> Inbound:
    kind = ask.kind
    if kind is InputKind.LOCATION:
        return Inbound(location=PIN, received_at=NOW)
    if kind is InputKind.PHOTO:
        return Inbound(
            media=MediaRef("https://m.example/p.jpg", "image/jpeg", 2000), received_at=NOW
        )
    if kind is InputKind.YES_NO:
        return Inbound(text=YES[locale] if messy else "no", received_at=NOW)
    if kind in (InputKind.CHOICE, InputKind.MULTI_CHOICE):
        if messy:
            # The label as typed on a phone: lower case with a letter missing.
            label = ask.options[0].label.lower()
            return Inbound(text=typo(label, random.Random(len(label))), received_at=NOW)
        return Inbound(text="1", received_at=NOW)
    return Inbound(text=VALID_TEXT[kind], received_at=NOW)


def finish(form: Form, state: dict, effects: list, locale: str, messy: bool) -> tuple[dict, list]:
    for _ in range(40):
        last = effects[-1]
        if isinstance(last, Review | Submit):
            return state, effects
        assert isinstance(last, Ask), effects
        if messy and last.kind in WRONG:
            state, effects = step(form, state, Inbound(text=WRONG[last.kind], received_at=NOW))
            assert isinstance(effects[0], Reject), (last.step_id, effects)
            assert isinstance(effects[-1], Ask) and effects[-1].step_id == last.step_id
        state, effects = step(form, state, good_answer(last, locale, messy))
        for retry in ("1", "12345678", "skip"):
            if not (isinstance(effects[-1], Ask) and effects[-1].step_id == last.step_id):
                break
            # A typo too far from every label, or a text in the wrong format (a meter number):
            # the resident answers by number, then in digits, then skips an optional question.
            state, effects = step(form, state, Inbound(text=retry, received_at=NOW))
    raise AssertionError("form did not reach review")


def submitted(effects: list) -> Submit:
    """The report sent; optional questions (``aggregate_only`` steps) may follow it."""
    (submit,) = [e for e in effects if isinstance(e, Submit)]
    assert not set(submit.answers) & {s.id for s in FORMS[submit.form_id].aggregate_steps}
    return submit


def answer_the_optional_questions(form: Form, state: dict, effects: list, locale: str) -> None:
    """Every optional question after the report, a special one after its consent (yes)."""
    given = set()
    for _ in range(10):
        if state["at"] == "done":
            assert given == {s.id for s in form.aggregate_steps}, given
            return
        last = effects[-1]
        assert isinstance(last, Ask), effects
        consenting = form.step(last.step_id).special and last.step_id not in state.get(
            "consented", []
        )
        answer = (
            Inbound(text=YES[locale], received_at=NOW)
            if consenting
            else good_answer(last, locale, messy=False)
        )
        state, effects = step(form, state, answer)
        given |= {e.step_id for e in effects if isinstance(e, Contribute)}
    raise AssertionError("the optional questions did not end")


def assert_complete(form: Form, submit: Submit) -> None:
    for s in applicable_steps(form, {"answers": submit.answers}):
        if s.required:
            assert s.id in submit.answers, (form.id, s.id)


@pytest.mark.parametrize("locale", ["en", "zu"])
@pytest.mark.parametrize("form_id", sorted(FORMS))
def test_clean_path(form_id: str, locale: str) -> None:
    form = FORMS[form_id]
    state, effects = start(form, locale)
    state, effects = finish(form, state, effects, locale, messy=False)
    assert isinstance(effects[-1], Review)
    state, effects = step(form, state, Inbound(option_id="send"))
    submit = submitted(effects)
    assert submit.locale == locale
    assert submit.service_code == form.service_code
    assert_complete(form, submit)
    answer_the_optional_questions(form, state, effects, locale)


@pytest.mark.parametrize("locale", ["af", "xh", "en"])
@pytest.mark.parametrize("form_id", sorted(FORMS))
def test_messy_path_with_typos_back_and_change(form_id: str, locale: str) -> None:
    form = FORMS[form_id]
    state, effects = start(form, locale)
    first = effects[-1]
    assert isinstance(first, Ask)
    # Answer the first question, go back, and answer it again.
    state, effects = step(form, state, good_answer(first, locale, messy=True))
    state, effects = step(form, state, Inbound(text="back", received_at=NOW))
    assert isinstance(effects[-1], Ask) and effects[-1].step_id == first.step_id
    state, effects = step(form, state, good_answer(first, locale, messy=True))
    state, effects = finish(form, state, effects, locale, messy=True)
    review = effects[-1]
    assert isinstance(review, Review) and review.items
    # Change the first answer from the review screen, then send.
    state, effects = step(form, state, Inbound(text="change 1", received_at=NOW))
    assert isinstance(effects[-1], Ask) and effects[-1].step_id == review.items[0].step_id
    state, effects = step(form, state, good_answer(effects[-1], locale, messy=False))
    state, effects = finish(form, state, effects, locale, messy=False)
    state, effects = step(form, state, Inbound(text=YES[locale], received_at=NOW))
    submit = submitted(effects)
    assert_complete(form, submit)
    answer_the_optional_questions(form, state, effects, locale)
