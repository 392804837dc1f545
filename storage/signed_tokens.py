"""Unforgeable tokens for links citybot hands out (a photo for the city, a resident's export).

A token is ``base64url(payload).base64url(HMAC-SHA256(key, payload))``, the key derived from the
session secret and a purpose string, so a token made for one purpose never passes for another
(or for a web chat cookie). What the payload means, and when it expires, is the caller's.

Example::

    signer = TokenSigner("s3cret", purpose=b"citybot media links v1")
    token = signer.sign(b"42.photo.1767225600")
    signer.payload(token)      # b"42.photo.1767225600", or None if forged or malformed
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

__all__ = ["TokenSigner"]

_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


class TokenSigner:
    def __init__(self, secret: str, *, purpose: bytes) -> None:
        self._key = hmac.new(secret.encode(), purpose, hashlib.sha256).digest()

    def sign(self, payload: bytes) -> str:
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def payload(self, token: str) -> bytes | None:
        """The signed payload, or None when the token is not one of ours."""
        encoded, _, signature = token.partition(".")
        try:
            payload, given = _unb64(encoded), _unb64(signature)
        except (ValueError, binascii.Error):
            return None
        return payload if hmac.compare_digest(given, self._mac(payload)) else None

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or not _BASE64URL.fullmatch(text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
