"""``citybot forms lint``: every rule a form must meet, each reported with file, line and a fix.

A form is first loaded (``forms_runtime.loader``); a form that does not load gets every problem
the loader found in it (schema, ids, conditions), and the rest of the checks, which need a whole
form, run once it loads. A loaded form is then checked against the rules in
``RULES``: translations and keywords in every configured locale, one SMS segment per prompt in
every locale, GSM-7-friendly characters, lists short enough for SMS, conditions that name real
options and can come true, personal data marked as such, and GOV.UK style in English texts.

Errors make ``citybot forms lint`` exit 1; warnings are advice.

Example::

    for issue in lint_paths(["forms_runtime/standard"]):
        print(f"{issue.path}:{issue.line}: {issue.severity} [{issue.rule}] {issue.message}")
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forms_runtime import i18n
from forms_runtime.expressions import Comparison, Condition, parse_condition
from forms_runtime.loader import (
    FormError,
    SourceLines,
    form_files,
    parse_form_lines,
    read_form_text,
)
from forms_runtime.model import Form, Step, StepType
from forms_runtime.sms import GSM7_EXTENDED, is_gsm7, segments, to_gsm7, ucs2_forcing_chars
from forms_runtime.ussd_screen import MAX_SCREEN, fits_screen

__all__ = ["RULES", "LintIssue", "lint_paths", "lint_text"]

ERROR = "error"
WARNING = "warning"

# Every rule id the linter (and the loader before it) can report, with what it guards.
RULES: dict[str, str] = {
    "syntax": "the file is YAML text (UTF-8, valid syntax)",
    "schema": "the form follows docs/forms.md: known keys, right types, required fields",
    "missing-retention": "the form says how long personal answers are kept",
    "duplicate-step-id": "step ids are unique in a form",
    "duplicate-option-id": "option ids are unique in a step",
    "duplicate-form-id": "form ids are unique across files",
    "when-syntax": "a `when` condition parses",
    "when-unknown-step": "a `when` names steps of this form",
    "when-later-step": "a `when` names only earlier steps",
    "when-unknown-option": "a `when` compares a choice step with one of its option ids",
    "when-type-mismatch": "a `when` compares a step with a value of its kind",
    "unreachable-step": "every step can be asked: its `when` can come true",
    "personal-without-purpose": "a personal step says why the city needs it",
    "personal-not-marked": "name, phone and email steps are marked `personal`",
    "special-without-safeguards": (
        "a `sensitive: special` step has a `purpose`, its own `consent` question and "
        "`aggregate_only: true`; an `aggregate_only` step is optional and has a `purpose`"
    ),
    "missing-translation": "every text has a translation in every configured locale",
    "missing-keywords": "the service picker has keywords in every configured locale",
    "sms-prompt-too-long": "a prompt fits one SMS segment in every locale",
    "sms-hint-too-long": "a hint fits one SMS segment in every locale (warning)",
    "ucs2-character": "no character forces UCS-2 where a GSM-7 one would do",
    "too-many-options": "a list of more than 9 options is grouped for SMS",
    "ussd-screen-too-long": "a step's question fits one USSD screen with its first choice, "
    "in every locale",
    "govuk-style": "English texts say what to do, without invalid/please/sorry/error/wrong",
    "handoff-without-reason": "a hand-off to a person says why, in words the resident is told",
    "handoff-never": "a step's hand-off `when` can come true",
}


@dataclass(frozen=True, slots=True)
class LintIssue:
    path: str
    line: int
    rule: str
    message: str
    hint: str
    severity: str  # "error" | "warning"


Translate = Callable[[str, str], str]
HasTranslation = Callable[[str, str], bool]

_MAX_OPTIONS = 9
# Texts a resident reads as instructions or messages; option labels and titles are names of
# things, where "Billing error" is a fair label.
_STYLE_KINDS = frozenset(
    {"prompt", "hint", "pattern_message", "purpose", "consent", "confirmation", "handoff"}
)
_STYLE_WORDS = re.compile(r"\b(invalid|please|sorry|error|wrong)\b", re.IGNORECASE)
_STYLE_HINTS = {
    "invalid": "say what to enter instead, e.g. 'Enter a date, like 3 Dec'",
    "please": "leave it out and say what to do: 'Enter ...', 'Send ...'",
    "sorry": "leave it out and say what to do next",
    "error": "say what to do, not that something failed",
    "wrong": "say what to do, never blame the resident",
}
_PERSONAL_TYPES = (StepType.NAME, StepType.PHONE, StepType.EMAIL)
_CHOICE_TYPES = (StepType.CHOICE, StepType.MULTI_CHOICE)
_ORDER_OPS = frozenset({"<", ">", "<=", ">="})
# Bounds the search for an answer that makes a `when` true; past it the step counts as reachable.
_MAX_COMBINATIONS = 50_000


@dataclass(frozen=True, slots=True)
class _Text:
    kind: str  # the field: title, prompt, label, synonym, ...
    where: str  # "step `size` option `large` label"
    line: int
    text: str


def _form_texts(form: Form, lines: SourceLines) -> Iterator[_Text]:
    for kind in ("title", "description", "confirmation"):
        yield _Text(kind, f"the form {kind}", lines.get((kind,), 1), getattr(form, kind))
    for i, step in enumerate(form.steps):
        at: tuple[str | int, ...] = ("steps", i)
        where = f"step `{step.id}`"
        for kind in ("prompt", "hint", "label", "purpose", "consent"):
            value = getattr(step, kind)
            if value is not None:
                yield _Text(kind, f"{where} {kind}", lines.get((*at, kind), step.line), value)
        if step.handoff is not None:
            line = lines.get((*at, "handoff", "reason"), step.line)
            yield _Text("handoff", f"{where} handoff reason", line, step.handoff.reason)
        message = step.validation.pattern_message
        if message is not None:
            line = lines.get((*at, "validation", "pattern_message"), step.line)
            yield _Text("pattern_message", f"{where} pattern_message", line, message)
        for j, option in enumerate(step.options):
            o_at = (*at, "options", j)
            o_where = f"{where} option `{option.id}`"
            yield _Text(
                "label", f"{o_where} label", lines.get((*o_at, "label"), step.line), option.label
            )
            for k, synonym in enumerate(option.synonyms):
                line = lines.get((*o_at, "synonyms", k), step.line)
                yield _Text("synonym", f"{o_where} synonym", line, synonym)
            if option.handoff is not None:
                line = lines.get((*o_at, "handoff", "reason"), step.line)
                yield _Text("handoff", f"{o_where} handoff reason", line, option.handoff.reason)


class _FormLinter:
    def __init__(
        self,
        form: Form,
        lines: SourceLines,
        locales: Sequence[str],
        has_translation: HasTranslation,
        translate: Translate,
    ) -> None:
        self.form = form
        self.lines = lines
        self.locales = tuple(locales)
        self.has_translation = has_translation
        self.translate = translate
        self.path = form.path or "<string>"
        self.issues: list[LintIssue] = []
        self.explained: set[str] = set()

    def add(self, line: int, rule: str, message: str, hint: str, severity: str = ERROR) -> None:
        self.issues.append(LintIssue(self.path, line, rule, message, hint, severity))

    def run(self) -> list[LintIssue]:
        self.keywords()
        for text in _form_texts(self.form, self.lines):
            self.translations(text)
            self.characters(text)
            self.style(text)
        for i, step in enumerate(self.form.steps):
            self.sms_length(step, i)
            self.ussd_screen(step, i)
            self.option_count(step, i)
            self.personal(step)
            self.when_values(step, i)
        self.reachability()
        return self.issues

    # --- locales ---

    def keywords(self) -> None:
        line = self.lines.get(("keywords",), 1)
        missing = [loc for loc in self.locales if not self.form.keywords.get(loc)]
        if missing:
            self.add(
                line,
                "missing-keywords",
                f"no keywords for {', '.join(missing)}",
                "add a list of the words residents type, e.g. `"
                + missing[0]
                + ": [word, another word]`",
            )

    def translated(self, text: _Text) -> Iterator[tuple[str, str]]:
        """(locale, text) for the English source and every translation that exists."""
        for locale in self.locales:
            if locale == i18n.DEFAULT_LOCALE:
                yield locale, text.text
            elif self.has_translation(locale, text.text):
                yield locale, self.translate(locale, text.text)

    def translations(self, text: _Text) -> None:
        missing = [
            loc
            for loc in self.locales
            if loc != i18n.DEFAULT_LOCALE and not self.has_translation(loc, text.text)
        ]
        if missing:
            catalogs = ", ".join(
                f"forms_runtime/locales/{loc}/LC_MESSAGES/citybot.po" for loc in missing
            )
            self.add(
                text.line,
                "missing-translation",
                f"{text.where} {_quote(text.text)} has no translation in {', '.join(missing)}",
                f"run `make locales`, then translate it in {catalogs}",
            )

    def characters(self, text: _Text) -> None:
        for locale, value in self.translated(text):
            chars = ucs2_forcing_chars(value)
            if not chars:
                continue
            names = ", ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in chars)
            replacements = ", ".join(f"{ch!r} -> {to_gsm7(ch)!r}" for ch in chars)
            where = (
                text.where
                if locale == i18n.DEFAULT_LOCALE
                else f"the {locale} translation of {text.where}"
            )
            self.add(
                text.line,
                "ucs2-character",
                f"{where} uses {names}, which makes the SMS UCS-2 (70 characters, not 160)",
                f"write {replacements}",
            )

    # --- SMS ---

    def sms_length(self, step: Step, index: int) -> None:
        for kind, rule, severity in (
            ("prompt", "sms-prompt-too-long", ERROR),
            # A special step's consent question is asked on its own, like a prompt.
            ("consent", "sms-prompt-too-long", ERROR),
            ("hint", "sms-hint-too-long", WARNING),
        ):
            source = getattr(step, kind)
            if source is None:
                continue
            line = self.lines.get(("steps", index, kind), step.line)
            text = _Text(kind, f"step `{step.id}` {kind}", line, source)
            for locale, value in self.translated(text):
                if segments(value) > 1:
                    self.add(line, rule, *_too_long(text.where, locale, value), severity)

    def ussd_screen(self, step: Step, index: int) -> None:
        """USSD shows the prompt (and hint) above the numbered choices, paged with "00 More":
        the question must share its page with at least the first choice, or the resident is
        asked to choose before seeing anything to choose from (``channels.ussd_screens``)."""
        for locale in self.locales:
            text = self.in_locale(locale, step.prompt)
            # A place question's hint speaks of pins: USSD replaces it with its place search.
            if step.hint and step.type is not StepType.LOCATION:
                text += "\n" + self.in_locale(locale, step.hint)
            labels = [self.in_locale(locale, o.label) for o in step.options]
            if fits_screen(text, labels, locale=locale) or fits_screen(
                text, labels[:1], locale=locale, more=True
            ):
                continue
            self.add(
                self.lines.get(("steps", index, "prompt"), step.line),
                "ussd-screen-too-long",
                f"step `{step.id}` in {locale}: its prompt"
                + (", hint" if step.hint else "")
                + (" and first choice" if labels else "")
                + f' need more than one USSD screen ({MAX_SCREEN} characters with "00 More" '
                'and "0 Back")',
                "shorten the prompt or move detail out of the hint",
            )

    def in_locale(self, locale: str, text: str) -> str:
        if locale == i18n.DEFAULT_LOCALE or not self.has_translation(locale, text):
            return text
        return self.translate(locale, text)

    def option_count(self, step: Step, index: int) -> None:
        if len(step.options) <= _MAX_OPTIONS:
            return
        line = self.lines.get(("steps", index, "options"), step.line)
        ungrouped = [o.id for o in step.options if o.group is None]
        if ungrouped:
            self.add(
                line,
                "too-many-options",
                f"step `{step.id}` has {len(step.options)} options and "
                f"{len(ungrouped)} without a `group` ({', '.join(ungrouped[:3])}...)",
                f"SMS shows at most {_MAX_OPTIONS} numbered options: give every option a `group`, "
                "or split the step",
            )
            return
        groups: dict[str, int] = {}
        for option in step.options:
            groups[option.group or ""] = groups.get(option.group or "", 0) + 1
        crowded = [g for g, n in groups.items() if n > _MAX_OPTIONS]
        if len(groups) > _MAX_OPTIONS or crowded:
            self.add(
                line,
                "too-many-options",
                f"step `{step.id}` groups its options into {len(groups)} groups"
                + (f"; {', '.join(crowded)} has more than {_MAX_OPTIONS}" if crowded else ""),
                f"use at most {_MAX_OPTIONS} groups of at most {_MAX_OPTIONS} options",
            )

    # --- privacy and style ---

    def personal(self, step: Step) -> None:
        if step.type in _PERSONAL_TYPES and not step.personal:
            self.add(
                step.line,
                "personal-not-marked",
                f"step `{step.id}` asks for a {step.type}, which is personal data",
                "add `personal: true` and a `purpose:` saying why the city needs it",
            )

    def style(self, text: _Text) -> None:
        if text.kind not in _STYLE_KINDS:
            return
        for word in dict.fromkeys(m.group(1).lower() for m in _STYLE_WORDS.finditer(text.text)):
            self.add(
                text.line,
                "govuk-style",
                f"{text.where} says {word!r}: {_quote(text.text)}",
                _STYLE_HINTS[word],
                WARNING,
            )

    # --- conditions ---

    def when_values(self, step: Step, index: int) -> None:
        if step.when is not None:
            line = self.lines.get(("steps", index, "when"), step.line)
            for test in parse_condition(step.when).comparisons:
                target = self.form.step(test.name)
                for problem in _value_problems(test, target):
                    self.add(line, *problem)
                    # That step is unreachable too, but the value is the mistake to report.
                    self.explained.add(step.id)
        if step.handoff is not None and step.handoff.when is not None:
            line = self.lines.get(("steps", index, "handoff", "when"), step.line)
            for test in parse_condition(step.handoff.when).comparisons:
                for problem in _value_problems(test, self.form.step(test.name)):
                    self.add(line, *problem)
                    self.explained.add(f"handoff:{step.id}")

    def reachability(self) -> None:
        domains: dict[str, list[Any]] = {}
        literals = _literals_by_step(self.form)
        for index, step in enumerate(self.form.steps):
            reachable = True
            if step.when is not None:
                condition = parse_condition(step.when)
                reachable = _satisfiable(condition, domains)
                if not reachable and step.id not in self.explained:
                    self.unreachable(step, index, condition, domains)
            domains[step.id] = _domain(step, literals.get(step.id, []), reachable)
            if reachable:
                self.handoff_reachable(step, index, domains)

    def handoff_reachable(self, step: Step, index: int, domains: Mapping[str, list[Any]]) -> None:
        """A step's hand-off whose `when` no answer can make true would never call a person."""
        handoff = step.handoff
        if handoff is None or handoff.when is None or f"handoff:{step.id}" in self.explained:
            return
        condition = parse_condition(handoff.when)
        # Asked means answered: the step's own "not answered" stands for no answer yet.
        answered = {**domains, step.id: [v for v in domains[step.id] if v is not None]}
        if _satisfiable(condition, answered):
            return
        line = self.lines.get(("steps", index, "handoff", "when"), step.line)
        self.add(
            line,
            "handoff-never",
            f"step `{step.id}` hand-off `{handoff.when}` is false for every possible answer",
            "check the condition: a person would never be asked for",
        )

    def unreachable(
        self, step: Step, index: int, condition: Condition, domains: Mapping[str, list[Any]]
    ) -> None:
        line = self.lines.get(("steps", index, "when"), step.line)
        never = sorted(n for n in condition.names if domains.get(n) == [None])
        if never:
            reason = f"it depends on {', '.join(f'`{n}`' for n in never)}, which is never asked"
            hint = "fix the step it depends on first"
        else:
            reason = f"`{step.when}` is false for every possible answer"
            hint = "check the condition: a single choice cannot equal two options at once"
        self.add(line, "unreachable-step", f"step `{step.id}` can never be asked: {reason}", hint)


