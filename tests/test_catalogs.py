"""The gettext catalogs: complete, current, and safe to send by SMS in every language."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from forms_runtime.i18n import locales_dir, tr
from forms_runtime.sms import segments, ucs2_forcing_chars
from forms_runtime.understanding.navigation import NAVIGATION_WORDS

ROOT = Path(__file__).resolve().parent.parent
LOCALES_DIR = locales_dir()
TRANSLATED = ("af", "zu", "xh")
PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def _read(path: Path, locale: str | None = None) -> Catalog:
    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


@pytest.fixture(scope="module")
def template() -> Catalog:
    return _read(LOCALES_DIR / "citybot.pot")


@pytest.fixture(scope="module")
def catalogs() -> dict[str, Catalog]:
    return {
        locale: _read(LOCALES_DIR / locale / "LC_MESSAGES" / "citybot.po", locale)
        for locale in ("en", *TRANSLATED)
    }


def _ids(catalog: Catalog) -> set[str]:
    return {m.id for m in catalog if m.id and isinstance(m.id, str)}


def _texts(catalog: Catalog) -> list[tuple[str, str, list[str]]]:
    """(msgid, msgstr, automatic comments) of each translated singular message."""
    return [
        (m.id, m.string, list(m.auto_comments))
        for m in catalog
        if m.id and isinstance(m.id, str) and isinstance(m.string, str) and m.string
    ]


def test_the_template_holds_every_text_in_the_code_and_forms(template: Catalog) -> None:
    with (ROOT / "babel.cfg").open() as fh:
        method_map, options_map = parse_mapping_cfg(fh, "babel.cfg")
    extracted = {
        message
        for _, _, message, _, _ in extract_from_dir(
            ROOT, method_map, options_map, keywords={"tr": (2,), "N_": None}
        )
        if isinstance(message, str)
    }
    assert extracted - _ids(template) == set(), "run `make locales` and translate the new texts"
    assert _ids(template) - extracted == set(), "run `make locales` to drop texts no longer used"


@pytest.mark.parametrize("locale", ["en", *TRANSLATED])
def test_each_catalog_has_every_template_text(
    template: Catalog, catalogs: dict[str, Catalog], locale: str
) -> None:
    assert _ids(catalogs[locale]) == _ids(template)


@pytest.mark.parametrize("locale", TRANSLATED)
def test_every_text_is_translated_and_not_fuzzy(
    template: Catalog, catalogs: dict[str, Catalog], locale: str
) -> None:
    catalog = catalogs[locale]
    for msgid in sorted(_ids(template)):
        message = catalog.get(msgid)
        assert message is not None and message.string, f"[{locale}] untranslated: {msgid!r}"
        assert not message.fuzzy, f"[{locale}] fuzzy: {msgid!r}"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_placeholders_are_kept_exactly(catalogs: dict[str, Catalog], locale: str) -> None:
    for msgid, msgstr, _ in _texts(catalogs[locale]):
        assert sorted(PLACEHOLDER.findall(msgstr)) == sorted(PLACEHOLDER.findall(msgid)), (
            f"[{locale}] {msgid!r} -> {msgstr!r}"
        )


@pytest.mark.parametrize("locale", TRANSLATED)
def test_translations_do_not_force_ucs2_sms(catalogs: dict[str, Catalog], locale: str) -> None:
    for _, msgstr, _ in _texts(catalogs[locale]):
        assert ucs2_forcing_chars(msgstr) == [], f"[{locale}] {msgstr!r}"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_form_prompts_fit_one_sms_segment(catalogs: dict[str, Catalog], locale: str) -> None:
    prompts = [
        t for _, t, comments in _texts(catalogs[locale]) if any(": prompt" in c for c in comments)
    ]
    assert len(prompts) > 40
    for msgstr in prompts:
        assert segments(msgstr) == 1, f"[{locale}] {msgstr!r}"


@pytest.mark.parametrize("locale", TRANSLATED)
def test_navigation_words_are_taught_in_the_residents_language(
    catalogs: dict[str, Catalog], locale: str
) -> None:
    skip = NAVIGATION_WORDS[locale]["skip"].upper()
    for msgid, msgstr, _ in _texts(catalogs[locale]):
        if "SKIP" in msgid:
            assert skip in msgstr and "SKIP" not in msgstr, msgstr


def test_the_bot_reads_the_catalogs() -> None:
    assert [tr(locale, "Yes") for locale in ("en", *TRANSLATED)] == ["Yes", "Ja", "Yebo", "Ewe"]
    assert tr("xh", "Enter a number between {min} and {max}.", min=1, max=10) == (
        "Bhala inani eliphakathi kuka-1 no-10."
    )
