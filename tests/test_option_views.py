"""Option views are built once per step and locale, and rebuilt when the catalogs are reloaded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import write_po

from forms_runtime import i18n
from forms_runtime.answers import option_views
from forms_runtime.effects import OptionView
from forms_runtime.loader import standard_forms

POTHOLE = standard_forms()["pothole"]


def test_views_are_the_translated_options_and_are_built_once() -> None:
    size = POTHOLE.step("size")
    views = option_views(size, "af")
    assert views == tuple(OptionView(o.id, i18n.tr("af", o.label)) for o in size.options)
    assert option_views(size, "af") is views
    assert option_views(size, "en") == tuple(OptionView(o.id, o.label) for o in size.options)
    assert option_views(POTHOLE.step("danger"), "af") == (
        OptionView("yes", "Ja"),
        OptionView("no", "Nee"),
    )
    assert option_views(POTHOLE.step("location"), "af") == ()


def _write_catalog(folder: Path, yes: str) -> None:
    catalog = Catalog(locale="af")
    catalog.add("Yes", string=yes)
    po = folder / "af" / "LC_MESSAGES" / "citybot.po"
    po.parent.mkdir(parents=True)
    with po.open("wb") as fh:
        write_po(fh, catalog)


@pytest.fixture
def reload_catalogs(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], None]]:
    def reload(folder: Path) -> None:
        monkeypatch.setenv("CITYBOT_LOCALES_DIR", str(folder))
        i18n._catalog.cache_clear()

    yield reload
    monkeypatch.undo()
    i18n._catalog.cache_clear()


def test_views_follow_reloaded_catalogs(
    tmp_path: Path, reload_catalogs: Callable[[Path], None]
) -> None:
    danger = POTHOLE.step("danger")
    assert option_views(danger, "af")[0] == OptionView("yes", "Ja")
    _write_catalog(tmp_path / "one", "Jip")
    reload_catalogs(tmp_path / "one")
    assert option_views(danger, "af")[0] == OptionView("yes", "Jip")
    _write_catalog(tmp_path / "two", "Ja-nee")
    reload_catalogs(tmp_path / "two")
    assert option_views(danger, "af")[0] == OptionView("yes", "Ja-nee")