def _too_long(where: str, locale: str, value: str) -> tuple[str, str]:
    in_locale = "" if locale == i18n.DEFAULT_LOCALE else f" in {locale}"
    if is_gsm7(value):
        size = sum(2 if ch in GSM7_EXTENDED else 1 for ch in value)
        return (
            f"{where}{in_locale} is {size} GSM-7 characters; one SMS holds 160",
            "shorten it, or move detail into the hint",
        )
    size = len(value.encode("utf-16-le")) // 2
    forcing = [ch for ch in dict.fromkeys(value) if not is_gsm7(ch)][:5]
    return (
        f"{where}{in_locale} is {size} UCS-2 characters (because of "
        f"{', '.join(repr(ch) for ch in forcing)}); one SMS holds 70",
        "shorten it to 70 characters, or avoid the characters that need UCS-2",
    )


def _quote(text: str, limit: int = 60) -> str:
    short = text if len(text) <= limit else text[: limit - 3] + "..."
    return f'"{short}"'


def _value_problems(test: Comparison, target: Step) -> Iterator[tuple[str, str, str]]:
    """(rule, message, hint) for each value in ``test`` that cannot match ``target``'s answers."""
    name = f"`{target.id}`"
    if test.op in _ORDER_OPS and target.type in (*_CHOICE_TYPES, StepType.YES_NO):
        yield (
            "when-type-mismatch",
            f"{name} is a {target.type} step, so `{test.op}` is never true",
            "compare it with == or in [...]",
        )
        return
    for value in test.values:
        if target.type in _CHOICE_TYPES:
            ids = [o.id for o in target.options]
            if value.kind == "number" or value.value not in ids:
                close = difflib.get_close_matches(str(value.value), ids, n=1)
                yield (
                    "when-unknown-option",
                    f"{name} has no option `{_shown(value.value)}`",
                    f"did you mean `{close[0]}`?" if close else "options: " + ", ".join(ids),
                )
        elif target.type is StepType.YES_NO:
            if value.kind != "word" or value.value not in ("yes", "no"):
                yield (
                    "when-type-mismatch",
                    f"{name} is a yes_no step, compared with `{_shown(value.value)}`",
                    f"write `{target.id} == yes` or `{target.id} == no`",
                )
        elif target.type is StepType.NUMBER and value.kind != "number":
            yield (
                "when-type-mismatch",
                f"{name} is a number step, compared with `{_shown(value.value)}`",
                f"compare it with a number, e.g. `{target.id} > 3`",
            )


