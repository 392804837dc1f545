"""A babel extractor for form YAML, so form texts reach the gettext catalogs like code texts.

Registered as the ``citybot_forms`` extraction method (``babel.cfg`` and the
``babel.extractors`` entry point in pyproject.toml). It walks the YAML node tree rather than the
loaded values, because translators and the linter need the line each text sits on.

Keywords are left out on purpose: they are written per locale in the YAML itself, since the words
residents type are not translations of each other.

Example::

    with open("forms_runtime/standard/pothole.yaml", "rb") as fh:
        for lineno, funcname, message, comments in extract_forms(fh, [], [], {}):
            print(lineno, message)  # 3 Pothole or road damage ...
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import IO, Any

import yaml

__all__ = ["FORM_TEXT_FIELDS", "OPTION_TEXT_FIELDS", "STEP_TEXT_FIELDS", "extract_forms"]

# The translatable fields at each level of a form (docs/forms.md, "Text rules").
FORM_TEXT_FIELDS: tuple[str, ...] = ("title", "description", "confirmation")
STEP_TEXT_FIELDS: tuple[str, ...] = ("prompt", "hint", "label", "purpose", "consent")
OPTION_TEXT_FIELDS: tuple[str, ...] = ("label",)

# (lineno, funcname, message, comments): the tuple babel expects from an extractor.
Extracted = tuple[int, str | None, str, list[str]]


def extract_forms(
    fileobj: IO[bytes],
    keywords: Collection[str],
    comment_tags: Collection[str],
    options: Mapping[str, Any],
) -> Iterator[Extracted]:
    """Yield every translatable text of one form YAML file, with its 1-based line number.

    Texts come in the order they appear in the file.

    ``keywords`` and ``comment_tags`` are part of babel's extractor signature and unused here;
    each text carries an automatic comment naming the form, step and field, which is what a
    translator needs to keep a prompt inside one SMS segment. A file that is not valid YAML yields
    nothing: ``citybot forms lint`` reports it with its line, extraction should not crash on it.
    """
    # utf-8-sig: the loader accepts files saved with a byte order mark, so must this.
    encoding = str(options.get("encoding", "utf-8-sig"))
    try:
        root = yaml.compose(fileobj.read().decode(encoding))
    except (yaml.YAMLError, UnicodeDecodeError):
        return
    if isinstance(root, yaml.MappingNode):
        yield from sorted(_form(root), key=lambda found: found[0])


def _form(root: yaml.MappingNode) -> Iterator[Extracted]:
    form = _mapping(root)
    form_id = _scalar(form.get("id")) or "?"
    for name in FORM_TEXT_FIELDS:
        yield from _text(form.get(name), f"form {form_id}: {name}")
    steps = form.get("steps")
    if not isinstance(steps, yaml.SequenceNode):
        return
    for step_node in steps.value:
        if not isinstance(step_node, yaml.MappingNode):
            continue
        step = _mapping(step_node)
        where = f"form {form_id}, step {_scalar(step.get('id')) or '?'}"
        for name in STEP_TEXT_FIELDS:
            note = f"{where}: {name}"
            if name in ("prompt", "consent"):
                note += " (must fit one SMS)"
            yield from _text(step.get(name), note)
        yield from _handoff(step.get("handoff"), where)
        validation = step.get("validation")
        if isinstance(validation, yaml.MappingNode):
            yield from _text(
                _mapping(validation).get("pattern_message"), f"{where}: pattern_message"
            )
        yield from _options(step.get("options"), where)


def _options(node: yaml.Node | None, where: str) -> Iterator[Extracted]:
    if not isinstance(node, yaml.SequenceNode):
        return
    for option_node in node.value:
        if not isinstance(option_node, yaml.MappingNode):
            continue
        option = _mapping(option_node)
        at = f"{where}, option {_scalar(option.get('id')) or '?'}"
        for name in OPTION_TEXT_FIELDS:
            yield from _text(option.get(name), f"{at}: {name}")
        yield from _handoff(option.get("handoff"), at)
        synonyms = option.get("synonyms")
        if isinstance(synonyms, yaml.SequenceNode):
            for synonym in synonyms.value:
                # A synonym is a word a resident may type to pick the option: translate it as
                # the word people use, not as a definition.
                yield from _text(synonym, f"{at}: synonym (a word residents type)")


def _handoff(node: yaml.Node | None, where: str) -> Iterator[Extracted]:
    if isinstance(node, yaml.MappingNode):
        note = f"{where}: handoff reason (told to the resident as a person is called)"
        yield from _text(_mapping(node).get("reason"), note)


def _mapping(node: yaml.MappingNode) -> dict[str, yaml.Node]:
    """Scalar keys to value nodes; the first occurrence wins, as the linter reports duplicates."""
    out: dict[str, yaml.Node] = {}
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and isinstance(key.value, str):
            out.setdefault(key.value, value)
    return out


_STR_TAG = "tag:yaml.org,2002:str"


def _scalar(node: yaml.Node | None) -> str | None:
    """The text of a string scalar; ``null``, numbers and booleans are not texts."""
    if isinstance(node, yaml.ScalarNode) and node.tag == _STR_TAG and isinstance(node.value, str):
        return node.value
    return None


def _text(node: yaml.Node | None, comment: str) -> Iterator[Extracted]:
    text = _scalar(node)
    if node is None or text is None or not text.strip():
        return
    yield node.start_mark.line + 1, None, text, [comment]
