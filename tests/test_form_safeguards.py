"""Special personal information in the form standard: `sensitive: special` steps need a purpose,
their own consent question and `aggregate_only`; aggregate-only steps come after the report,
optional, and their answers leave the engine as ``Contribute`` effects, never in ``Submit``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from forms_runtime.effects import Ask, Contribute, Inbound, InputKind, Notice, Review, Submit
from forms_runtime.engine import start, step
from forms_runtime.loader import FormError, parse_form
from forms_runtime.model import Form

NOW = datetime(2026, 12, 10, 9, 0, tzinfo=UTC)

_FORM = """\
id: survey
version: 1
title: Bus or train did not come
service_code: TEST-1
description: A test.
retention_days: 30
keywords: {en: [bus]}
confirmation: Thank you.
steps:
  - id: kind
    type: choice
    prompt: What happened?
    options:
      - {id: late, label: It came late}
      - {id: full, label: It was full}
  - id: gender
    type: choice
    aggregate_only: true
    required: false
    purpose: To count reports by group.
    prompt: "Optional: how do you describe your gender?"
    options:
      - {id: woman, label: Woman}
      - {id: prefer_not, label: Prefer not to say}
  - id: disability
    type: yes_no
    aggregate_only: true
    required: false
    sensitive: special
    purpose: To count how often people with a disability are let down.
    consent: "Optional: may we ask whether you have a disability?"
    prompt: Do you have a disability that affects how you travel?
