"""Load form YAML into the frozen model, checking the schema with file and line for every error.

The YAML is composed (PyYAML's SafeLoader) rather than loaded, so every value still carries the
line it came from; the schema is then checked by hand, because the errors are written for the
people who write forms: what is wrong, where, and what to write instead.

The loader refuses a form the engine could not run safely: schema errors, a missing retention,
duplicate step or option ids, a ``when`` naming a step that is unknown or not earlier, and a
personal step without a purpose. Everything that only makes a form worse (translations, SMS
length, style, unreachable steps) is left to ``forms_runtime.linter``.

A form that is refused raises one ``FormError`` carrying every problem found in the file, not the
first: a broken value is skipped and the rest of the form is still read, so an author fixes them
all in one pass. Only a file that is not YAML at all stops at its one syntax error.

Example::

    form = load_form("forms_runtime/standard/pothole.yaml")
    form.step("size").options[0].id    # 'small'
    standard_forms()["pothole"].title  # 'Pothole or road damage'
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, NoReturn, ParamSpec, TypeVar

import yaml

from forms_runtime.expressions import ConditionError, parse_condition
from forms_runtime.model import SPECIAL, Form, Handoff, Option, Step, StepType, Validation

__all__ = [
    "FormError",
    "FormProblem",
    "SourceLines",
    "form_files",
    "load_form",
    "load_forms",
    "parse_form",
    "parse_form_lines",
    "standard_forms",
    "standard_forms_dir",
]

_ID = re.compile(r"[a-z][a-z0-9_]*\Z")
_LOCALE = re.compile(r"[a-z]{2,3}\Z")
_MAX_BYTES = 1_000_000

# Where in a form a value sits, e.g. ("steps", 2, "options", 0, "label"); the linter uses these to
# point at the line of any text it complains about.
NodePath = tuple[str | int, ...]
SourceLines = dict[NodePath, int]

T = TypeVar("T")
P = ParamSpec("P")


@dataclass(frozen=True, slots=True)
class FormProblem:
    """One thing wrong with a form. ``str()`` reads ``path:line: message (hint)``.

    ``rule`` names the check that failed (``schema``, ``syntax``, ``missing-retention``, ...), the
    same ids ``citybot forms lint`` prints.
    """

    path: str
    line: int
    message: str
    hint: str = ""
    rule: str = "schema"

    def __str__(self) -> str:
        text = f"{self.path}:{self.line}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


class FormError(Exception):
    """A form that cannot be loaded, with every problem found in it (``problems``, by line).

    A form author fixes them all in one pass rather than one per run. ``path``, ``line``,
    ``message``, ``hint`` and ``rule`` are those of the first problem, for callers that show one;
    ``str()`` is every problem, one per line.
    """

    def __init__(self, problems: Sequence[FormProblem]) -> None:
        if not problems:
            raise ValueError("a FormError needs at least one problem")
        self.problems = tuple(sorted(problems, key=lambda p: (p.path, p.line)))
        first = self.problems[0]
        self.path = first.path
        self.line = first.line
        self.message = first.message
        self.hint = first.hint
        self.rule = first.rule
        super().__init__(str(self))

    @classmethod
    def single(
        cls, path: str, line: int, message: str, hint: str = "", rule: str = "schema"
    ) -> FormError:
        return cls([FormProblem(path, line, message, hint, rule)])

    def __str__(self) -> str:
        return "\n".join(map(str, self.problems))


_FORM_KEYS = (
    "id",
    "version",
    "title",
    "service_code",
    "description",
    "group",
    "retention_days",
    "keywords",
    "steps",
    "review",
    "confirmation",
)
_STEP_KEYS = (
    "id",
    "type",
    "prompt",
    "hint",
    "label",
    "required",
    "validation",
    "when",
    "options",
    "personal",
    "purpose",
    "handoff",
    "aggregate_only",
    "sensitive",
    "consent",
)
_OPTION_KEYS = ("id", "label", "synonyms", "group", "handoff", "self_described")
_TEXT_TYPES = (StepType.TEXT, StepType.LONG_TEXT, StepType.NAME)
_VALIDATION_KEYS: dict[StepType, tuple[str, ...]] = {
    StepType.NUMBER: ("min", "max"),
    StepType.DATE: ("max_days_past", "max_days_future"),
    **{t: ("min_length", "max_length", "pattern", "pattern_message") for t in _TEXT_TYPES},
}
_CHOICE_TYPES = (StepType.CHOICE, StepType.MULTI_CHOICE)

# YAML 1.1 reads these bare words as booleans, a classic trap for option ids and keywords.
_YAML_BOOL_WORDS = "yes, no, on, off, true, false, y, n"


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


class _Abandoned(Exception):
    """Stops reading a value whose problem is already recorded; the reader around it goes on."""


@dataclass
class _Builder:
    """Walks the composed YAML tree and records every problem it meets.

    A problem in one value abandons only that value (``fail`` records it and raises
    ``_Abandoned``, which ``attempt`` catches around each field, step and option), so the rest of
    the form is still checked and one run reports everything.
    """

    path: str
    lines: SourceLines
    problems: list[FormProblem] = field(default_factory=list)
    # Every step id declared in the file, and the line of each read so far (a step counts even
    # when the rest of it is broken, so a `when` naming it is not also reported).
    later_ids: frozenset[str] = frozenset()
    earlier_ids: dict[str, int] = field(default_factory=dict)
    # Per mapping, the keys an unknown key was taken for (`promt` -> prompt): "did you mean"
    # already covers them, so they are not also reported missing.
    misspelt: dict[NodePath, set[str]] = field(default_factory=dict)

    def report(
        self, node: yaml.Node | int, message: str, hint: str = "", rule: str = "schema"
    ) -> None:
        line = node if isinstance(node, int) else _line(node)
        self.problems.append(FormProblem(self.path, line, message, hint, rule))

    def fail(
        self, node: yaml.Node | int, message: str, hint: str = "", rule: str = "schema"
    ) -> NoReturn:
        self.report(node, message, hint, rule)
        raise _Abandoned

    def attempt(self, default: T, read: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``read(...)``, or ``default`` when the value is abandoned (its problem is recorded)."""
        try:
            return read(*args, **kwargs)
        except _Abandoned:
            return default

    def read_key(
        self,
        fields: dict[str, yaml.Node],
        key: str,
        read: Callable[[yaml.Node, str], T],
        where: str,
        default: T,
    ) -> T:
        node = fields.get(key)
        if node is None:
            return default
        return self.attempt(default, read, node, where)

    def optional(
        self,
        fields: dict[str, yaml.Node],
        key: str,
        read: Callable[[yaml.Node, str], T],
        where: str,
    ) -> T | None:
        return self.read_key(fields, key, read, f"{where} `{key}`", None)

    def missing(
        self, fields: dict[str, yaml.Node], keys: Iterable[str], at: NodePath
    ) -> Iterator[str]:
        """The ``keys`` absent from ``fields``, except those a misspelt key was taken for."""
        misspelt = self.misspelt.get(at, set())
        return (key for key in keys if key not in fields and key not in misspelt)

    # --- generic shapes ---

    def mapping(
        self,
        node: yaml.Node,
        where: str,
        allowed: tuple[str, ...],
        at: NodePath,
        reported: Collection[str] = (),
    ) -> dict[str, yaml.Node]:
        """The ``key: value`` pairs of a mapping; keys in ``reported`` were already complained of."""
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"{where} must be a mapping of `key: value` lines")
        result: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if not isinstance(key, str):
                self.report(key_node, f"{where} has a key that is not a plain word")
            elif key in result:
                self.report(key_node, f"{where} has `{key}` twice", "keep one of them")
            elif key in reported:
                continue
            elif key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                if close:
                    self.misspelt.setdefault(at, set()).add(close[0])
                hint = (
                    f"did you mean `{close[0]}`?"
                    if close
                    else "allowed keys: " + ", ".join(allowed)
                )
                self.report(key_node, f"unknown key `{key}` in {where}", hint)
            else:
                result[key] = value_node
                self.lines[(*at, key)] = _line(key_node)
        return result

    def scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            return node
        try:
            return yaml.constructor.SafeConstructor().construct_object(node)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError):
            # e.g. `2024-13-45`, which YAML takes for a date and then cannot build.
            self.fail(node, f"cannot read the value `{node.value}`", "put it in quotes")

    def text(self, node: yaml.Node, where: str) -> str:
        value = self.scalar(node)
        if not isinstance(value, str):
            hint = "put the text in quotes"
            if isinstance(value, bool):
                hint = f"YAML reads {_YAML_BOOL_WORDS} as true/false: put the word in quotes"
            self.fail(node, f"{where} must be text, not {_kind(value)}", hint)
        if not value.strip():
            self.fail(node, f"{where} is empty", "write the text, or leave the key out")
        # Kept exactly as written: it is the gettext msgid the babel extractor takes from the YAML.
        return value

    def identifier(self, node: yaml.Node, where: str) -> str:
        value = self.text(node, where)
        if not _ID.match(value):
            self.fail(
                node,
                f"{where} `{value}` is not a valid id",
                "use lowercase letters, digits and _, starting with a letter",
            )
        return value

    def integer(self, node: yaml.Node, where: str, minimum: int) -> int:
        value = self.scalar(node)
        if not isinstance(value, int) or isinstance(value, bool):
            self.fail(node, f"{where} must be a whole number, not {_kind(value)}", "e.g. 3")
        if value < minimum:
            self.fail(node, f"{where} must be at least {minimum}", f"write {minimum} or more")
        return int(value)

    def number(self, node: yaml.Node, where: str) -> float:
        value = self.scalar(node)
        if not isinstance(value, int | float) or isinstance(value, bool):
            self.fail(node, f"{where} must be a number, not {_kind(value)}", "e.g. 5 or 2.5")
        return float(value)

    def boolean(self, node: yaml.Node, where: str) -> bool:
        value = self.scalar(node)
        if not isinstance(value, bool):
            self.fail(
                node, f"{where} must be true or false, not {_kind(value)}", "write true or false"
            )
        return bool(value)

    def sequence(self, node: yaml.Node, where: str) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, f"{where} must be a list", "write it as `[a, b]` or as `- a` lines")
        items: list[yaml.Node] = node.value
        return items

    def texts(self, node: yaml.Node, where: str, at: NodePath) -> tuple[str, ...]:
        result = []
        for i, item in enumerate(self.sequence(node, where)):
            text = self.attempt(None, self.text, item, f"{where} item {i + 1}")
            if text is not None:
                result.append(text)
                self.lines[(*at, i)] = _line(item)
        return tuple(result)

    # --- the form ---

    def form(self, root: yaml.Node) -> Form:
        fields = self.mapping(root, "the form", _FORM_KEYS, ())
        required = ["id", "version", "title", "service_code", "description", "keywords"]
        required += ["retention_days", "steps", "confirmation"]
        for key in self.missing(fields, required, ()):
            if key == "retention_days":
                self.report(
                    root,
                    "the form has no `retention_days`",
                    "add `retention_days: 365` (how many days personal answers are kept)",
                    rule="missing-retention",
                )
            else:
                self.report(root, f"the form has no `{key}`", f"add `{key}:` (see docs/forms.md)")

        def at_least(minimum: int) -> Callable[[yaml.Node, str], int]:
            return lambda node, where: self.integer(node, where, minimum)

        # Placeholders stand in for what is missing or broken: such a form is never returned.
        return Form(
            id=self.read_key(fields, "id", self.identifier, "the form `id`", ""),
            version=self.read_key(fields, "version", at_least(1), "`version`", 1),
            title=self.read_key(fields, "title", self.text, "`title`", ""),
            service_code=self.read_key(fields, "service_code", self.service_code, "", ""),
            description=self.read_key(fields, "description", self.text, "`description`", ""),
            keywords=self.read_key(fields, "keywords", self.keywords, "`keywords`", {}),
            retention_days=self.read_key(
                fields, "retention_days", at_least(1), "`retention_days`", 1
            ),
            steps=self.read_key(fields, "steps", self.steps, "`steps`", ()),
            confirmation=self.read_key(fields, "confirmation", self.text, "`confirmation`", ""),
            review=self.optional(fields, "review", self.boolean, "the form") is not False,
            group=self.optional(fields, "group", self.identifier, "the form"),
            path=self.path,
        )

    def service_code(self, node: yaml.Node, where: str) -> str:
        value = self.scalar(node)
        # Codes such as 001 are numbers to YAML; accept them as the digits written.
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(node.value)
        if not isinstance(value, str) or not value.strip():
            self.fail(node, "`service_code` must be text", "put the code in quotes")
        return str(value).strip()

    def keywords(self, node: yaml.Node, where: str) -> dict[str, tuple[str, ...]]:
        fields = self.mapping_any(node, where)
        result: dict[str, tuple[str, ...]] = {}
        for locale, value in fields.items():
            if not _LOCALE.match(locale):
                self.report(
                    value, f"`{locale}` in `keywords` is not a language code", "use en, af, zu, xh"
                )
                continue
            self.lines[("keywords", locale)] = _line(value)
            at: NodePath = ("keywords", locale)
            result[locale] = self.attempt((), self.texts, value, f"`keywords` for {locale}", at)
        return result

    def mapping_any(self, node: yaml.Node, where: str) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            self.fail(
                node, f"{where} must be a mapping", "one `language: [words]` line per language"
            )
        result: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            before = len(self.problems)
            key = self.attempt(None, self.scalar, key_node)
            if len(self.problems) > before:
                continue
            if not isinstance(key, str):
                self.report(key_node, f"{where} has a key that is not a plain word")
            elif key in result:
                self.report(key_node, f"{where} has `{key}` twice", "keep one of them")
            else:
                result[key] = value_node
        return result

    # --- steps ---

    def steps(self, node: yaml.Node, where: str) -> tuple[Step, ...]:
        items = self.sequence(node, where)
        if not items:
            self.fail(node, f"{where} is empty", "a form asks at least one question")
        steps = (self.attempt(None, self.step, item, index) for index, item in enumerate(items))
        return tuple(step for step in steps if step is not None)

    def step(self, node: yaml.Node, index: int) -> Step:
        at: NodePath = ("steps", index)
        where = f"step {index + 1}"
        fields = self.mapping(node, where, _STEP_KEYS, at)
        self.lines[at] = _line(node)
        before = len(self.problems)
        for key in self.missing(fields, ("id", "type", "prompt"), at):
            self.report(node, f"{where} has no `{key}`", f"add `{key}:` to the step")
        step_id = self.read_key(fields, "id", self.identifier, f"{where} `id`", "")
        if step_id in self.earlier_ids:
            self.report(
                node,
                f"step id `{step_id}` is used twice (first on line {self.earlier_ids[step_id]})",
                "give each step its own id",
                rule="duplicate-step-id",
            )
        if step_id:
            where = f"step `{step_id}`"
        step_type = self.read_key(fields, "type", self.step_type, where, None)
        options: tuple[Option, ...] = ()
        validation = Validation()
        # Options and validation are checked against the type; without one they cannot be.
        if step_type is not None:
            options = self.attempt((), self.options, fields.get("options"), step_type, where, at)
            validation = self.attempt(
                Validation(), self.validation, fields.get("validation"), step_type, where, at
            )
        personal = self.optional(fields, "personal", self.boolean, where) or False
        purpose = self.optional(fields, "purpose", self.text, where)
        if personal and purpose is None and "purpose" not in fields:
            self.report(
                node,
                f"{where} is personal but has no `purpose`",
                "add `purpose:` saying why the city needs this answer",
                rule="personal-without-purpose",
            )
        when = self.optional(fields, "when", self.text, where)
        if when is not None:
            self.attempt(None, self.condition, fields["when"], when, where, step_id)
        required = self.optional(fields, "required", self.boolean, where)
        aggregate_only = self.optional(fields, "aggregate_only", self.boolean, where) or False
        sensitive = self.optional(fields, "sensitive", self.text, where)
        consent = self.optional(fields, "consent", self.text, where)
        self.safeguards(node, fields, where, aggregate_only, sensitive, required)
        self.self_described(node, where, step_type, options, aggregate_only)
        handoff = None
        if "handoff" in fields:
            handoff = self.attempt(
                None, self.handoff, fields["handoff"], where, (*at, "handoff"), step_id
            )
        step = Step(
            id=step_id,
            type=step_type or StepType.TEXT,
            prompt=self.read_key(fields, "prompt", self.text, f"{where} `prompt`", ""),
            hint=self.optional(fields, "hint", self.text, where),
            required=required is not False,
            validation=validation,
            when=when,
            options=options,
            personal=personal,
            purpose=purpose,
            label=self.optional(fields, "label", self.text, where),
            handoff=handoff,
            aggregate_only=aggregate_only,
            sensitive=sensitive,
            consent=consent,
            line=_line(node),
        )
        if step_id:
            self.earlier_ids.setdefault(step_id, step.line)
        if len(self.problems) > before:
            raise _Abandoned
        return step

    def safeguards(
        self,
        node: yaml.Node,
        fields: dict[str, yaml.Node],
        where: str,
        aggregate_only: bool,
        sensitive: str | None,
        required: bool | None,
    ) -> None:
        """Special personal information (POPIA s26: disability, health...) is asked only with
        a stated purpose, its own consent question, and only ever counted; an answer that is
        only counted is asked after the report, as an optional question."""
        if sensitive is not None and sensitive != SPECIAL:
            self.report(
                fields["sensitive"],
                f"{where} `sensitive` is `{sensitive}`",
                "the one level is `sensitive: special`; leave it out for other answers",
            )
            return
        if sensitive == SPECIAL:
            missing = [
                key
                for key, present in (
                    ("purpose", "purpose" in fields),
                    ("consent", "consent" in fields),
                    ("aggregate_only: true", aggregate_only),
                )
                if not present
            ]
            if missing:
                self.report(
                    node,
                    f"{where} is special personal information without "
                    + ", ".join(f"`{m}`" for m in missing),
                    "a `sensitive: special` step needs `purpose:` (why the city asks), "
                    "`consent:` (its own yes/no question) and `aggregate_only: true`",
                    rule="special-without-safeguards",
                )
        elif "consent" in fields:
            self.report(
                fields["consent"],
                f"{where} has a `consent` question but is not `sensitive: special`",
                "add `sensitive: special`, or leave `consent` out",
                rule="special-without-safeguards",
            )
        if aggregate_only:
            lacks = [
                key
                for key, present in (
                    ("required: false", required is False),
                    ("purpose", "purpose" in fields),
                )
                if not present
            ]
            if lacks:
                self.report(
                    node,
                    f"{where} is `aggregate_only` without " + ", ".join(f"`{k}`" for k in lacks),
                    "an answer that is only counted is optional (`required: false`) and says "
                    "why the city asks (`purpose:`)",
                    rule="special-without-safeguards",
                )

    def self_described(
        self,
        node: yaml.Node,
        where: str,
        step_type: StepType | None,
        options: tuple[Option, ...],
        aggregate_only: bool,
    ) -> None:
        """A ``self_described`` option takes any answer that names no other option and keeps
        none of its words: right for a question that is only counted, where the words would
        never be read, and wrong for a report, where they would be lost."""
        described = [o.id for o in options if o.self_described]
        if not described:
            return
        if len(described) > 1:
            self.report(
                node,
                f"{where} has `self_described` on more than one option: "
                + ", ".join(f"`{d}`" for d in described),
                "an answer in the resident's own words can count as one option only",
            )
        if step_type is not StepType.CHOICE or not aggregate_only:
            self.report(
                node,
                f"{where} has a `self_described` option but is not an `aggregate_only` choice",
                "the words are not kept: use it only on a `choice` step with `aggregate_only: "
                "true`; a report's step takes words with a text step instead",
            )

    def handoff(self, node: yaml.Node, where: str, at: NodePath, step_id: str | None) -> Handoff:
        """``handoff: {reason: ..., when: ...}`` on a step (``when`` may name the step itself),
        ``handoff: {reason: ...}`` on an option."""
        allowed = ("reason", "when") if step_id is not None else ("reason",)
        if not isinstance(node, yaml.MappingNode):
            self.fail(
                node,
                f"{where} `handoff` must say why a person is needed",
                "write `handoff:` with `reason: <what the resident is told>` under it",
                rule="handoff-without-reason",
            )
        fields = self.mapping(node, f"{where} `handoff`", allowed, at)
        if "reason" not in fields:
            self.fail(
                node,
                f"{where} `handoff` has no `reason`",
                "add `reason:` saying what the resident is told (and why a person is needed)",
                rule="handoff-without-reason",
            )
        reason = self.text(fields["reason"], f"{where} `handoff` reason")
        when = self.optional(fields, "when", self.text, f"{where} `handoff`")
        if when is not None and step_id is not None:
            self.handoff_condition(fields["when"], when, where, step_id)
        return Handoff(reason=reason, when=when)

    def handoff_condition(self, node: yaml.Node, source: str, where: str, step_id: str) -> None:
        try:
            condition = parse_condition(source)
        except ConditionError as exc:
            self.fail(
                node,
                f"{where} `handoff` `when`: {exc.message} at column {exc.position + 1}",
                f"e.g. `{step_id} == yes`",
                rule="when-syntax",
            )
        for name in dict.fromkeys(test.name for test in condition.comparisons):
            if name != step_id and name not in self.earlier_ids:
                self.report(
                    node,
                    f"{where} `handoff` `when` refers to `{name}`, which is not this step or an earlier one",
                    f"name this step (`{step_id}`) or one asked before it",
                    rule="when-later-step" if name in self.later_ids else "when-unknown-step",
                )

    def step_type(self, node: yaml.Node, where: str) -> StepType:
        value = self.text(node, f"{where} `type`")
        try:
            return StepType(value)
        except ValueError:
            names = [t.value for t in StepType]
            close = difflib.get_close_matches(value, names, n=1)
            hint = f"did you mean `{close[0]}`?" if close else "one of: " + ", ".join(names)
            self.fail(node, f"{where} has unknown type `{value}`", hint)

    def condition(self, node: yaml.Node, source: str, where: str, step_id: str) -> None:
        try:
            condition = parse_condition(source)
        except ConditionError as exc:
            self.fail(
                node,
                f"{where} `when`: {exc.message} at column {exc.position + 1}",
                "conditions look like `size in [medium, large] and not danger`",
                rule="when-syntax",
            )
        for name in dict.fromkeys(test.name for test in condition.comparisons):
            if name in self.earlier_ids:
                continue
            if name == step_id:
                self.report(
                    node,
                    f"{where} `when` refers to the step itself",
                    "a condition can only use answers to earlier steps",
                    rule="when-later-step",
                )
                continue
            close = difflib.get_close_matches(name, list(self.earlier_ids), n=1)
            hint = f"did you mean `{close[0]}`?" if close else "use the id of an earlier step"
            # A step further down is a different mistake from a typo: say which it is.
            later = name in self.later_ids
            self.report(
                node,
                f"{where} `when` refers to `{name}`, "
                + ("which is asked later" if later else "which is not a step in this form"),
                "move the step it depends on above it" if later else hint,
                rule="when-later-step" if later else "when-unknown-step",
            )

    def options(
        self, node: yaml.Node | None, step_type: StepType, where: str, at: NodePath
    ) -> tuple[Option, ...]:
        if step_type not in _CHOICE_TYPES:
            if node is not None:
                self.fail(
                    node,
                    f"{where} has `options` but is a {step_type} step",
                    "options are for choice and multi_choice steps",
                )
            return ()
        if node is None:
            self.fail(
                self.lines[at],
                f"{where} is a {step_type} step without `options`",
                "add the options residents choose from",
            )
        items = self.sequence(node, f"{where} `options`")
        if len(items) < 2:
            self.report(node, f"{where} needs at least two options", "use a yes_no step for one")
        options: list[Option] = []
        seen: dict[str, int] = {}
        for i, item in enumerate(items):
            option = self.attempt(None, self.option, item, i, where, at)
            if option is None:
                continue
            line = self.lines[(*at, "options", i, "id")]
            if option.id in seen:
                self.report(
                    line,
                    f"option id `{option.id}` is used twice in {where} (first on line {seen[option.id]})",
                    "give each option its own id",
                    rule="duplicate-option-id",
                )
                continue
            seen[option.id] = line
            options.append(option)
        return tuple(options)

    def option(self, node: yaml.Node, index: int, where: str, at: NodePath) -> Option:
        option_at: NodePath = (*at, "options", index)
        fields = self.mapping(node, f"{where} option {index + 1}", _OPTION_KEYS, option_at)
        self.lines[option_at] = _line(node)
        before = len(self.problems)
        for key in self.missing(fields, ("id", "label"), option_at):
            self.report(node, f"{where} option {index + 1} has no `{key}`", f"add `{key}:`")
        option_id = self.read_key(fields, "id", self.identifier, f"{where} option id", "")
        name = f"{where} option `{option_id or index + 1}`"
        synonyms: tuple[str, ...] = ()
        if "synonyms" in fields:
            at_synonyms: NodePath = (*option_at, "synonyms")
            synonyms = self.attempt(
                (), self.texts, fields["synonyms"], f"{name} synonyms", at_synonyms
            )
        option = Option(
            id=option_id,
            label=self.read_key(fields, "label", self.text, f"{name} label", ""),
            synonyms=synonyms,
            group=self.optional(fields, "group", self.text, name),
            handoff=self.attempt(
                None, self.handoff, fields["handoff"], name, (*option_at, "handoff"), None
            )
            if "handoff" in fields
            else None,
            self_described=self.optional(fields, "self_described", self.boolean, name) or False,
        )
        if len(self.problems) > before:
            raise _Abandoned
        return option

    def validation(
        self, node: yaml.Node | None, step_type: StepType, where: str, at: NodePath
    ) -> Validation:
        if node is None:
            return Validation()
        allowed = _VALIDATION_KEYS.get(step_type, ())
        if not allowed:
            self.fail(
                node,
                f"{where} is a {step_type} step, which takes no `validation`",
                "remove `validation`",
            )
        # A key that belongs to another type gets its own message rather than "unknown key".
        misplaced: set[str] = set()
        if isinstance(node, yaml.MappingNode):
            for key_node, _ in node.value:
                types = [str(t) for t, keys in _VALIDATION_KEYS.items() if key_node.value in keys]
                if types and key_node.value not in allowed:
                    misplaced.add(key_node.value)
                    self.report(
                        key_node,
                        f"{where} is a {step_type} step, which takes no `{key_node.value}`",
                        f"`{key_node.value}` is for {', '.join(types)} steps; "
                        f"{step_type} takes: {', '.join(allowed)}",
                    )
        fields = self.mapping(
            node, f"{where} `validation`", allowed, (*at, "validation"), reported=misplaced
        )
        w = f"{where} validation"
        minimum = self.optional(fields, "min", self.number, w)
        maximum = self.optional(fields, "max", self.number, w)
        if minimum is not None and maximum is not None and minimum > maximum:
            self.report(fields["max"], f"{w} `max` is below `min`", "swap them")

        def length(node: yaml.Node, what: str) -> int:
            return self.integer(node, what, 0)

        min_length = self.optional(fields, "min_length", length, w)
        max_length = self.optional(fields, "max_length", length, w)
        if min_length is not None and max_length is not None and min_length > max_length:
            self.report(
                fields["max_length"], f"{w} `max_length` is below `min_length`", "swap them"
            )
        pattern = self.optional(fields, "pattern", self.text, w)
        pattern_message = self.optional(fields, "pattern_message", self.text, w)
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                self.report(fields["pattern"], f"{w} `pattern` is not a regular expression: {exc}")
            if pattern_message is None and "pattern_message" not in fields:
                self.report(
                    fields["pattern"],
                    f"{w} has a `pattern` but no `pattern_message`",
                    'add `pattern_message:` saying what to enter, e.g. "Enter the 8-digit meter number"',
                )
        elif pattern_message is not None:
            self.report(fields["pattern_message"], f"{w} has a `pattern_message` but no `pattern`")
        return Validation(
            min=minimum,
            max=maximum,
            min_length=min_length,
            max_length=max_length,
            pattern=pattern,
            pattern_message=pattern_message,
            max_days_past=self.optional(fields, "max_days_past", length, w),
            max_days_future=self.optional(fields, "max_days_future", length, w),
        )


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, yaml.MappingNode):
        return "a mapping"
    if isinstance(value, yaml.SequenceNode):
        return "a list"
    if value is None:
        return "empty"
    return type(value).__name__


