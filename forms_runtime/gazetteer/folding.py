"""Folding place names into the form every comparison uses.

Residents type "Mitchell's Plain", "MITCHELLS PLAIN", "mitchells-plain" or "Mitchélls Plain"; all
fold to ``"mitchells plain"``. Apostrophes vanish (so "Mitchell's" meets "Mitchells") while every
other run of punctuation becomes one space (so "M/Plain" keeps its two words).

Example::

    fold("Mitchell's  Plain!")  == "mitchells plain"
    compact("Du Noon") == compact("Dunoon") == "dunoon"
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["compact", "fold"]

_APOSTROPHES = re.compile(r"['\u2018\u2019\u02bc`´]")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def fold(text: str) -> str:
    """Lowercase, strip diacritics and punctuation, collapse spaces."""
    if text.isascii():
        # Nothing to decompose and no marks to drop: most place texts, on every location answer.
        plain = text.lower()
    else:
        decomposed = unicodedata.normalize("NFKD", text)
        plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    plain = _APOSTROPHES.sub("", plain)
    return _NOT_ALNUM.sub(" ", plain).strip()


def compact(folded: str) -> str:
    """A folded name without spaces: the key of exact look-ups ("du noon" meets "dunoon")."""
    return folded.replace(" ", "")
