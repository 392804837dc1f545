"""Loading form YAML: the model built, and schema errors with line and hint."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.cli import main
from forms_runtime.loader import (
    FormError,
    load_form,
    load_forms,
    parse_form,
    standard_forms,
    standard_forms_dir,
)
from forms_runtime.model import StepType

DOCS_EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "forms.md"


def _docs_example() -> str:
    text = DOCS_EXAMPLE.read_text(encoding="utf-8")
    return text.split("```yaml\n", 1)[1].split("```", 1)[0]


MINIMAL = """\
id: broken
version: 1
title: Broken form
service_code: TEST-1
description: A form.
retention_days: 30
keywords:
  en: [broken]
confirmation: Thank you.
steps:
  - id: kind
    type: choice
    prompt: What kind of problem is it?
    options:
      - id: small
        label: Small
      - id: large
        label: Large
"""


def _with_step(step: str) -> str:
    return MINIMAL + textwrap.indent(textwrap.dedent(step), "  ")


def _error(text: str) -> FormError:
    with pytest.raises(FormError) as caught:
        parse_form(text, "form.yaml")
    return caught.value


def test_the_docs_example_loads_into_the_model() -> None:
    form = parse_form(_docs_example(), "pothole.yaml")
    assert form.id == "pothole"
    assert form.version == 3
    assert form.service_code == "ROADS-POTHOLE"
    assert form.retention_days == 365
    assert form.keywords["af"] == ("slaggat", "gat in die pad", "padskade")
    assert [s.id for s in form.steps] == ["location", "size", "danger", "photo", "updates", "phone"]
    size = form.step("size")
    assert size.type is StepType.CHOICE
    assert size.label == "Size"
    assert [o.id for o in size.options] == ["small", "medium", "large"]
    assert size.options[2].synonyms == ("huge", "massive")
    assert form.step("photo").required is False
    phone = form.step("phone")
    assert phone.when == "updates == yes"
    assert phone.personal and phone.purpose
    assert phone.line == 40
    assert form.review is True
    assert form.path == "pothole.yaml"
    assert form.collects_personal_data


def test_validation_per_type() -> None:
    form = parse_form(
        _with_step("""\
        - id: count
          type: number
          prompt: How many?
          validation: {min: 1, max: 10}
        - id: meter
          type: text
          prompt: What is the meter number?
          validation:
            pattern: '\\d{8}'
            pattern_message: Enter the 8-digit meter number
            max_length: 8
        - id: seen
          type: date
          prompt: When did it start?
          validation: {max_days_past: 30, max_days_future: 0}
        """)
    )
    assert form.step("count").validation.max == 10
    assert form.step("meter").validation.pattern == "\\d{8}"
    assert form.step("seen").validation.max_days_future == 0


@pytest.mark.parametrize(
    ("step", "line", "fragment", "hint"),
    [
        (
            "- id: x\n  promt: Hi\n  type: text\n",
            20,
            "unknown key `promt`",
            "did you mean `prompt`?",
        ),
        ("- id: x\n  type: txt\n  prompt: Hi\n", 20, "unknown type `txt`", "did you mean `text`?"),
        ("- id: x\n  type: text\n", 19, "has no `prompt`", "add `prompt:`"),
        ("- id: X1\n  type: text\n  prompt: Hi\n", 19, "not a valid id", "lowercase"),
        ("- id: x\n  type: choice\n  prompt: Hi\n", 19, "without `options`", "add the options"),
        (
            "- id: x\n  type: choice\n  prompt: Hi\n  options:\n    - {id: no, label: No}\n"
            "    - {id: b, label: B}\n",
            23,
            "must be text, not `false`",
            "put the word in quotes",
        ),
        ("- id: x\n  type: text\n  prompt: Hi\n  options: []\n", 22, "has `options`", "choice"),
        ("- id: x\n  type: text\n  prompt: Hi\n  required: maybe\n", 22, "true or false", ""),
        (
            "- id: x\n  type: yes_no\n  prompt: Hi\n  validation: {min: 1}\n",
            22,
            "no `validation`",
            "",
        ),
        (
            "- id: x\n  type: number\n  prompt: Hi\n  validation: {min_length: 1}\n",
            22,
            "takes no `min_length`",
            "is for text, long_text, name steps",
        ),
        (
            "- id: x\n  type: number\n  prompt: Hi\n  validation: {min: 5, max: 1}\n",
            22,
            "below `min`",
            "swap",
        ),
        (
            "- id: x\n  type: text\n  prompt: Hi\n  validation: {pattern: '('}\n",
            22,
            "not a regular expression",
            "",
        ),
        (
            "- id: x\n  type: text\n  prompt: Hi\n  validation: {pattern: 'a'}\n",
            22,
            "no `pattern_message`",
            "pattern_message",
        ),
        ("- id: x\n  type: text\n  prompt: ''\n", 21, "is empty", ""),
        ("- id: x\n  type: text\n  prompt: 2024-13-45\n", 21, "cannot read", "quotes"),
        ("- id: x\n  type: text\n  prompt: Hi\n  prompt: Ho\n", 22, "twice", ""),
        ("- just text\n", 19, "must be a mapping", ""),
    ],
)
def test_schema_errors_have_line_message_and_hint(
    step: str, line: int, fragment: str, hint: str
) -> None:
    error = _error(MINIMAL + textwrap.indent(step, "  "))
    assert (error.path, error.line, error.rule) == ("form.yaml", line, "schema")
    assert fragment in error.message
    assert hint in error.hint
    assert str(error).startswith(f"form.yaml:{line}: ")


@pytest.mark.parametrize(
    ("change", "rule", "line"),
    [
        (("retention_days: 30\n", ""), "missing-retention", 1),
        (("retention_days: 30\n", "retention_days: 0\n"), "schema", 6),
        (("version: 1\n", "version: two\n"), "schema", 2),
        (("id: broken\n", "id: Broken Form\n"), "schema", 1),
        (("  en: [broken]\n", "  en: broken\n"), "schema", 8),
        (("steps:\n", "stepz:\n"), "schema", 10),
    ],
)
def test_form_level_errors(change: tuple[str, str], rule: str, line: int) -> None:
    error = _error(MINIMAL.replace(*change))
    assert (error.rule, error.line) == (rule, line)


def test_references_in_when_are_checked_at_load() -> None:
    unknown = _error(_with_step("- id: x\n  type: text\n  prompt: Hi\n  when: knd == small\n"))
    assert (unknown.rule, unknown.line, unknown.hint) == (
        "when-unknown-step",
        22,
        "did you mean `kind`?",
    )
    itself = _error(_with_step("- id: x\n  type: yes_no\n  prompt: Hi\n  when: x == yes\n"))
    assert itself.rule == "when-later-step"
    syntax = _error(_with_step("- id: x\n  type: text\n  prompt: Hi\n  when: kind ==\n"))
    assert (syntax.rule, syntax.line) == ("when-syntax", 22)
    assert "column 8" in syntax.message


def test_a_form_error_carries_every_problem_in_line_order() -> None:
    text = (
        MINIMAL.replace("version: 1", "version: two")
        .replace("retention_days: 30\n", "")
        .replace("      - id: large", "      - id: small")
    )
    text += textwrap.indent("- id: x\n  promt: Hi\n  type: txt\n  when: knd == small\n", "  ")
    error = _error(text)
    assert [(p.line, p.rule) for p in error.problems] == [
        (1, "missing-retention"),
        (2, "schema"),  # version
        (16, "duplicate-option-id"),
        (19, "schema"),  # promt: did you mean prompt? (so not also "has no `prompt`")
        (20, "schema"),  # type txt
        (21, "when-unknown-step"),
    ]
    assert (error.line, error.rule) == (1, "missing-retention")
    assert str(error).splitlines() == [str(p) for p in error.problems]


def test_one_mistake_is_one_problem() -> None:
    # A broken step or option is skipped whole: what follows from it is not reported again.
    error = _error(_with_step("- id: x\n  type: choice\n  prompt: Hi\n"))
    assert len(error.problems) == 1
    later = _with_step("- id: x\n  type: txt\n  prompt: Hi\n- id: y\n  type: text\n")
    error = _error(later + "    prompt: Ho\n    when: x == yes\n")
    assert [p.message for p in error.problems] == ["step `x` has unknown type `txt`"]


def test_load_forms_reports_the_problems_of_every_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(MINIMAL.replace("version: 1", "version: 0"))
    (tmp_path / "b.yaml").write_text(MINIMAL.replace("title: Broken form", "title: ''"))
    with pytest.raises(FormError) as caught:
        load_forms(tmp_path)
    assert [(Path(p.path).name, p.line) for p in caught.value.problems] == [
        ("a.yaml", 2),
        ("b.yaml", 3),
    ]


def test_service_codes_written_as_numbers_keep_their_digits() -> None:
    form = parse_form(MINIMAL.replace("service_code: TEST-1", "service_code: 007"))
    assert form.service_code == "007"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("id: [\n", 2),
        ("a: 1\n b: 2\n", 2),
        ("id: x\n---\nid: y\n", 2),
        ("\x00\x01", 1),
        ("id: ok\ntitle: \x07\n", 2),
        ("[" * 5000, 1),
    ],
)
def test_broken_yaml_is_a_syntax_error_with_its_line(text: str, line: int) -> None:
    error = _error(text)
    assert (error.rule, error.line) == ("syntax", line)


@pytest.mark.parametrize("text", ["", "# only a comment\n", "just words", "- a\n- b\n", "42"])
def test_a_file_that_is_not_a_mapping_is_a_schema_error(text: str) -> None:
    assert _error(text).rule == "schema"


def test_load_form_reports_files_that_are_not_text(tmp_path: Path) -> None:
    junk = tmp_path / "junk.yaml"
    junk.write_bytes(b"id: x\n\xff\xfe\x00garbage")
    with pytest.raises(FormError) as caught:
        load_form(junk)
    assert (caught.value.rule, caught.value.line, caught.value.path) == ("syntax", 2, str(junk))
    with pytest.raises(FormError):
        load_form(tmp_path / "missing.yaml")


def test_load_forms_orders_by_group_then_title_and_refuses_duplicate_ids(tmp_path: Path) -> None:
    for name, title, group in [("b", "Zebra", "aa"), ("c", "Apple", "bb"), ("d", "Mango", "aa")]:
        text = MINIMAL.replace("id: broken", f"id: {name}").replace("Broken form", title)
        (tmp_path / f"{name}.yml").write_text(text + f"group: {group}\n", encoding="utf-8")
    assert list(load_forms(tmp_path)) == ["d", "b", "c"]
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "again.yaml").write_text(MINIMAL.replace("id: broken", "id: c"))
    with pytest.raises(FormError) as caught:
        load_forms(tmp_path)
    assert caught.value.rule == "duplicate-form-id"


def test_standard_forms_load_in_menu_order() -> None:
    forms = standard_forms()
    assert forms, f"no forms in {standard_forms_dir()}"
    assert standard_forms_dir().name == "standard"
    keys = [(f.group or "", f.title.casefold()) for f in forms.values()]
    assert keys == sorted(keys)
    assert all(form_id == form.id for form_id, form in forms.items())
    forms.clear()  # a copy: the cache is not emptied
    assert standard_forms()


def test_cli_forms_list_prints_id_code_and_title(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["forms", "list", "--locale", "en"]) == 0
    out = capsys.readouterr().out.splitlines()
    forms = standard_forms()
    assert len(out) == len(forms)
    for line, form in zip(out, forms.values(), strict=True):
        assert line.split()[:2] == [form.id, form.service_code]
        assert line.endswith(form.title)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(st.text(max_size=200), st.text(alphabet="{}[]:,-'\"!&*#?|> \nabyn01", max_size=80))
)
def test_any_text_loads_or_raises_form_error(text: str) -> None:
    try:
        parse_form(text, "f.yaml")
    except FormError as error:
        assert error.line >= 1