def _compose(text: str, path: str) -> yaml.Node:
    if len(text) > _MAX_BYTES:
        raise FormError.single(path, 1, "the file is too large to be a form", "split it", "syntax")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:
        raise FormError.single(path, 1, "the YAML is nested too deeply", "", "syntax") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = int(mark.line) + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "it is not valid YAML"
        raise FormError.single(
            path, line, f"YAML syntax: {problem}", "check indentation, colons and quotes", "syntax"
        ) from None
    except yaml.YAMLError as exc:
        # ReaderError (control characters, binary) has a position but no mark.
        position = getattr(exc, "position", 0)
        line = text.count("\n", 0, position) + 1 if isinstance(position, int) else 1
        reason = getattr(exc, "reason", "") or "it is not YAML text"
        raise FormError.single(
            path,
            line,
            f"not a YAML text file: {reason}",
            "save the form as plain UTF-8 text",
            "syntax",
        ) from None
    if root is None:
        raise FormError.single(
            path, 1, "the file is empty", "see docs/forms.md for an example", "schema"
        )
    return root


def parse_form_lines(text: str, path: str = "<string>") -> tuple[Form, SourceLines]:
    """Like ``parse_form``, and also the line of every value, keyed by its place in the form."""
    root = _compose(text, path)
    lines: SourceLines = {}
    builder = _Builder(path, lines)
    if isinstance(root, yaml.MappingNode):
        builder.later_ids = frozenset(_declared_step_ids(root))
    form = builder.attempt(None, builder.form, root)
    if builder.problems or form is None:
        raise FormError(builder.problems)
    return form, lines


