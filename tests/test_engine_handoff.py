"""The form standard's ``handoff``: the loader reads it, the pure engine emits ``Handoff`` once
the marked answer is given (a step's ``when`` naming the step itself, or a chosen option), in
the resident's language, and moves on as for any answer."""

from __future__ import annotations

import pytest

from forms_runtime.effects import Ask, Handoff, Inbound, Review
from forms_runtime.engine import start, step
from forms_runtime.loader import FormError, parse_form, standard_forms

FORM = """
id: gas
version: 1
title: Gas
service_code: GAS-1
description: A smell of gas.
retention_days: 30
keywords: {en: [gas]}
confirmation: Thank you.
steps:
  - id: smell
    type: yes_no
    prompt: Can you smell gas?
    handoff:
      when: smell == yes
      reason: Leave the building now.
  - id: what
    type: multi_choice
    prompt: What else is there?
    options:
      - id: smoke
        label: Smoke
      - id: noise
        label: A hissing noise
        handoff:
          reason: Keep away from it.
      - id: nothing
        label: Nothing else
  - id: note
    type: text
    required: false
    prompt: Anything else?
"""


def _handoffs(effects: list[object]) -> list[Handoff]:
    return [e for e in effects if isinstance(e, Handoff)]


def test_a_step_hands_off_when_its_condition_holds() -> None:
    form = parse_form(FORM)
    state, _ = start(form, "en")
    state, effects = step(form, state, Inbound(text="yes"))
    (handoff,) = _handoffs(effects)
    assert (handoff.form_id, handoff.step_id, handoff.message, handoff.reason) == (
        "gas",
        "smell",
        "Leave the building now.",
        "Leave the building now.",
    )
    assert isinstance(effects[-1], Ask) and effects[-1].step_id == "what", "the form moves on"
    assert effects.index(handoff) == 0
    _, effects = step(form, start(form, "en")[0], Inbound(text="no"))
    assert _handoffs(effects) == []


def test_an_option_among_several_chosen_hands_off() -> None:
    form = parse_form(FORM)
    state, _ = start(form, "en")
    state, _ = step(form, state, Inbound(text="no"))
    state, effects = step(form, state, Inbound(text="smoke and hissing noise"))
    assert [h.step_id for h in _handoffs(effects)] == ["what"]
    _, effects = step(form, state, Inbound(text="skip"))
    assert isinstance(effects[-1], Review) and _handoffs(effects) == []


def test_changing_an_answer_on_the_review_screen_can_hand_off() -> None:
    form = parse_form(FORM)
    state, _ = start(form, "en")
    for answer in ("no", "nothing else", "skip"):
        state, effects = step(form, state, Inbound(text=answer))
    assert isinstance(effects[-1], Review)
    state, _ = step(form, state, Inbound(text="change 1"))
    state, effects = step(form, state, Inbound(text="yes"))
    assert [h.step_id for h in _handoffs(effects)] == ["smell"]


def test_the_reason_is_said_in_the_residents_language() -> None:
    form = standard_forms()["power_outage"]
    state = {
        "form": "power_outage",
        "version": form.version,
        "locale": "zu",
        "at": "wires",
        "answers": {"only_home": False},
    }
    _, effects = step(form, state, Inbound(text="yebo"))
    (handoff,) = _handoffs(effects)
    assert handoff.message.startswith("Izintambo zikagesi eziphilayo zingabulala.")
    assert handoff.reason.startswith("Live wires can kill.")


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        (
            "    handoff:\n      when: later == yes\n      reason: Go.\n",
            "not this step or an earlier one",
        ),
        ("    handoff:\n      reason: Go.\n      who: supervisor\n", "unknown key `who`"),
        ("    handoff: yes\n", "must say why a person is needed"),
    ],
)
def test_a_handoff_the_engine_could_not_use_is_refused(snippet: str, message: str) -> None:
    text = (
        FORM.replace("    prompt: Anything else?\n", "    prompt: Anything else?\n" + snippet)
        + "  - id: later\n    type: yes_no\n    prompt: Later?\n"
    )
    with pytest.raises(FormError, match=message):
        parse_form(text)