"""


def _survey() -> Form:
    return parse_form(_FORM, "survey.yaml")


def _say(form: Form, state: dict, text: str) -> tuple[dict, list]:
    return step(form, state, Inbound(text=text, received_at=NOW))


def _through_review(form: Form) -> tuple[dict, list]:
    state, _ = start(form, "en")
    state, effects = _say(form, state, "late")
    assert isinstance(effects[-1], Review)
    # The review shows the report only: no optional question is on it.
    assert [i.step_id for i in effects[-1].items] == ["kind"]
    return _say(form, state, "send")


def test_the_report_is_submitted_before_the_optional_questions_and_without_them() -> None:
    form = _survey()
    state, effects = _through_review(form)
    submit = next(e for e in effects if isinstance(e, Submit))
    assert submit.answers == {"kind": "late"}
    intro = next(e for e in effects if isinstance(e, Notice))
    assert "optional" in intro.message and "SKIP" in intro.message
    ask = effects[-1]
    assert isinstance(ask, Ask) and ask.step_id == "gender" and ask.optional
    assert ask.hint is not None and "Why we ask: To count reports by group." in ask.hint
    assert state["at"] == "gender"


def test_each_optional_answer_is_a_contribution_and_special_ones_ask_consent_first() -> None:
    form = _survey()
    state, _ = _through_review(form)
    state, effects = _say(form, state, "prefer not to say")
    assert effects[0] == Contribute("survey", "gender", "prefer_not", special=False)
    consent = effects[-1]
    assert isinstance(consent, Ask) and consent.kind is InputKind.YES_NO
    assert consent.prompt == "Optional: may we ask whether you have a disability?"
    assert consent.hint and "disability are let down" in consent.hint
    state, effects = _say(form, state, "yes")  # consent, not the answer
    assert not any(isinstance(e, Contribute) for e in effects)
    assert isinstance(effects[-1], Ask) and effects[-1].prompt.startswith("Do you have")
    state, effects = _say(form, state, "no")
    assert effects[0] == Contribute("survey", "disability", False, special=True)
    assert state["at"] == "done"


def test_declining_consent_or_skipping_keeps_nothing() -> None:
    form = _survey()
    state, _ = _through_review(form)
    state, effects = _say(form, state, "skip")
    assert not any(isinstance(e, Contribute) for e in effects)
    state, effects = _say(form, state, "no")  # no consent: the question is never asked
    assert not any(isinstance(e, Contribute) for e in effects)
    assert state["at"] == "done"


def test_after_the_report_going_back_is_refused_and_cancel_ends_the_questions() -> None:
    form = _survey()
    state, _ = _through_review(form)
    state, effects = _say(form, state, "back")
    assert state["at"] == "gender"
    assert "already sent" in next(e for e in effects if isinstance(e, Notice)).message
    state, effects = _say(form, state, "cancel")
    assert state["at"] == "done"
    assert not any(isinstance(e, Submit | Contribute) for e in effects)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('    consent: "Optional: may we ask whether you have a disability?"\n', "", "`consent`"),
        (
            "    purpose: To count how often people with a disability are let down.\n",
            "",
            "special personal information without `purpose`",
        ),
        (
            "    aggregate_only: true\n    required: false\n    sensitive: special\n",
            "    required: false\n    sensitive: special\n",
            "without `aggregate_only: true`",
        ),
        ("    sensitive: special\n", "    sensitive: secret\n", "`sensitive` is `secret`"),
        ("    required: false\n    purpose: To count reports by group.\n", "", "`required: false`"),
    ],
)
def test_the_loader_refuses_a_special_step_without_its_safeguards(
    old: str, new: str, message: str
) -> None:
    assert old in _FORM
    with pytest.raises(FormError) as caught:
        parse_form(_FORM.replace(old, new, 1), "survey.yaml")
    assert any(message in p.message for p in caught.value.problems)


def test_a_changed_form_ends_the_optional_questions_rather_than_asking_for_a_second_report() -> (
    None
):
    form = _survey()
    state, _ = _through_review(form)
    newer = parse_form(_FORM.replace("version: 1", "version: 2"), "survey.yaml")
    state, effects = _say(newer, state, "woman")
    assert state["at"] == "done"
    assert not any(isinstance(e, Submit | Contribute | Ask) for e in effects)


def _self_described(
    option: str = "      - {id: another, label: I describe it another way}\n",
) -> str:
    return _FORM.replace(
        "      - {id: prefer_not, label: Prefer not to say}\n",
        option.replace("another, label", "another, self_described: true, label")
        + "      - {id: prefer_not, label: Prefer not to say}\n",
        1,
    )


@pytest.mark.parametrize("typed", ["genderqueer", "Two-spirit", "I am agender"])
def test_a_gender_in_the_residents_own_words_counts_as_self_described_and_is_not_kept(
    typed: str,
) -> None:
    form = parse_form(_self_described(), "survey.yaml")
    state, effects = _through_review(form)
    assert effects[-1].hint is not None and "own words" in effects[-1].hint
    state, effects = _say(form, state, typed)
    assert effects[0] == Contribute("survey", "gender", "another", special=False)
    assert typed not in repr(state) and typed not in repr(effects)


@pytest.mark.parametrize("typed", ["7", "?", "wo", "wom", "yes", "No thanks"])
def test_a_wrong_number_or_an_unclear_pick_is_asked_again_not_taken_as_self_described(
    typed: str,
) -> None:
    form = parse_form(
        _self_described().replace(
            "      - {id: woman, label: Woman}\n",
            "      - {id: woman, label: Woman}\n      - {id: wombat, label: Wombat}\n",
        ),
        "survey.yaml",
    )
    state, _ = _through_review(form)
    state, effects = _say(form, state, typed)
    assert state["at"] == "gender" and not any(isinstance(e, Contribute) for e in effects)


@pytest.mark.parametrize(
    ("form_text", "message"),
    [
        (
            _self_described(
                "      - {id: another, label: Another way}\n"
                "      - {id: other, self_described: true, label: Other}\n"
            ),
            "more than one",
        ),
        (
            _FORM.replace(
                "      - {id: late, label: It came late}\n",
                "      - {id: late, self_described: true, label: It came late}\n",
            ),
            "`aggregate_only`",
        ),
    ],
)
def test_the_loader_refuses_a_self_described_option_that_would_lose_words(
    form_text: str, message: str
) -> None:
    with pytest.raises(FormError) as caught:
        parse_form(form_text, "survey.yaml")
    assert any(
        "self_described" in p.message and message in p.message for p in caught.value.problems
    )