def _shown(value: str | float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _literals_by_step(form: Form) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for step in form.steps:
        handoff_when = step.handoff.when if step.handoff is not None else None
        for source in (step.when, handoff_when):
            if source is None:
                continue
            for test in parse_condition(source).comparisons:
                found.setdefault(test.name, []).extend(lit.value for lit in test.values)
    return found


def _domain(step: Step, literals: list[Any], reachable: bool) -> list[Any]:
    """Answers that stand for every way ``step`` can be answered, as far as conditions can tell."""
    if not reachable:
        return [None]
    # An optional step, or one asked only sometimes, may be empty when later steps are decided.
    empty: list[Any] = [None] if (not step.required or step.when is not None) else []
    if step.type is StepType.YES_NO:
        return [True, False, *empty]
    ids = [o.id for o in step.options]
    if step.type is StepType.CHOICE:
        return [*ids, *empty]
    if step.type is StepType.MULTI_CHOICE:
        # Only membership of the options conditions mention matters; one unmentioned option
        # stands for all the others.
        named = [i for i in ids if i in literals][:12]
        others = [i for i in ids if i not in named][:1]
        answers: list[Any] = []
        for size in range(len(named) + 1):
            for chosen in itertools.combinations(named, size):
                for extra in (others, []) if others else ([],):
                    if chosen or extra:
                        answers.append([*chosen, *extra])
        return [*answers, *empty]
    values: list[Any] = ["\x00an answer no condition names", *empty]
    for literal in dict.fromkeys(literals):
        if isinstance(literal, float):
            values += [literal, literal - 1, literal + 1, literal - 0.5, literal + 0.5]
        else:
            values.append(literal)
    if step.type in (StepType.LOCATION, StepType.PHOTO):
        values = [{"answered": True}, *empty]
    return values


def _satisfiable(condition: Condition, domains: Mapping[str, list[Any]]) -> bool:
    names = sorted(condition.names)
    choices = [domains.get(name, [None]) for name in names]
    total = 1
    for choice in choices:
        total *= max(len(choice), 1)
    if total > _MAX_COMBINATIONS:
        return True
    return any(
        condition.evaluate(dict(zip(names, combo, strict=True)))
        for combo in itertools.product(*choices)
    )


def _load_issues(error: FormError) -> list[LintIssue]:
    return [LintIssue(p.path, p.line, p.rule, p.message, p.hint, ERROR) for p in error.problems]


def _lint_form(
    text: str,
    path: str,
    locales: Sequence[str],
    has_translation: HasTranslation,
    translate: Translate,
) -> tuple[Form | None, SourceLines, list[LintIssue]]:
    try:
        form, lines = parse_form_lines(text, path)
    except FormError as exc:
        return None, {}, _load_issues(exc)
    linter = _FormLinter(form, lines, locales, has_translation, translate)
    return form, lines, linter.run()


def _sorted(issues: list[LintIssue]) -> list[LintIssue]:
    return sorted(issues, key=lambda i: (i.path, i.line, i.severity != ERROR, i.rule, i.message))


def lint_text(
    text: str,
    path: str = "<string>",
    *,
    locales: Sequence[str] = i18n.LOCALES,
    has_translation: HasTranslation = i18n.has_translation,
    translate: Translate = i18n.tr,
) -> list[LintIssue]:
    """Lint one form given as YAML text; ``path`` is only used in the issues.

    Example::

        lint_text("id: x\\n", "x.yaml")[0].rule   # 'schema' (no version, title, ...)
    """
    return _sorted(_lint_form(text, path, locales, has_translation, translate)[2])


def lint_paths(
    paths: Sequence[str | Path],
    *,
    locales: Sequence[str] = i18n.LOCALES,
    has_translation: HasTranslation = i18n.has_translation,
    translate: Translate = i18n.tr,
) -> list[LintIssue]:
    """Lint form files and folders (searched for ``*.yaml`` / ``*.yml``), and form ids across them.

    Example::

        errors = [i for i in lint_paths(["forms/"]) if i.severity == "error"]
    """
    files: list[Path] = []
    issues: list[LintIssue] = []
    for entry in map(Path, paths):
        if entry.is_dir():
            files += form_files(entry)
        elif entry.exists():
            files.append(entry)
        else:
            issues.append(
                LintIssue(
                    str(entry), 1, "syntax", "no such file or folder", "check the path", ERROR
                )
            )
    first_seen: dict[str, Form] = {}
    for file in dict.fromkeys(files):
        try:
            text = read_form_text(file)
        except FormError as exc:
            issues += _load_issues(exc)
            continue
        form, lines, found = _lint_form(text, str(file), locales, has_translation, translate)
        issues += found
        if form is None:
            continue
        if form.id in first_seen:
            issues.append(
                LintIssue(
                    str(file),
                    lines.get(("id",), 1),
                    "duplicate-form-id",
                    f"form id `{form.id}` is also used by {first_seen[form.id].path}",
                    "give each form its own id",
                    ERROR,
                )
            )
        else:
            first_seen[form.id] = form
    return _sorted(issues)
