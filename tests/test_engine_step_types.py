"""Each step type the engine does not meet in the pothole-shaped form: text rules, email, name,
multi-choice, long text, and a form without a review screen."""

from __future__ import annotations

from datetime import UTC, datetime

from forms_runtime.effects import Ask, Inbound, InputKind, Reject, Submit
from forms_runtime.engine import start, step
from forms_runtime.model import Form, Option, Step, StepType, Validation

NOW = datetime(2026, 12, 10, 9, 0, tzinfo=UTC)

FORM = Form(
    id="contact_form",
    version=1,
    title="General enquiry",
    service_code="GENERAL",
    description="Ask the city.",
    keywords={"en": ("question",)},
    retention_days=30,
    confirmation="Thank you.",
    review=False,
    steps=(
        Step(
            "topics",
            StepType.MULTI_CHOICE,
            "Which services is it about?",
            options=(
                Option("water", "Water"),
                Option("lights", "Streetlights"),
                Option("roads", "Roads"),
            ),
        ),
        Step(
            "meter",
            StepType.TEXT,
            "What is the meter number?",
            validation=Validation(
                pattern=r"[0-9]{8}", pattern_message="Enter the 8 digits of the meter number"
            ),
        ),
        Step(
            "details",
            StepType.LONG_TEXT,
            "Tell us more.",
            validation=Validation(min_length=10, max_length=500),
        ),
        Step("name", StepType.NAME, "What is your name?", personal=True, purpose="To address you."),
        Step(
            "email",
            StepType.EMAIL,
            "What is your email address?",
            personal=True,
            purpose="To reply.",
        ),
    ),
)


def say(state: dict, text: str | None = None, **kw: object) -> tuple[dict, list]:
    return step(FORM, state, Inbound(text=text, received_at=NOW, **kw))  # type: ignore[arg-type]


def test_multi_choice_by_numbers_labels_and_taps() -> None:
    state, effects = start(FORM, "en")
    assert isinstance(effects[-1], Ask) and effects[-1].kind is InputKind.MULTI_CHOICE
    assert say(state, "1 and 3")[0]["answers"]["topics"] == ["water", "roads"]
    assert say(state, "water, streetlihgts")[0]["answers"]["topics"] == ["water", "lights"]
    assert say(state, option_id="lights,water")[0]["answers"]["topics"] == ["water", "lights"]
    state2, effects = say(state, "bananas")
    assert isinstance(effects[0], Reject) and state2["at"] == "topics"
    _, effects = say(state, option_id="nope")
    assert isinstance(effects[0], Reject)


def test_text_pattern_uses_the_forms_own_message() -> None:
    state, _ = start(FORM, "en")
    state, _ = say(state, "1")
    state, effects = say(state, "1234")
    assert isinstance(effects[0], Reject)
    assert effects[0].message == "Enter the 8 digits of the meter number"
    state, _ = say(state, "12345678")
    assert state["answers"]["meter"] == "12345678" and state["at"] == "details"


def test_long_text_length_rules_and_cleaning() -> None:
    state, _ = start(FORM, "en")
    state, _ = say(state, "1")
    state, _ = say(state, "12345678")
    _, effects = say(state, "short")
    assert effects[0].message == "Enter at least 10 characters."
    _, effects = say(state, "x" * 600)
    assert effects[0].message == "Enter 500 characters or fewer."
    state, _ = say(state, "Water\u202e runs\x00 all\n\nnight   long")
    assert (
        state["answers"]["details"] == "Water runs all\n\nnight long"
        or "\x00" not in state["answers"]["details"]
    )
    assert "\u202e" not in state["answers"]["details"]


def test_name_and_email_then_submit_without_review() -> None:
    state, _ = start(FORM, "en")
    for answer in ("2", "12345678", "The light has been out for a week"):
        state, _ = say(state, answer)
    _, effects = say(state, "12345")
    assert effects[0].message == "Enter your name using letters."
    state, _ = say(state, "  Nomsa   Dlamini ")
    assert state["answers"]["name"] == "Nomsa Dlamini"
    _, effects = say(state, "nomsa at example")
    assert "email address" in effects[0].message
    state, effects = say(state, "Nomsa@Example.ORG")
    submit = effects[-1]
    assert isinstance(submit, Submit) and state["at"] == "done"
    assert submit.answers["email"] == "Nomsa@example.org"
    assert submit.answers["topics"] == ["lights"]


def test_empty_and_whitespace_answers_are_re_asked() -> None:
    state, _ = start(FORM, "en")
    for text in ("", "   ", "\x00\x01"):
        again, effects = say(state, text)
        assert again == state
        assert isinstance(effects[0], Reject) and isinstance(effects[-1], Ask)
