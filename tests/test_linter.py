"""The linter: one broken form per rule (tests/forms_broken), translations, SMS, and the CLI.

Each fixture states what it must produce in its first lines, ``# expect: <rule> <line>``, and must
produce nothing else at error level, so a fixture cannot pass by accident.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.cli import main
from forms_runtime import i18n
from forms_runtime.babel_extract import extract_forms
from forms_runtime.linter import RULES, LintIssue, lint_paths, lint_text
from forms_runtime.loader import standard_forms_dir

BROKEN = Path(__file__).resolve().parent / "forms_broken"
LOCALES = ("en", "af")


def _af_catalog(msgid: str) -> str | None:
    """A small real catalog for the fixtures: every text translated, unless marked untranslated."""
    return None if "untranslated" in msgid else f"{msgid} (af)"


def has_translation(locale: str, msgid: str) -> bool:
    return locale == "en" or _af_catalog(msgid) is not None


def translate(locale: str, msgid: str) -> str:
    return msgid if locale == "en" else (_af_catalog(msgid) or msgid)


def _lint(paths: list[Path]) -> list[LintIssue]:
    return lint_paths(paths, locales=LOCALES, has_translation=has_translation, translate=translate)


def _expected(path: Path) -> set[tuple[str, int]]:
    found = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# expect:"):
            rule, number = line.split()[2:4]
            found.add((rule, int(number)))
    return found


FIXTURES = sorted(p for p in BROKEN.glob("*.yaml") if p.name != "clean_reference.yaml")


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.stem)
def test_each_broken_form_reports_its_rule_at_its_line(fixture: Path) -> None:
    expected = _expected(fixture)
    assert expected, f"{fixture.name} has no `# expect:` line"
    issues = _lint([fixture])
    assert expected <= {(i.rule, i.line) for i in issues}
    rules = {rule for rule, _ in expected}
    assert [i for i in issues if i.rule not in rules] == []
    for issue in issues:
        assert issue.path == str(fixture)
        assert issue.message and issue.hint
        assert issue.severity in ("error", "warning")


def test_every_problem_of_a_form_is_reported_in_one_run() -> None:
    # Issue 10, defect 7: the loader stopped at the first schema problem, so a form with twelve
    # took twelve runs of `citybot forms lint` to fix.
    fixture = BROKEN / "many_problems.yaml"
    issues = _lint([fixture])
    assert sorted((i.rule, i.line) for i in issues) == sorted(_expected(fixture))
    assert len(issues) == 12


def test_every_rule_has_a_fixture() -> None:
    covered = {rule for fixture in FIXTURES for rule, _ in _expected(fixture)}
    covered |= {"duplicate-form-id"}  # the folder fixture below
    assert covered == set(RULES)


def test_the_reference_form_the_fixtures_start_from_is_clean() -> None:
    assert _lint([BROKEN / "clean_reference.yaml"]) == []


def test_duplicate_form_ids_across_files() -> None:
    issues = _lint([BROKEN / "duplicate_form_id"])
    assert [(Path(i.path).name, i.line, i.rule) for i in issues] == [
        ("b.yaml", 2, "duplicate-form-id")
    ]
    assert "a.yaml" in issues[0].message


def test_severities() -> None:
    severity = {i.rule: i.severity for f in FIXTURES for i in _lint([f])}
    assert severity["govuk-style"] == "warning"
    assert severity["sms-hint-too-long"] == "warning"
    assert severity["sms-prompt-too-long"] == "error"
    assert severity["ucs2-character"] == "error"


REFERENCE = (BROKEN / "clean_reference.yaml").read_text(encoding="utf-8")


def test_a_prompt_too_long_for_ucs2_in_one_locale_only() -> None:
    # 60 characters: fine in English (GSM-7), but the Afrikaans has ê and must fit 70 UCS-2.
    prompt = "What kind of problem is it, and where exactly did you see it?"

    def af(locale: str, msgid: str) -> str:
        return (
            msgid
            if locale == "en"
            else "Watter soort probleem is dit, en waar presies het jy dit self gesien, sê?"
        )

    text = REFERENCE.replace("What kind of problem is it?", prompt)
    issues = lint_text(
        text, "f.yaml", locales=LOCALES, has_translation=has_translation, translate=af
    )
    assert [(i.rule, i.line) for i in issues] == [("sms-prompt-too-long", 15)]
    assert "in af" in issues[0].message and "UCS-2" in issues[0].message
    assert "'ê'" in issues[0].message


def test_a_step_too_long_for_a_ussd_screen_in_one_locale_only() -> None:
    """The English fits a USSD screen; the isiZulu (one SMS, 160 characters) leaves no room for
    the first choice with "00 More" and "0 Back": reported for zu alone."""
    zulu = ("Hlobo luni lwenkinga olubonayo emgwaqweni wakho namuhla, futhi ingakanani? " * 3)[:160]
    text = REFERENCE.replace("af: [stukkend]", "zu: [kwaphukile]")

    def zu(locale: str, msgid: str) -> str:
        return zulu if (locale, msgid) == ("zu", "What kind of problem is it?") else msgid

    issues = lint_text(
        text, "f.yaml", locales=("en", "zu"), has_translation=lambda *_: True, translate=zu
    )
    assert [(i.rule, i.line) for i in issues] == [("ussd-screen-too-long", 15)]
    assert "in zu" in issues[0].message and "182" in issues[0].message
    shorter = zulu[:150]
    fits = lint_text(
        text,
        "f.yaml",
        locales=("en", "zu"),
        has_translation=lambda *_: True,
        translate=lambda loc, msgid: shorter if msgid == "What kind of problem is it?" else msgid,
    )
    assert fits == []


def test_ucs2_characters_in_a_translation_are_reported_with_the_locale() -> None:
    def af(locale: str, msgid: str) -> str:
        return msgid if locale == "en" else "’n Probleem"

    issues = lint_text(
        REFERENCE, "f.yaml", locales=LOCALES, has_translation=has_translation, translate=af
    )
    assert {i.rule for i in issues} == {"ucs2-character"}
    assert all("af translation" in i.message and '"\'"' in i.hint for i in issues)


def test_missing_translations_are_checked_in_every_configured_locale() -> None:
    issues = lint_text(
        REFERENCE, "f.yaml", locales=("en", "af", "zu"), has_translation=lambda loc, _: loc != "zu"
    )
    texts = {i.line for i in issues if i.rule == "missing-translation"}
    # title, description, confirmation, prompt and the two option labels
    assert texts == {4, 6, 11, 15, 18, 20}
    assert all("zu" in i.message for i in issues)
    assert any(i.rule == "missing-keywords" for i in issues)


def test_reachability_understands_yes_no_numbers_and_multi_choice() -> None:
    steps = """\
  - id: danger
    type: yes_no
    prompt: Is it dangerous?
  - id: count
    type: number
    prompt: How many are there?
  - id: kinds
    type: multi_choice
    prompt: What is there?
    options:
      - {id: glass, label: Glass}
      - {id: tins, label: Tins}
      - {id: paper, label: Paper}
  - id: a
    type: text
    prompt: First.
    when: danger == yes and not danger
  - id: b
    type: text
    prompt: Second.
    when: count > 3 and count < 4
  - id: c
    type: text
    prompt: Third.
    when: count > 3 and count <= 3
  - id: d
    type: text
    prompt: Fourth.
    when: kinds == glass and kinds == tins and kinds != paper
  - id: e
    type: text
    prompt: Fifth.
    when: kinds not in [glass, tins, paper]
