"""Form-encoding (``application/x-www-form-urlencoded``) of the bodies the channels post.

``form_urlencode(fields)`` gives exactly the bytes of ``urlencode(fields).encode("ascii")``. The
Twilio and Telegram transports encode a body for every message they send, and percent-encoding
walks every byte of every value: about 20 us for a typical reply, as much as the rest of our side
of the HTTP client. Nearly all of those values come back again and again (the field names, the
sending number, the StatusCallback URL, the same question asked of every resident in their
language, the same keyboard, the resident's number or chat id for each reply of a conversation),
so each is encoded once and kept in an LRU: a value in use stays, one no longer sent drops out.

The cache holds outgoing texts and addresses, which are also in the message log; it is bounded
in entries (``_CACHED_VALUES``) and in size (values up to ``_LONGEST_CACHED`` characters, the
longest a Twilio message may be; longer ones are encoded every time).

Example::

    form_urlencode([("To", "+27831234567"), ("Body", "Hello there")])
    # b'To=%2B27831234567&Body=Hello+there'
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from urllib.parse import quote_plus

__all__ = ["form_urlencode"]

_LONGEST_CACHED = 1600
_CACHED_VALUES = 1024


def form_urlencode(fields: Iterable[tuple[str, str]]) -> bytes:
    """``name=value`` pairs joined by ``&``, UTF-8 and percent-encoded as ``urlencode`` does.

    Raises ``UnicodeEncodeError`` for text that is not valid Unicode (a lone surrogate), as
    ``urlencode`` does.
    """
    return "&".join([_quote(name) + "=" + _quote(value) for name, value in fields]).encode("ascii")


def _quote(text: str) -> str:
    if len(text) <= _LONGEST_CACHED:
        return _quote_cached(text)
    return quote_plus(text, safe="")


@functools.lru_cache(maxsize=_CACHED_VALUES)
def _quote_cached(text: str) -> str:
    return quote_plus(text, safe="")
