"""Text hygiene: what a resident typed, made safe to store (``clean_text``) and easy to match (``fold``).

Both run on every message, so the per-character work is done by ``str.translate`` with tables
that classify each code point once, the first time it is seen.

Example::

    clean_text("  Hi\u202e there\u200b  ")   # 'Hi there'
    fold("Slaggat, ASSEBLIEF!")              # 'slaggat asseblief'
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["clean_text", "fold", "small_number"]

# Code points seen so far are classified once; the cap bounds memory against hostile input
# that walks the whole of Unicode (past it, new code points are classified every time).
_TABLE_CAP = 20_000

# Apostrophes vanish when folding so "don't" matches "dont" and Afrikaans "'n" matches "n".
_APOSTROPHES = frozenset("'`´‘’ʼʹ′")


class _CleanTable(dict[int, str | None]):
    """``str.translate`` table: controls and format characters go, odd spaces become spaces."""

    def __missing__(self, code: int) -> str | None:
        char = chr(code)
        category = unicodedata.category(char)
        value: str | None
        if char == "\n":
            value = "\n"
        elif char in "\r\u2028\u2029\x85\x0b\x0c":
            # Line breaks of every kind become one newline; single-line cleaning folds them later.
            value = "\n"
        elif category in ("Zs",) or char == "\t":
            value = " "
        elif category in ("Cc", "Cf", "Cs"):
            # Controls, bidi overrides, zero-width characters and lone surrogates (which would
            # fail to encode as UTF-8 when stored).
            value = None
        else:
            value = char
        if len(self) < _TABLE_CAP:
            self[code] = value
        return value


class _FoldTable(dict[int, str | None]):
    """``str.translate`` table for decomposed text: marks go, punctuation and symbols are spaces."""

    def __missing__(self, code: int) -> str | None:
        char = chr(code)
        category = unicodedata.category(char)
        value: str | None
        if char in _APOSTROPHES or category in ("Mn", "Cc", "Cf", "Cs"):
            value = None
        elif category[0] in "PSZC":
            value = " "
        else:
            value = char
        if len(self) < _TABLE_CAP:
            self[code] = value
        return value


_CLEAN = _CleanTable()
_FOLD = _FoldTable()
# Warm the tables with ASCII so the common case never reaches ``__missing__``.
for _code in range(128):
    _CLEAN.__missing__(_code)
    _FOLD.__missing__(_code)

_SPACES = re.compile(r"[ ]{2,}")
_SPACES_AROUND_NEWLINE = re.compile(r" *\n *")
_MANY_NEWLINES = re.compile(r"\n{3,}")


def clean_text(text: str, max_length: int = 4000, *, multiline: bool = False) -> str:
    """Make what a resident typed safe to store and show.

    NFC-normalises, removes control and format characters (bidi overrides, zero-width spaces),
    folds runs of whitespace, keeps line breaks only when ``multiline`` (at most one blank line
    in a row), trims, and cuts to ``max_length`` characters.

    Example::

        clean_text("Main\\u202e  Road\\r\\n")   # 'Main Road'
    """
    if not text or max_length <= 0:
        return ""
    # Bound the work on huge input before normalising; what is past this is cut anyway.
    if len(text) > max_length * 4 + 64:
        text = text[: max_length * 4 + 64]
    if text.isascii() and text.isprintable():
        # The common case: plain typed text with nothing to remove.
        return " ".join(text.split())[:max_length].rstrip()
    if not text.isascii() and not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    if "\r\n" in text:
        text = text.replace("\r\n", "\n")
    text = text.translate(_CLEAN)
    if multiline:
        text = _SPACES.sub(" ", text)
        text = _SPACES_AROUND_NEWLINE.sub("\n", text)
        text = _MANY_NEWLINES.sub("\n\n", text).strip()
    else:
        text = " ".join(text.split())
    return text[:max_length].rstrip()


def fold(text: str) -> str:
    """The key used for matching: lower case, no diacritics, punctuation as spaces, one space.

    Example::

        fold("  Désember -- 3rd!! ")   # 'desember 3rd'
    """
    if text.isascii():
        return " ".join(text.lower().translate(_FOLD).split())
    # NFKD also turns full-width digits, ligatures and superscripts into their plain letters.
    text = unicodedata.normalize("NFKD", text).casefold()
    return " ".join(text.translate(_FOLD).split())


def small_number(text: str, max_digits: int = 6) -> int | None:
    """The number a resident typed to pick an option ("2"), or None.

    ASCII digits only: ``str.isdigit`` also accepts "²" and other characters ``int`` refuses,
    and ``int`` refuses more than 4,300 digits; neither may fail a turn.
    """
    text = text.strip()
    if not text or len(text) > max_digits or not (text.isascii() and text.isdigit()):
        return None
    return int(text)
