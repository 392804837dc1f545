"""The `when` language: parsing, evaluation rules for empty answers and lists, and robustness."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forms_runtime.expressions import ConditionError, parse_condition


@pytest.mark.parametrize(
    ("source", "answers", "expected"),
    [
        ("updates == yes", {"updates": True}, True),
        ("updates == yes", {"updates": False}, False),
        ("updates == no", {"updates": False}, True),
        ("updates != yes", {"updates": False}, True),
        ("size == large", {"size": "large"}, True),
        ("size == large", {"size": "small"}, False),
        ("size in [medium, large]", {"size": "medium"}, True),
        ("size in [medium, large]", {"size": "small"}, False),
        ("size not in [medium, large]", {"size": "small"}, True),
        ("size in [medium, large] and not danger", {"size": "large", "danger": False}, True),
        ("size in [medium, large] and not danger", {"size": "large", "danger": True}, False),
        ("count > 3 or kind != other", {"count": 4, "kind": "other"}, True),
        ("count > 3 or kind != other", {"count": 3, "kind": "other"}, False),
        ("count >= 3", {"count": 3}, True),
        ("count <= 2.5", {"count": 2.5}, True),
        ("count < -1", {"count": -2}, True),
        ("count == 3", {"count": 3.0}, True),
        ('name == "Site C"', {"name": "Site C"}, True),
        ("name == 'Site C'", {"name": "Site C"}, True),
        ('seen < "2026-01-01"', {"seen": "2025-12-31"}, True),
        ('seen < "2026-01-01"', {"seen": "2026-01-02"}, False),
        ("a == x and (b == y or c == z)", {"a": "x", "b": "n", "c": "z"}, True),
        ("not (a == x or b == y)", {"a": "n", "b": "n"}, True),
        ("not not a", {"a": True}, True),
        # `and` binds tighter than `or`
        ("a == x or b == y and c == z", {"a": "x", "b": "n", "c": "n"}, True),
    ],
)
def test_evaluate(source: str, answers: dict[str, Any], expected: bool) -> None:
    assert parse_condition(source).evaluate(answers) is expected


@pytest.mark.parametrize("empty", [None, "", []])
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x == a", False),
        ("x != a", True),
        ("x in [a, b]", False),
        ("x not in [a, b]", True),
        ("x < 3", False),
        ("x > 3", False),
        ("x <= 3", False),
        ("x >= 3", False),
        ("x", False),
        ("not x", True),
        ("x == no", False),
    ],
)
def test_an_unanswered_step_compares_as_empty(source: str, expected: bool, empty: Any) -> None:
    condition = parse_condition(source)
    assert condition.evaluate({"x": empty}) is expected
    assert condition.evaluate({}) is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("kinds == glass", True),
        ("kinds == paper", False),
        ("kinds != glass", False),
        ("kinds != paper", True),
        ("kinds in [paper, tins]", True),
        ("kinds in [paper, metal]", False),
        ("kinds not in [paper, metal]", True),
        ("kinds > 1", False),
        ("kinds", True),
    ],
)
def test_multi_choice_answers_are_lists(source: str, expected: bool) -> None:
    assert parse_condition(source).evaluate({"kinds": ["glass", "tins"]}) is expected


@pytest.mark.parametrize(
    ("source", "answers"),
    [
        ("x == yes", {"x": "yes"}),  # a choice with an option called yes is still a string
        ("x == 3", {"x": "3"}),  # a number compares with digits typed as text
    ],
)
def test_values_match_across_the_kinds_that_mean_the_same(source: str, answers: Any) -> None:
    assert parse_condition(source).evaluate(answers)


@pytest.mark.parametrize(
    ("source", "answers"),
    [
        ("x == 1", {"x": True}),  # booleans are not numbers
        ("x == yes", {"x": 1}),
        ("x > 3", {"x": "three"}),
        ("x > 3", {"x": True}),
        ('x < "b"', {"x": 1}),
        ("x == a", {"x": {"lat": 1.0}}),
        ("x > 1", {"x": float("nan")}),
    ],
)
def test_different_kinds_never_match(source: str, answers: Any) -> None:
    assert parse_condition(source).evaluate(answers) is False


def test_names_and_comparisons_are_exposed_for_the_linter() -> None:
    condition = parse_condition("size in [medium, large] and not danger or count > 3")
    assert condition.names == frozenset({"size", "danger", "count"})
    tests = {(c.name, c.op): [v.value for v in c.values] for c in condition.comparisons}
    assert tests == {
        ("size", "in"): ["medium", "large"],
        ("danger", "truthy"): [],
        ("count", ">"): [3.0],
    }


def test_parsing_is_cached() -> None:
    assert parse_condition("a == b") is parse_condition("a == b")


@pytest.mark.parametrize(
    ("source", "position"),
    [
        ("", 0),
        ("   ", 0),
        ("a = b", 2),
        ("a ==", 4),
        ("a == b c", 7),
        ("a == 'b", 5),
        ("(a == b", 7),
        ("a in b", 5),
        ("a in [b,", 8),
        ("a == b and", 10),
        ("== b", 0),
        ("a == b;", 6),
        ("a == [b]", 5),
        ("and", 0),
        ("(" * 100 + "a" + ")" * 100, 41),
    ],
)
def test_syntax_errors_say_where(source: str, position: int) -> None:
    with pytest.raises(ConditionError) as caught:
        parse_condition(source)
    assert caught.value.position == position
    assert f"column {position + 1}" in str(caught.value)


def test_a_very_long_condition_is_refused_not_recursed() -> None:
    with pytest.raises(ConditionError):
        parse_condition(" and ".join(["a == b"] * 1000))
    with pytest.raises(ConditionError):
        parse_condition("not " * 500 + "a")


_ALPHABET = st.sampled_from([*"ab xy01()[],=!<>\"'-._", "and", "or", "not", "in", " "])


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(_ALPHABET, max_size=30).map("".join)))
def test_any_text_parses_or_raises_condition_error(source: str) -> None:
    try:
        condition = parse_condition(source)
    except ConditionError:
        return
    answers: dict[str, Any] = {name: "a" for name in condition.names}
    assert isinstance(condition.evaluate(answers), bool)


_ANSWER = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=5),
    st.lists(st.sampled_from(["a", "b", "x"]), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [
            "x == a",
            "x != 3",
            "x in [a, 2, 'b']",
            "x not in [a]",
            "x < 3",
            "x >= 'b'",
            "x",
            "not x and y == yes or y > -1.5",
        ]
    ),
    _ANSWER,
    _ANSWER,
)
def test_evaluation_never_raises_whatever_the_answers(source: str, x: Any, y: Any) -> None:
    assert isinstance(parse_condition(source).evaluate({"x": x, "y": y}), bool)
