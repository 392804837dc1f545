"""Unforgeable tokens for links citybot hands out (a photo for the city, a resident's export).

A token is ``base64url(payload).base64url(HMAC-SHA256(key, payload))``, the key derived from a
secret and a purpose string, so a token made for one purpose never passes for another (or for a
web chat cookie). What the payload means, and when it expires, is the caller's.

Keys rotate with a grace period: tokens are signed with the first secret given, and a token
signed with any of the others (the old keys, ``CITYBOT_MEDIA_LINK_KEY_OLD``) still verifies.

Example::

    signer = TokenSigner(["n3w", "0ld"], purpose=b"citybot media links v1")
    token = signer.sign(b"42.photo.1767225600")   # signed with "n3w"
    signer.payload(token)      # b"42.photo.1767225600", or None if forged or malformed
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Sequence

__all__ = ["TokenSigner"]

_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


class TokenSigner:
    def __init__(self, secret: str | Sequence[str], *, purpose: bytes) -> None:
        """``secret``: the key to sign with, then any old keys still accepted."""
        given = [secret] if isinstance(secret, str) else list(secret)
        if not given:
            raise ValueError("a TokenSigner needs a secret")
        self._keys = [hmac.new(s.encode(), purpose, hashlib.sha256).digest() for s in given]

    def sign(self, payload: bytes) -> str:
        return f"{_b64(payload)}.{_b64(_mac(self._keys[0], payload))}"

    def payload(self, token: str) -> bytes | None:
        """The signed payload, or None when the token is not one of ours."""
        encoded, _, signature = token.partition(".")
        try:
            payload, given = _unb64(encoded), _unb64(signature)
        except (ValueError, binascii.Error):
            return None
        # Every key is tried (no early exit), so the time taken says nothing about which matched.
        matches = [hmac.compare_digest(given, _mac(key, payload)) for key in self._keys]
        return payload if any(matches) else None


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or not _BASE64URL.fullmatch(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
