"""The translations of citybot's public web pages, from gettext catalogs inside the package.

A page's words are a gettext domain of their own (``citybot_dashboard``): the template
``bot/web/locales/<domain>.pot`` and a ``.po`` per language under
``bot/web/locales/<lang>/LC_MESSAGES/``. As with the bot's own catalogs
(``forms_runtime.i18n``), the ``.po`` is compiled in memory the first time a language is asked
for, so there is no ``.mo`` to build or to go stale. English is the source language.

Example::

    translations("citybot_dashboard", "zu").gettext("Time to close")   # the isiZulu text
    page_locale("af", "zu-ZA,zu;q=0.9,en;q=0.5")                        # "af": the choice wins
"""

from __future__ import annotations

import gettext
from functools import cache
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from forms_runtime.i18n import DEFAULT_LOCALE, LOCALES

__all__ = ["LOCALE_DIR", "page_locale", "translations"]

LOCALE_DIR = Path(__file__).resolve().parent / "locales"


@cache
def translations(domain: str, locale: str) -> gettext.NullTranslations:
    """The catalog of ``domain`` in ``locale``; the source texts where there is none."""
    path = LOCALE_DIR / locale / "LC_MESSAGES" / f"{domain}.po"
    if locale == DEFAULT_LOCALE or not path.exists():
        return gettext.NullTranslations()
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    compiled = BytesIO()
    # A fuzzy entry is a guess nobody checked: the English source is shown instead.
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)


def page_locale(chosen: str | None, accept_language: str | None) -> str:
    """The page's language: the one chosen on the page (``?lang=``), else the browser's first
    supported preference (``Accept-Language``), else English."""
    if chosen in LOCALES:
        return chosen
    preferences: list[tuple[float, str]] = []
    for order, item in enumerate((accept_language or "").split(",")):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        language = tag.strip().split("-")[0].lower()
        if language in LOCALES and quality > 0:
            # Equal qualities keep the browser's order.
            preferences.append((-quality + order * 1e-6, language))
    return min(preferences)[1] if preferences else DEFAULT_LOCALE
