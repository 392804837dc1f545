"""Signed links to a submission's photo, for the city's back end: ``{public_url}/media/{token}``.

The token names a submission and the step whose answer is the photo, and when the link stops
working; an HMAC makes it unforgeable. It carries no provider URL and no file id: the media
proxy (``bot.web.media``) looks the reference up in the submission, so erasing a resident's
answers also ends every link to their photos.

The key is ``CITYBOT_MEDIA_LINK_KEY`` (``Settings.link_keys``), a key of its own so rotating the
session secret does not end the links already filed with the city, and derived for this one
purpose, so nothing else signed with it passes as a media token. Links are signed with the
current key; those signed with a key in ``CITYBOT_MEDIA_LINK_KEY_OLD`` keep working until they
expire. Every process that files or serves must share the keys (the filer signs, ``serve``
checks).

Example::

    links = MediaLinks(secret="s3cret", public_url="https://bot.city.example")
    url = links.url_for(submission_id=42, step_id="photo")   # https://bot.city.example/media/NDIu...
    links.read(url.rsplit("/", 1)[1])                        # MediaLink(submission_id=42, step_id='photo')
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from storage.signed_tokens import TokenSigner

__all__ = ["ExpiredLink", "ForgedLink", "MediaLink", "MediaLinks"]

_PURPOSE = b"citybot media links v1"
_STEP_ID = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class ForgedLink(Exception):
    """The token was not signed with our key (or is not a token at all)."""


class ExpiredLink(Exception):
    """The token is genuine but its time is up."""


@dataclass(frozen=True, slots=True)
class MediaLink:
    submission_id: int
    step_id: str


class MediaLinks:
    def __init__(
        self, secret: str | Sequence[str], public_url: str, *, lifetime_days: float = 90.0
    ) -> None:
        self._signer = TokenSigner(secret, purpose=_PURPOSE)
        self.public_url = public_url.rstrip("/")
        self.lifetime_seconds = lifetime_days * 86400

    def token_for(self, submission_id: int, step_id: str, *, now: float | None = None) -> str:
        if not _STEP_ID.match(step_id):
            raise ValueError(f"not a step id: {step_id!r}")
        expires = int((time.time() if now is None else now) + self.lifetime_seconds)
        payload = f"{submission_id}.{step_id}.{expires}".encode()
        return self._signer.sign(payload)

    def url_for(self, submission_id: int, step_id: str, *, now: float | None = None) -> str:
        return f"{self.public_url}/media/{self.token_for(submission_id, step_id, now=now)}"

    def read(self, token: str, *, now: float | None = None) -> MediaLink:
        """The link a token stands for; ``ForgedLink`` or ``ExpiredLink`` otherwise."""
        payload = self._signer.payload(token)
        if payload is None:
            raise ForgedLink("not a media token, or not signed with our key")
        # Signed by us, so well formed; parsed defensively all the same.
        try:
            raw_id, step_id, raw_expires = payload.decode("ascii").split(".")
            link = MediaLink(int(raw_id), step_id)
            expires = int(raw_expires)
        except ValueError:
            raise ForgedLink("not a media token") from None
        if (time.time() if now is None else now) > expires:
            raise ExpiredLink("the media link has expired")
        return link
