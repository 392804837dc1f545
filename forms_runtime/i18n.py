"""Translations: every text citybot says goes through ``tr(locale, msgid)``.

Catalogs are gettext ``.po`` files under ``forms_runtime/locales/<lang>/LC_MESSAGES/citybot.po``
(English is the source language). They live inside the package so that every install ships them,
a wheel as much as a checkout. They are compiled in memory the first time a locale is used, so
neither a checkout nor a build needs a compile step and no ``.mo`` can go stale beside its
``.po``; ``make locales`` re-extracts texts from the Python code and the form YAML.

Example::

    tr("af", "Enter a number between {min} and {max}", min=1, max=10)
    # 'Tik 'n getal tussen 1 en 10 in'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path

from babel.messages.pofile import read_po

__all__ = [
    "DEFAULT_LOCALE",
    "LANGUAGE_NAMES",
    "LOCALES",
    "N_",
    "catalog",
    "has_translation",
    "locales_dir",
    "normalise_locale",
    "tr",
]

# The locales every standard form and every bot text must be translated into.
LOCALES: tuple[str, ...] = ("en", "af", "zu", "xh")
DEFAULT_LOCALE = "en"

# Each language named in itself, so a resident recognises their own.
LANGUAGE_NAMES: dict[str, str] = {
    "en": "English",
    "af": "Afrikaans",
    "zu": "isiZulu",
    "xh": "isiXhosa",
}


def N_(msgid: str) -> str:
    """Mark a text for extraction without translating it yet (translated later with ``tr``)."""
    return msgid


def locales_dir() -> Path:
    """The folder of the catalogs: ``forms_runtime/locales``, or ``CITYBOT_LOCALES_DIR``."""
    override = os.environ.get("CITYBOT_LOCALES_DIR")
    if override:
        return Path(override)
    return Path(__file__).resolve().parent / "locales"


@cache
def _catalog(locale: str) -> dict[str, str]:
    path = locales_dir() / locale / "LC_MESSAGES" / "citybot.po"
    if not path.exists():
        return {}
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=locale)
    messages: dict[str, str] = {}
    for message in catalog:
        msgid, msgstr = message.id, message.string
        if not msgid or message.fuzzy or not isinstance(msgid, str):
            continue
        if isinstance(msgstr, str) and msgstr:
            messages[msgid] = msgstr
    return messages


def catalog(locale: str) -> Mapping[str, str]:
    """The translations of ``locale`` (msgid -> text), loaded once.

    The same object for as long as the catalogs are not reloaded, so a cache of translated texts
    can keep it beside its entries and see that they are still current.
    """
    return _catalog(locale)


def normalise_locale(locale: str | None) -> str:
    """Map 'af_ZA', 'AF', 'zu-ZA' and the like onto a supported locale, else the default."""
    if not locale:
        return DEFAULT_LOCALE
    short = locale.replace("-", "_").split("_")[0].lower()
    return short if short in LOCALES else DEFAULT_LOCALE


def has_translation(locale: str, msgid: str) -> bool:
    if locale == DEFAULT_LOCALE:
        return True
    return msgid in _catalog(locale)


def tr(locale: str, msgid: str, /, **values: object) -> str:
    """Translate ``msgid`` into ``locale`` and fill in ``{placeholders}``.

    A missing translation falls back to English rather than failing a resident mid-form;
    ``citybot forms lint`` reports every missing translation so none ships.
    """
    text = msgid if locale == DEFAULT_LOCALE else _catalog(locale).get(msgid, msgid)
    if values:
        try:
            return text.format(**values)
        except (KeyError, IndexError, ValueError):
            # A translator broke a placeholder: the English source is still correct.
            return msgid.format(**values)
    return text
