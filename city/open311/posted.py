"""Reading a posted form (``POST requests``, the staff page) so that odd bytes are a 400.

aiohttp decodes a form with the charset its Content-Type names: bytes that are not in that
charset, a charset Python does not know (or one that is not a text encoding, such as rot13), or
a multipart body without its boundary raise from ``request.post()``. Anyone can send those, so
they are the client's error, answered with a reason, never a 500. Text is cleaned of the
characters no store keeps (a NUL fails PostgreSQL's insert).

Example::

    try:
        form = await read_form(request)
    except UnreadableForm as exc:
        return _error(fmt, 400, str(exc))
"""

from __future__ import annotations

from aiohttp import web
from multidict import MultiDict, MultiDictProxy

from channels.types import clean_text

__all__ = ["UnreadableForm", "read_form"]


class UnreadableForm(Exception):
    """The body is not a form this server can decode."""


async def read_form(request: web.Request) -> MultiDictProxy[str]:
    """The posted fields that are text, cleaned; ``UnreadableForm`` when it cannot be decoded."""
    try:
        posted = await request.post()
    # UnicodeDecodeError is a ValueError; aiohttp raises RuntimeError for an unknown
    # Content-Transfer-Encoding of a multipart part.
    except (ValueError, LookupError, RuntimeError) as exc:
        raise UnreadableForm(f"the form cannot be decoded ({type(exc).__name__})") from None
    fields: MultiDict[str] = MultiDict(
        (key, clean_text(value)) for key, value in posted.items() if isinstance(value, str)
    )
    return MultiDictProxy(fields)
