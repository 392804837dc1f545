"""Signed, short-lived links to a resident's data export: ``{public_url}/my-data/{token}``.

EXPORT MY DATA on the web chat answers with one of these (``conversations.data_export``); the
route ``bot.web.resident_export`` checks it and serves the export as JSON. The token names the
resident and when the link stops working; an HMAC makes it unforgeable. The export is read when
the link is followed, so a link to an erased resident's data shows nothing personal.

The key is the link key (``CITYBOT_MEDIA_LINK_KEY``, old ones accepted while they are in
``CITYBOT_MEDIA_LINK_KEY_OLD``), derived for this one purpose, as the media links' is for theirs
(``city.media_links``), so neither kind of token passes as the other or as a web chat cookie.

Example::

    links = ExportLinks(secret="s3cret", public_url="https://bot.city.example")
    url = links.url_for(7, now=now)   # https://bot.city.example/my-data/Ny4xNz...
    links.read(url.rsplit("/", 1)[1], now=now)   # 7
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from storage.signed_tokens import TokenSigner

__all__ = ["ExpiredExportLink", "ExportLinks", "ForgedExportLink"]

_PURPOSE = b"citybot resident export links v1"
# Long enough to open the link from the chat, short enough that a forwarded or leaked link
# (it holds everything about the resident) is soon worthless.
DEFAULT_LIFETIME = timedelta(hours=1)


class ForgedExportLink(Exception):
    """The token was not signed with our key (or is not a token at all)."""


class ExpiredExportLink(Exception):
    """The token is genuine but its time is up."""


class ExportLinks:
    def __init__(
        self,
        secret: str | Sequence[str],
        public_url: str,
        *,
        lifetime: timedelta = DEFAULT_LIFETIME,
    ) -> None:
        self._signer = TokenSigner(secret, purpose=_PURPOSE)
        self.public_url = public_url.rstrip("/")
        self.lifetime = lifetime

    def token_for(self, resident_id: int, *, now: datetime) -> str:
        expires = int((now + self.lifetime).timestamp())
        payload = f"{resident_id}.{expires}".encode()
        return self._signer.sign(payload)

    def url_for(self, resident_id: int, *, now: datetime) -> str:
        return f"{self.public_url}/my-data/{self.token_for(resident_id, now=now)}"

    def read(self, token: str, *, now: datetime) -> int:
        """The resident a token stands for; ``ForgedExportLink`` or ``ExpiredExportLink``."""
        payload = self._signer.payload(token)
        if payload is None:
            raise ForgedExportLink("not an export link, or not signed with our key")
        try:
            raw_id, raw_expires = payload.decode("ascii").split(".")
            resident_id, expires = int(raw_id), int(raw_expires)
        except ValueError:
            raise ForgedExportLink("not an export link") from None
        if now.timestamp() > expires:
            raise ExpiredExportLink("the export link has expired: ask for your data again")
        return resident_id
