"""SMS arithmetic: which alphabet a text needs and how many segments it costs.

One SMS carries 160 GSM-7 characters (characters from the GSM 03.38 extension table, such as
``€`` or ``[``, take two) or 70 UCS-2 code units (characters outside the Basic Multilingual Plane,
such as most emoji, take two). A longer text is split into segments of 153 GSM-7 or 67 UCS-2 units,
because each part carries a concatenation header. A single character outside GSM-7 switches the
whole message to UCS-2 and cuts its capacity by more than half, which is why the linter asks for
plain quotes, hyphens and dots wherever they do the same job.

Example::

    segments("a" * 160)      # 1
    segments("a" * 161)      # 2
    encoding("It’s broken")  # 'UCS-2' (the curly apostrophe)
    to_gsm7("It’s broken")   # "It's broken"
"""

from __future__ import annotations

import unicodedata

__all__ = [
    "GSM7_BASIC",
    "GSM7_EXTENDED",
    "encoding",
    "is_gsm7",
    "segments",
    "to_gsm7",
    "ucs2_forcing_chars",
]

# GSM 03.38 basic character set (the escape code 0x1B is not a character and is left out).
GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# GSM 03.38 extension table: each costs two septets (an escape, then the character).
GSM7_EXTENDED: frozenset[str] = frozenset("\f^{}\\[~]|€")

_GSM7 = GSM7_BASIC | GSM7_EXTENDED

# Characters that force UCS-2 but have a plain GSM-7 equivalent that reads the same. Letters with
# diacritics (Afrikaans ê, ë, ô) are deliberately absent: dropping them changes the spelling, so a
# translation that needs them pays for UCS-2 and must fit 70 characters instead.
_EQUIVALENTS: dict[str, str] = {
    "\u2018": "'",  # left single quotation mark
    "\u2019": "'",  # right single quotation mark (the curly apostrophe)
    "\u201a": "'",  # single low-9 quotation mark
    "\u201b": "'",  # single high-reversed-9 quotation mark
    "\u2032": "'",  # prime
    "\u00b4": "'",  # acute accent
    "`": "'",  # grave accent: not in GSM-7
    "\u201c": '"',  # left double quotation mark
    "\u201d": '"',  # right double quotation mark
    "\u201e": '"',  # double low-9 quotation mark
    "\u201f": '"',  # double high-reversed-9 quotation mark
    "\u2033": '"',  # double prime
    "\u00ab": '"',  # left-pointing double angle quotation mark
    "\u00bb": '"',  # right-pointing double angle quotation mark
    "\u2010": "-",  # hyphen
    "\u2011": "-",  # non-breaking hyphen
    "\u2012": "-",  # figure dash
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2015": "-",  # horizontal bar
    "\u2212": "-",  # minus sign
    "\u00ad": "",  # soft hyphen: invisible anyway
    "\u2026": "...",  # horizontal ellipsis
    "\u00a0": " ",  # no-break space
    "\u2002": " ",  # en space
    "\u2003": " ",  # em space
    "\u2009": " ",  # thin space
    "\u200a": " ",  # hair space
    "\u202f": " ",  # narrow no-break space
    "\u3000": " ",  # ideographic space
    "\t": " ",  # tab: not in GSM-7
    "\u200b": "",  # zero-width space
    "\u200c": "",  # zero-width non-joiner
    "\u200d": "",  # zero-width joiner
    "\u2060": "",  # word joiner
    "\ufeff": "",  # byte order mark
    "\u2022": "*",  # bullet
    "\u00b7": "*",  # middle dot
    "\u00d7": "x",  # multiplication sign
    "\u2044": "/",  # fraction slash
    "\u00e7": "Ç",  # c cedilla: GSM-7 only has the capital, which phones show as ç anyway
    "\u2028": "\n",  # line separator
    "\u2029": "\n",  # paragraph separator
}

_GSM7_SINGLE = 160
_GSM7_PART = 153
_UCS2_SINGLE = 70
_UCS2_PART = 67


def is_gsm7(text: str) -> bool:
    """Whether every character of ``text`` is in the GSM-7 alphabet (basic or extension table)."""
    return all(ch in _GSM7 for ch in text)


def encoding(text: str) -> str:
    """The alphabet an SMS with this text is sent in: ``"GSM-7"`` or ``"UCS-2"``."""
    return "GSM-7" if is_gsm7(text) else "UCS-2"


def _pack(units: list[int], single: int, part: int) -> int:
    # Units of one character never straddle two segments (an escape and its character, or the two
    # halves of a surrogate pair, travel together), so fill greedily rather than divide.
    if sum(units) <= single:
        return 1
    count, used = 1, 0
    for size in units:
        if used + size > part:
            count += 1
            used = 0
        used += size
    return count


def segments(text: str) -> int:
    """How many SMS segments ``text`` takes; an empty text still costs one message."""
    if is_gsm7(text):
        return _pack([2 if ch in GSM7_EXTENDED else 1 for ch in text], _GSM7_SINGLE, _GSM7_PART)
    return _pack([2 if ord(ch) > 0xFFFF else 1 for ch in text], _UCS2_SINGLE, _UCS2_PART)


def to_gsm7(text: str) -> str:
    """Replace characters that force UCS-2 by their GSM-7 look-alikes; leave the rest as it is.

    Composed forms are used first, so an ``e`` followed by a combining acute becomes ``é``.
    """
    text = unicodedata.normalize("NFC", text)
    return "".join(ch if ch in _GSM7 else _EQUIVALENTS.get(ch, ch) for ch in text)


def ucs2_forcing_chars(text: str) -> list[str]:
    """The distinct characters of ``text`` that force UCS-2 although a GSM-7 equivalent exists.

    In order of first appearance, so a message can name them as the author wrote them.
    """
    found: list[str] = []
    for ch in text:
        if ch not in _GSM7 and ch in _EQUIVALENTS and ch not in found:
            found.append(ch)
    return found
