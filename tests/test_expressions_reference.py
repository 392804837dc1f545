"""Compiled ``when`` tests decide exactly as the literal-by-literal comparison did.

``==``, ``!=``, ``in`` and ``not in`` sort their literals into sets when a condition is parsed
instead of comparing the answer with each literal on every evaluation. The per-literal rule is kept
here, unchanged, as the reference, and both must agree on any answer a state can hold.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from forms_runtime.expressions import Comparison, Literal, parse_condition

# --- the reference: one literal at a time, as it was --------------------------------------------


def _ref_as_number(answer: Any) -> float | None:
    if isinstance(answer, bool):
        return None
    if isinstance(answer, int | float):
        return float(answer)
    if isinstance(answer, str):
        try:
            return float(answer)
        except ValueError:
            return None
    return None


def _ref_matches(answer: Any, literal: Literal) -> bool:
    if isinstance(answer, bool):
        return literal.kind == "word" and literal.value == ("yes" if answer else "no")
    if literal.kind == "number":
        number = _ref_as_number(answer)
        return number is not None and number == literal.value
    if isinstance(answer, str):
        return answer == literal.value
    return False


def _ref_any_matches(answer: Any, literals: tuple[Literal, ...]) -> bool:
    if isinstance(answer, list | tuple | set | frozenset):
        return any(_ref_matches(item, lit) for item in answer for lit in literals)
    return any(_ref_matches(answer, lit) for lit in literals)


def _ref_is_empty(answer: Any) -> bool:
    return answer is None or answer == "" or (isinstance(answer, list | tuple) and not answer)


def ref_evaluate(test: Comparison, answers: dict[str, Any]) -> bool:
    answer = answers.get(test.name)
    if test.op in ("==", "in"):
        return not _ref_is_empty(answer) and _ref_any_matches(answer, test.values)
    assert test.op in ("!=", "not_in")
    return _ref_is_empty(answer) or not _ref_any_matches(answer, test.values)


# --- conditions and answers ----------------------------------------------------------------------

values = st.sampled_from(
    ["yes", "no", "pothole", "a_1", "3", "-1.5", "0", "1000", '"a b"', "'3'", '"yes"', "'1e3'"]
)
conditions = st.one_of(
    st.builds(lambda op, v: f"x {op} {v}", st.sampled_from(["==", "!="]), values),
    st.builds(
        lambda op, vs: f"x {op} [{', '.join(vs)}]",
        st.sampled_from(["in", "not in"]),
        st.lists(values, min_size=1, max_size=4),
    ),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-5, max_value=1005),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "yes", "no", "pothole", "a_1", "a b", "3", "3.0", " 3 ", "1e3", "nan"]),
    st.text(max_size=5),
    st.just({"place": "Khayelitsha"}),
)
answers = st.one_of(
    scalars,
    st.lists(scalars, max_size=4),
    st.lists(scalars, max_size=4).map(tuple),
    st.frozensets(st.sampled_from(["pothole", "yes", "3", 3, 1.5, True])),
    st.lists(st.lists(scalars, max_size=2), max_size=2),
)


@given(conditions, answers)
@settings(max_examples=1000)
def test_membership_tests_match_the_reference(source: str, answer: Any) -> None:
    condition = parse_condition(source)
    [test] = condition.comparisons
    for given_answers in ({"x": answer}, {}):
        assert condition.evaluate(given_answers) is ref_evaluate(test, given_answers)


def test_the_reference_agrees_on_the_documented_cases() -> None:
    # So that a broken reference cannot hide a broken evaluator.
    [test] = parse_condition("x in [pothole, 3]").comparisons
    assert ref_evaluate(test, {"x": ["sunken", "pothole"]})
    assert ref_evaluate(test, {"x": "3.0"})
    assert not ref_evaluate(test, {"x": True})
    assert not ref_evaluate(test, {"x": math.nan})
    [test] = parse_condition("x == yes").comparisons
    assert ref_evaluate(test, {"x": True})
    assert ref_evaluate(test, {"x": "yes"})
