"""The ``when`` condition language: parsed by a small recursive-descent parser, never ``eval``'d.

Grammar (lowest precedence first)::

    condition  := or
    or         := and ("or" and)*
    and        := not ("and" not)*
    not        := "not" not | primary
    primary    := "(" condition ")" | test
    test       := NAME [ OP value | "in" list | "not" "in" list ]
    OP         := "==" | "!=" | "<" | ">" | "<=" | ">="
    list       := "[" value ("," value)* "]"
    value      := WORD | NUMBER | STRING

``NAME`` is the id of an earlier step. A bare ``WORD`` on the right is an option id, or ``yes`` /
``no``, which match ``True`` / ``False`` answers of yes_no steps. ``NUMBER`` (``3``, ``-1.5``) and
``STRING`` (``"a b"`` or ``'a b'``) are literals. A bare ``NAME`` tests that the step was answered
with something other than ``no``.

An unanswered or skipped step (missing, ``None``, ``""`` or ``[]``) is *empty*: ``==``, ``in``,
``<``, ``>``, ``<=``, ``>=`` and a bare test are false; ``!=`` and ``not in`` are true. A
multi_choice answer is a list: ``x == a`` holds when ``a`` is among the chosen options, ``x in [a,
b]`` when any of them is. Values of different kinds never compare equal, and ordering across kinds
is false, so evaluation never raises whatever the answers hold.

Parsing compiles the condition into a tree of closures, so evaluating one costs a few function
calls.

Example::

    cond = parse_condition("size in [medium, large] and not danger")
    cond.names                                          # frozenset({'size', 'danger'})
    cond.evaluate({"size": "large", "danger": False})   # True
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

__all__ = [
    "Comparison",
    "Condition",
    "ConditionError",
    "Literal",
    "parse_condition",
]

# Far above anything a form needs; keeps the recursive parser clear of Python's recursion limit.
_MAX_LENGTH = 2000
_MAX_DEPTH = 40


class ConditionError(ValueError):
    """A condition that cannot be parsed; ``position`` is the 0-based column of the problem."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} (column {position + 1})")
        self.message = message
        self.position = position


@dataclass(frozen=True, slots=True)
class Literal:
    """A value on the right of a comparison. ``kind`` is ``word``, ``number`` or ``string``."""

    kind: str
    value: str | float
    position: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Comparison:
    """One test in a condition, kept so the linter can check names and values against the form.

    ``op`` is one of ``== != < > <= >= in not_in`` or ``truthy`` (a bare name).
    """

    name: str
    op: str
    values: tuple[Literal, ...]
    position: int = field(default=0, compare=False)


Answers = Mapping[str, Any]
_Eval = Callable[[Answers], bool]


@dataclass(frozen=True)
class Condition:
    """A parsed ``when`` condition."""

    source: str
    names: frozenset[str]
    comparisons: tuple[Comparison, ...] = ()
    _evaluate: _Eval = field(default=lambda _answers: True, repr=False, compare=False)

    def evaluate(self, answers: Mapping[str, Any]) -> bool:
        """Whether the condition holds for ``answers`` (step id -> stored answer)."""
        return self._evaluate(answers)