"""
    issues = lint_text(REFERENCE + steps, "f.yaml", locales=("en",))
    unreachable = {i.message.split("`")[1] for i in issues if i.rule == "unreachable-step"}
    assert unreachable == {"a", "c", "e"}


def test_an_optional_step_can_be_empty_in_later_conditions() -> None:
    steps = """\
  - id: note
    type: yes_no
    required: false
    prompt: Anything to add?
  - id: more
    type: text
    prompt: What else?
    when: not note and note != yes and note != no
"""
    issues = lint_text(REFERENCE + steps, "f.yaml", locales=("en",))
    assert [i.rule for i in issues] == []


def test_style_words_are_checked_in_instructions_not_in_option_labels() -> None:
    text = REFERENCE.replace("label: Small", "label: Billing error").replace(
        "What kind of problem is it?", "Sorry, what is wrong?"
    )
    issues = lint_text(text, "f.yaml", locales=("en",))
    assert [(i.rule, i.line, i.severity) for i in issues] == [
        ("govuk-style", 15, "warning"),
        ("govuk-style", 15, "warning"),
    ]


def test_grouped_long_lists_are_fine_but_groups_are_capped() -> None:
    options = "".join(
        f"      - {{id: o{n}, label: Option {n}, group: g{n % 3}}}\n" for n in range(12)
    )
    step = f"  - id: many\n    type: choice\n    prompt: Which?\n    options:\n{options}"
    assert lint_text(REFERENCE + step, "f.yaml", locales=("en",)) == []
    crowded = step.replace("group: g1}", "group: g0}").replace("group: g2}", "group: g0}")
    issues = lint_text(REFERENCE + crowded, "f.yaml", locales=("en",))
    assert [i.rule for i in issues] == ["too-many-options"]


@pytest.mark.parametrize(
    "content",
    [
        b"\x00\x01\x02\xff\xfe binary",
        b"\x89PNG\r\n\x1a\n\x00\x00",
        b"id: [\n",
        b"- a list\n",
        b"",
        b"\xff" * 10,
    ],
)
def test_junk_files_get_one_error_never_a_traceback(tmp_path: Path, content: bytes) -> None:
    junk = tmp_path / "junk.yaml"
    junk.write_bytes(content)
    issues = _lint([junk])
    assert len(issues) == 1
    assert issues[0].severity == "error"
    assert issues[0].rule in ("syntax", "schema")
    assert issues[0].line >= 1


def test_a_missing_path_is_an_error(tmp_path: Path) -> None:
    issues = _lint([tmp_path / "nope.yaml"])
    assert [(i.rule, i.severity) for i in issues] == [("syntax", "error")]


# --- the command line -------------------------------------------------------------------------
# The CLI lints against the real catalogs, so these tests write real .po files for the forms they
# lint and point CITYBOT_LOCALES_DIR at them.

ALL_KEYWORDS = "  af: [stukkend]\n  zu: [kuphukile]\n  xh: [yaphukile]\n"


@pytest.fixture
def catalogs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    folder = tmp_path / "locales"

    def write(form: Path) -> Path:
        with form.open("rb") as fh:
            texts = [message for _, _, message, _ in extract_forms(fh, [], [], {})]
        for locale in ("af", "zu", "xh"):
            catalog = Catalog(locale=locale)
            for text in texts:
                catalog.add(text, string=f"{text} ({locale})")
            po = folder / locale / "LC_MESSAGES" / "citybot.po"
            po.parent.mkdir(parents=True, exist_ok=True)
            with po.open("wb") as fh:
                write_po(fh, catalog)
        return form

    monkeypatch.setenv("CITYBOT_LOCALES_DIR", str(folder))
    i18n._catalog.cache_clear()
    yield write
    i18n._catalog.cache_clear()


def _translated_copy(tmp_path: Path, fixture: Path) -> Path:
    text = fixture.read_text(encoding="utf-8").replace("  af: [stukkend]\n", ALL_KEYWORDS)
    copy = tmp_path / fixture.name
    copy.write_text(text, encoding="utf-8")
    return copy


def test_cli_text_output_and_exit_code(
    tmp_path: Path, catalogs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    form = catalogs(_translated_copy(tmp_path, BROKEN / "when_unknown_option.yaml"))
    code = main(["forms", "lint", str(form)])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[0].endswith(
        "when_unknown_option.yaml:26: error [when-unknown-option] `kind` has no option `huge`"
    )
    assert lines[1:] == ["    hint: options: small, large", "1 error, 0 warnings in 1 file"]


def test_cli_warnings_alone_exit_zero(
    tmp_path: Path, catalogs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    form = catalogs(_translated_copy(tmp_path, BROKEN / "govuk_style.yaml"))
    code = main(["forms", "lint", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "govuk_style.yaml:25: warning [govuk-style]" in out
    assert out.splitlines()[-1] == "0 errors, 1 warning in 1 file"
    assert form.exists()


def test_cli_clean_forms_exit_zero(
    tmp_path: Path, catalogs: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    catalogs(_translated_copy(tmp_path, BROKEN / "clean_reference.yaml"))
    assert main(["forms", "lint", "--format", "json", str(tmp_path)]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_cli_json(tmp_path: Path, catalogs: Any, capsys: pytest.CaptureFixture[str]) -> None:
    for name in ("a.yaml", "b.yaml"):
        source = BROKEN / "duplicate_form_id" / name
        text = source.read_text(encoding="utf-8").replace("  af: [stukkend]\n", ALL_KEYWORDS)
        (tmp_path / name).write_text(text, encoding="utf-8")
    catalogs(tmp_path / "a.yaml")
    code = main(["forms", "lint", "--format", "json", str(tmp_path)])
    issues = json.loads(capsys.readouterr().out)
    assert code == 1
    assert [(Path(i["path"]).name, i["rule"], i["line"], i["severity"]) for i in issues] == [
        ("b.yaml", "duplicate-form-id", 2, "error")
    ]
    assert set(issues[0]) == {"path", "line", "rule", "message", "hint", "severity"}


def test_cli_prints_every_problem_of_a_form_that_does_not_load(
    capsys: pytest.CaptureFixture[str],
) -> None:
    fixture = BROKEN / "many_problems.yaml"
    assert main(["forms", "lint", str(fixture)]) == 1
    out = capsys.readouterr().out.splitlines()
    printed = [re.search(r":(\d+): error \[([a-z-]+)\]", line) for line in out]
    assert {(m[2], int(m[1])) for m in printed if m} == _expected(fixture)
    assert out[-1] == "12 errors, 0 warnings in 1 file"


def test_cli_junk_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.yml"
    junk.write_bytes(b"\x00\xff\x13garbage")
    assert main(["forms", "lint", str(junk)]) == 1
    out = capsys.readouterr().out
    assert "junk.yml:1: error [syntax]" in out
    assert "Traceback" not in out


def test_standard_forms_lint_clean(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["forms", "lint"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert standard_forms_dir().is_dir()


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_any_damage_to_a_form_gives_issues_never_an_exception(data: st.DataObject) -> None:
    lines = REFERENCE.splitlines(keepends=True)
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["drop", "dup", "junk", "indent"]))
        if action == "drop":
            del lines[index]
        elif action == "dup":
            lines.insert(index, lines[index])
        elif action == "junk":
            lines[index] = data.draw(st.text(max_size=20)) + "\n"
        else:
            lines[index] = " " + lines[index]
        if not lines:
            break
    issues = lint_text(
        "".join(lines),
        "f.yaml",
        locales=LOCALES,
        has_translation=has_translation,
        translate=translate,
    )
    assert all(i.line >= 1 and i.rule in RULES for i in issues)
