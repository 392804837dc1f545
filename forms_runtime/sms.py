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

import re
import unicodedata
from collections.abc import Callable, Iterable

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


def _char_class(chars: Iterable[str], *, negate: bool = False) -> re.Pattern[str]:
    body = "".join(re.escape(ch) for ch in sorted(chars))
    return re.compile(f"[{'^' if negate else ''}{body}]")


def _ascii_deleting(keep: Callable[[str], bool]) -> bytes:
    """The ASCII bytes ``bytes.translate`` must delete to leave only the characters ``keep`` takes."""
    return bytes(code for code in range(128) if not keep(chr(code)))


# Every SMS reply runs these, so the per-character work is done by the regex engine,
# bytes.translate and str.translate rather than by a Python loop over the text. Most replies are
# ASCII, where deleting bytes in C (about 1 ns a byte) is several times faster than a regex scan.
_NOT_GSM7 = _char_class(_GSM7, negate=True)
_GSM7_DOUBLE = _char_class(GSM7_EXTENDED)
# Outside the Basic Multilingual Plane: a surrogate pair, two UCS-2 units.
_UCS2_DOUBLE = re.compile("[\U00010000-\U0010ffff]")
_REPLACEMENTS = {ch: to for ch, to in _EQUIVALENTS.items() if ch not in _GSM7}
_REPLACEABLE = _char_class(_REPLACEMENTS)
_TO_GSM7 = str.maketrans(_REPLACEMENTS)
_ASCII_NOT_GSM7 = _ascii_deleting(lambda ch: ch not in _GSM7)
_ASCII_DOUBLE = _ascii_deleting(lambda ch: ch in GSM7_EXTENDED)
_ASCII_REPLACEABLE = _ascii_deleting(lambda ch: ch in _REPLACEMENTS)


def _ascii_count(text: str, deleting: bytes) -> int:
    return len(text.encode("ascii").translate(None, deleting))


def is_gsm7(text: str) -> bool:
    """Whether every character of ``text`` is in the GSM-7 alphabet (basic or extension table)."""
    if text.isascii():
        return not _ascii_count(text, _ASCII_NOT_GSM7)
    return _NOT_GSM7.search(text) is None


def encoding(text: str) -> str:
    """The alphabet an SMS with this text is sent in: ``"GSM-7"`` or ``"UCS-2"``."""
    return "GSM-7" if is_gsm7(text) else "UCS-2"


def _pack(length: int, doubles: list[int], single: int, part: int) -> int:
    """Segments for ``length`` characters of one unit each, except two at the ``doubles`` indices."""
    if length + len(doubles) <= single:
        return 1
    if not doubles:
        return -(-length // part)
    # A two-unit character never straddles two segments (an escape and its character, or the two
    # halves of a surrogate pair, travel together), so fill greedily, a run of one-unit
    # characters at a time, rather than divide.
    count = i = k = 0
    while i < length:
        count += 1
        room = part
        while True:
            following = doubles[k] if k < len(doubles) else length
            if following - i >= room:
                i += room
                break
            room -= following - i
            i = following
            if i == length or room < 2:
                break
            room -= 2
            i += 1
            k += 1
    return count


def segments(text: str) -> int:
    """How many SMS segments ``text`` takes; an empty text still costs one message."""
    if text.isascii():
        if _ascii_count(text, _ASCII_NOT_GSM7):
            # An ASCII control character (or a backquote) forces UCS-2, where ASCII is one unit.
            return _pack(len(text), [], _UCS2_SINGLE, _UCS2_PART)
        if not _ascii_count(text, _ASCII_DOUBLE):
            return _pack(len(text), [], _GSM7_SINGLE, _GSM7_PART)
        doubles, single, part = _GSM7_DOUBLE, _GSM7_SINGLE, _GSM7_PART
    elif is_gsm7(text):
        doubles, single, part = _GSM7_DOUBLE, _GSM7_SINGLE, _GSM7_PART
    else:
        doubles, single, part = _UCS2_DOUBLE, _UCS2_SINGLE, _UCS2_PART
    return _pack(len(text), [m.start() for m in doubles.finditer(text)], single, part)


def to_gsm7(text: str) -> str:
    """Replace characters that force UCS-2 by their GSM-7 look-alikes; leave the rest as it is.

    Composed forms are used first, so an ``e`` followed by a combining acute becomes ``é``.
    """
    text = unicodedata.normalize("NFC", text)
    if text.isascii():
        found = _ascii_count(text, _ASCII_REPLACEABLE) > 0
    else:
        found = _REPLACEABLE.search(text) is not None
    return text.translate(_TO_GSM7) if found else text


def ucs2_forcing_chars(text: str) -> list[str]:
    """The distinct characters of ``text`` that force UCS-2 although a GSM-7 equivalent exists.

    In order of first appearance, so a message can name them as the author wrote them.
    """
    return list(dict.fromkeys(_REPLACEABLE.findall(text)))
