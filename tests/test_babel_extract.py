"""The form YAML extractor: every translatable text with its line, nothing else."""

from __future__ import annotations

import io
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from babel.messages.extract import extract, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg

from forms_runtime.babel_extract import extract_forms
from forms_runtime.loader import load_form, standard_forms_dir
from forms_runtime.model import Form

ROOT = Path(__file__).resolve().parent.parent

FORM = """\
id: demo
version: 1
title: Demo title
service_code: DEMO-ONE
description: Demo description.
retention_days: 30
keywords:
  en: [keyword en]
  af: [sleutelwoord]
steps:
  - id: size
    type: choice
    prompt: How big is it?
    hint: Guess if you are not sure.
    label: Size
    options:
      - id: small
        label: Small
        synonyms: [tiny, wee]
      - id: large
        label: Large
  - id: meter
    type: text
    hint: null
    personal: true
    purpose: To find your meter.
    prompt: What is the meter number?
    validation:
      pattern: '^[0-9]+$'
      pattern_message: Enter the meter number using numbers only
review: true
confirmation: Thank you.
"""

EXPECTED = [
    (3, "Demo title"),
    (5, "Demo description."),
    (13, "How big is it?"),
    (14, "Guess if you are not sure."),
    (15, "Size"),
    (18, "Small"),
    (19, "tiny"),
    (19, "wee"),
    (21, "Large"),
    (26, "To find your meter."),
    (27, "What is the meter number?"),
    (30, "Enter the meter number using numbers only"),
    (32, "Thank you."),
]


def _extract(text: str) -> list[tuple[int, str | None, str, list[str]]]:
    return list(extract_forms(io.BytesIO(text.encode()), [], [], {}))


def test_every_text_is_extracted_with_its_line() -> None:
    assert [(line, msg) for line, _, msg, _ in _extract(FORM)] == EXPECTED


def test_keywords_ids_and_null_values_are_not_texts() -> None:
    messages = {msg for _, _, msg, _ in _extract(FORM)}
    assert not messages & {"keyword en", "sleutelwoord", "demo", "small", "null", "^[0-9]+$"}


def test_each_text_names_its_form_and_field_for_translators() -> None:
    comments = {msg: c for _, _, msg, c in _extract(FORM)}
    assert comments["How big is it?"] == ["form demo, step size: prompt (must fit one SMS)"]
    assert comments["wee"] == [
        "form demo, step size, option small: synonym (a word residents type)"
    ]
    assert comments["Demo title"] == ["form demo: title"]


@pytest.mark.parametrize(
    "text",
    ["", "just a string\n", "- a list\n", "id: [unclosed\n", "steps: 3\ntitle: 7\n", "\xff"],
)
def test_broken_files_yield_what_they_can_without_raising(text: str) -> None:
    # The linter reports broken files; extraction must never stop `make locales`.
    assert _extract(text) == []


def _form_texts(form: Form) -> set[str]:
    texts = {form.title, form.description, form.confirmation}
    for s in form.steps:
        texts |= {t for t in (s.prompt, s.hint, s.label, s.purpose, s.consent) if t}
        if s.validation.pattern_message:
            texts.add(s.validation.pattern_message)
        if s.handoff:
            texts.add(s.handoff.reason)
        for o in s.options:
            texts |= {o.label, *o.synonyms}
            if o.handoff:
                texts.add(o.handoff.reason)
    return texts


@pytest.mark.parametrize("path", sorted(standard_forms_dir().glob("*.yaml")), ids=lambda p: p.stem)
def test_extracts_exactly_the_texts_the_loader_reads(path: Path) -> None:
    with path.open("rb") as fh:
        extracted = {msg for _, _, msg, _ in extract_forms(fh, [], [], {})}
    assert extracted == _form_texts(load_form(path))


def test_babel_runs_it_by_its_registered_name() -> None:
    (entry,) = [e for e in entry_points(group="babel.extractors") if e.name == "citybot_forms"]
    assert entry.value == "forms_runtime.babel_extract:extract_forms"
    found = list(extract("citybot_forms", io.BytesIO(FORM.encode())))
    assert [(line, msg) for line, msg, _, _ in found] == EXPECTED


def test_babel_cfg_maps_python_and_form_yaml() -> None:
    with (ROOT / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh, "babel.cfg")
    found = {
        (filename.rsplit(".", 1)[-1], message)
        for filename, _, message, _, _ in extract_from_dir(
            ROOT,
            method_map,
            options_map,
            keywords={"tr": (2,), "N_": None},
        )
    }
    assert ("yaml", "Pothole or road damage") in found
    assert ("yaml", "hole") in found  # an option synonym
    assert any(kind == "py" for kind, _ in found)
    assert not any("keyword" in str(message) for _, message in found)