def _declared_step_ids(root: yaml.MappingNode) -> Iterable[str]:
    for key, value in root.value:
        if getattr(key, "value", None) == "steps" and isinstance(value, yaml.SequenceNode):
            for item in value.value:
                if isinstance(item, yaml.MappingNode):
                    for k, v in item.value:
                        if getattr(k, "value", None) == "id" and isinstance(v, yaml.ScalarNode):
                            yield str(v.value)


def parse_form(text: str, path: str = "<string>") -> Form:
    """Parse one form from YAML text; raises ``FormError`` with every problem found in it.

    Example::

        parse_form(Path("pothole.yaml").read_text(), "pothole.yaml").id   # 'pothole'
    """
    return parse_form_lines(text, path)[0]


def read_form_text(path: Path) -> str:
    """The text of a form file, or a FormError for a file that is missing or not UTF-8."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise FormError.single(
            str(path), 1, f"cannot read the file: {exc.strerror}", "", "syntax"
        ) from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise FormError.single(
            str(path), line, "the file is not UTF-8 text", "save it as UTF-8", "syntax"
        ) from None


def load_form(path: str | Path) -> Form:
    """Load one form file; raises ``FormError`` with the file and line of every problem."""
    path = Path(path)
    return parse_form(read_form_text(path), str(path))


def form_files(folder: str | Path) -> list[Path]:
    """The ``*.yaml`` and ``*.yml`` files under ``folder``, in name order."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def _menu_order(form: Form) -> tuple[str, str, str]:
    return (form.group or "", form.title.casefold(), form.id)


def load_forms(folder: str | Path) -> dict[str, Form]:
    """Every form under ``folder`` by id, in menu order (group, then title).

    Raises one ``FormError`` with the problems of every file that does not load, and of two
    files with the same form id (rule ``duplicate-form-id``).
    """
    forms: dict[str, Form] = {}
    problems: list[FormProblem] = []
    for file in form_files(folder):
        try:
            form = load_form(file)
        except FormError as exc:
            problems += exc.problems
            continue
        if form.id in forms:
            problems.append(
                FormProblem(
                    str(file),
                    1,
                    f"form id `{form.id}` is also used by {forms[form.id].path}",
                    "give each form its own id",
                    "duplicate-form-id",
                )
            )
            continue
        forms[form.id] = form
    if problems:
        raise FormError(problems)
    return {form.id: form for form in sorted(forms.values(), key=_menu_order)}


def standard_forms_dir() -> Path:
    """The folder of the forms citybot ships (``forms_runtime/standard``)."""
    return Path(__file__).resolve().parent / "standard"


@cache
def _standard_forms() -> dict[str, Form]:
    return load_forms(standard_forms_dir())


def standard_forms() -> dict[str, Form]:
    """The standard forms by id, in menu order; loaded once per process."""
    return dict(_standard_forms())