# --- tokens ---------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>-?\d+(?:\.\d+)?(?![A-Za-z_]))
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<string>"[^"\n]*"|'[^'\n]*')
  | (?P<op>==|!=|<=|>=|<|>)
  | (?P<punct>[()\[\],])
    """,
    re.VERBOSE,
)
_KEYWORDS = frozenset({"and", "or", "not", "in"})


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # number, word, string, op, punct, keyword, end
    text: str
    position: int


def _tokenize(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            ch = source[pos]
            if ch in "\"'":
                raise ConditionError("this quoted text is never closed", pos)
            if ch == "=":
                raise ConditionError("use == to compare", pos)
            raise ConditionError(f"unexpected character {ch!r}", pos)
        kind = match.lastgroup or ""
        text = match.group()
        if kind != "space":
            if kind == "word" and text in _KEYWORDS:
                kind = "keyword"
            tokens.append(_Token(kind, text, pos))
        pos = match.end()
    tokens.append(_Token("end", "", len(source)))
    return tokens


# --- evaluation of one test -----------------------------------------------------------------


def _is_empty(answer: Any) -> bool:
    return answer is None or answer == "" or (isinstance(answer, list | tuple) and not answer)


def _matcher(literals: tuple[Literal, ...]) -> Callable[[Any], bool]:
    """Equality between one stored answer (never a list) and any of ``literals``.

    A ``yes`` / ``no`` word matches a ``True`` / ``False`` answer and nothing else matches a
    boolean; a number literal matches an answer that reads as that number; a word or a string
    matches the same text. The literals are sorted into sets once, so a test costs a look-up.
    """
    texts = frozenset(lit.value for lit in literals if lit.kind != "number")
    numbers = frozenset(lit.value for lit in literals if lit.kind == "number")
    words = {lit.value for lit in literals if lit.kind == "word"}
    yes, no = "yes" in words, "no" in words

    def matches(answer: Any) -> bool:
        if isinstance(answer, bool):
            return yes if answer else no
        if isinstance(answer, str) and answer in texts:
            return True
        if numbers:
            number = _as_number(answer)
            return number is not None and number in numbers
        return False

    return matches


def _as_number(answer: Any) -> float | None:
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


def _ordered(answer: Any, literal: Literal, op: str) -> bool:
    compare = _ORDER[op]
    if literal.kind == "number":
        number = _as_number(answer)
        # NaN orders with nothing, and comparing with it is false anyway.
        return number is not None and compare(number, literal.value)
    if isinstance(answer, str) and isinstance(literal.value, str):
        # Strings order as text, which is also the calendar order of ISO dates.
        return compare(answer, literal.value)
    return False


def _any_matcher(literals: tuple[Literal, ...]) -> Callable[[Any], bool]:
    """Whether an answer, or any item of a multi_choice answer, equals any of ``literals``."""
    matches = _matcher(literals)

    def any_matches(answer: Any) -> bool:
        if isinstance(answer, list | tuple | set | frozenset):
            return any(map(matches, answer))
        return matches(answer)

    return any_matches


def _compile_test(test: Comparison) -> _Eval:
    name, op, values = test.name, test.op, test.values
    if op == "truthy":

        def truthy(answers: Answers) -> bool:
            answer = answers.get(name)
            return not _is_empty(answer) and answer is not False

        return truthy
    if op in ("==", "in"):
        any_matches = _any_matcher(values)

        def member(answers: Answers) -> bool:
            answer = answers.get(name)
            return not _is_empty(answer) and any_matches(answer)

        return member
    if op in ("!=", "not_in"):
        any_matches = _any_matcher(values)

        def not_member(answers: Answers) -> bool:
            answer = answers.get(name)
            return _is_empty(answer) or not any_matches(answer)

        return not_member
    literal = values[0]

    def ordered(answers: Answers) -> bool:
        answer = answers.get(name)
        if _is_empty(answer) or isinstance(answer, list | tuple | bool):
            return False
        return _ordered(answer, literal, op)

    return ordered


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}


# --- parser ---------------------------------------------------------------------------------


class _Parser:
    def __init__(self, source: str) -> None:
        self.tokens = _tokenize(source)
        self.index = 0
        self.depth = 0
        self.tests: list[Comparison] = []

    @property
    def current(self) -> _Token:
        return self.tokens[self.index]

    def advance(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind != "end":
            self.index += 1
        return token

    def at(self, kind: str, text: str | None = None) -> bool:
        token = self.current
        return token.kind == kind and (text is None or token.text == text)

    def expect(self, kind: str, text: str, what: str) -> _Token:
        if not self.at(kind, text):
            raise ConditionError(f"expected {what}{self._found()}", self.current.position)
        return self.advance()

    def _found(self) -> str:
        token = self.current
        return ", found the end" if token.kind == "end" else f", found {token.text!r}"

    def parse(self) -> _Eval:
        if self.at("end"):
            raise ConditionError("the condition is empty", 0)
        result = self.parse_or()
        if not self.at("end"):
            raise ConditionError(
                f"expected 'and', 'or' or the end{self._found()}", self.current.position
            )
        return result

    def parse_or(self) -> _Eval:
        parts = [self.parse_and()]
        while self.at("keyword", "or"):
            self.advance()
            parts.append(self.parse_and())
        if len(parts) == 1:
            return parts[0]
        alternatives = tuple(parts)
        return lambda answers: any(part(answers) for part in alternatives)

    def parse_and(self) -> _Eval:
        parts = [self.parse_not()]
        while self.at("keyword", "and"):
            self.advance()
            parts.append(self.parse_not())
        if len(parts) == 1:
            return parts[0]
        conjuncts = tuple(parts)
        return lambda answers: all(part(answers) for part in conjuncts)

    def parse_not(self) -> _Eval:
        if self.at("keyword", "not"):
            self.advance()
            with self.nested():
                inner = self.parse_not()
            return lambda answers: not inner(answers)
        return self.parse_primary()

    def parse_primary(self) -> _Eval:
        if self.at("punct", "("):
            self.advance()
            with self.nested():
                inner = self.parse_or()
            self.expect("punct", ")", "')'")
            return inner
        token = self.current
        if token.kind != "word":
            raise ConditionError(f"expected a step id{self._found()}", token.position)
        self.advance()
        return _compile_test(self.parse_test(token))

    def parse_test(self, name: _Token) -> Comparison:
        if self.at("op"):
            op = self.advance().text
            test = Comparison(name.text, op, (self.parse_value(),), name.position)
        elif self.at("keyword", "in"):
            self.advance()
            test = Comparison(name.text, "in", self.parse_list(), name.position)
        elif self.at("keyword", "not") and self.tokens[self.index + 1].text == "in":
            self.advance()
            self.advance()
            test = Comparison(name.text, "not_in", self.parse_list(), name.position)
        else:
            test = Comparison(name.text, "truthy", (), name.position)
        self.tests.append(test)
        return test

    def parse_list(self) -> tuple[Literal, ...]:
        self.expect("punct", "[", "'[' to start the list")
        values = [self.parse_value()]
        while self.at("punct", ","):
            self.advance()
            values.append(self.parse_value())
        self.expect("punct", "]", "',' or ']'")
        return tuple(values)

    def parse_value(self) -> Literal:
        token = self.current
        if token.kind == "word":
            self.advance()
            return Literal("word", token.text, token.position)
        if token.kind == "number":
            self.advance()
            return Literal("number", float(token.text), token.position)
        if token.kind == "string":
            self.advance()
            return Literal("string", token.text[1:-1], token.position)
        raise ConditionError(
            f"expected an option id, yes, no, a number or a quoted text{self._found()}",
            token.position,
        )

    def nested(self) -> _Depth:
        return _Depth(self)


class _Depth:
    """Counts nesting so that ``((((...`` fails with a ConditionError, not a RecursionError."""

    def __init__(self, parser: _Parser) -> None:
        self.parser = parser

    def __enter__(self) -> None:
        self.parser.depth += 1
        if self.parser.depth > _MAX_DEPTH:
            raise ConditionError("the condition is nested too deeply", self.parser.current.position)

    def __exit__(self, *exc: object) -> None:
        self.parser.depth -= 1


@lru_cache(maxsize=1024)
def parse_condition(source: str) -> Condition:
    """Parse a ``when`` condition; raises ``ConditionError`` with the column of the problem.

    Example::

        parse_condition("updates == yes").evaluate({"updates": True})   # True
    """
    if not isinstance(source, str):
        raise ConditionError("a condition is text", 0)
    if len(source) > _MAX_LENGTH:
        raise ConditionError(f"the condition is longer than {_MAX_LENGTH} characters", 0)
    parser = _Parser(source)
    evaluate = parser.parse()
    tests = tuple(parser.tests)
    return Condition(
        source=source,
        names=frozenset(test.name for test in tests),
        comparisons=tests,
        _evaluate=evaluate,
    )
