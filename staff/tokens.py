"""API tokens for other city systems: random, shown once, stored as a hash.

A token is ``cbt_`` and 43 URL-safe characters (256 random bits). Only its SHA-256 is stored: a
fast hash is enough for a secret that random (Argon2's cost is for passwords people choose), and
it lets a token be found by its hash in one indexed look-up.

Example::

    token = new_token()      # 'cbt_Vh3...'; print it once
    StaffToken(token_hash=token_hash(token), prefix=token[:12], ...)
"""

from __future__ import annotations

import hashlib
import secrets

__all__ = ["MAX_TOKEN_LENGTH", "PREFIX", "looks_like_token", "new_token", "token_hash"]

PREFIX = "cbt_"
MAX_TOKEN_LENGTH = 100


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_token(token: str) -> bool:
    """Worth a database look-up: our prefix, a sane length, URL-safe characters only."""
    body = token[len(PREFIX) :]
    return (
        token.startswith(PREFIX)
        and 0 < len(token) <= MAX_TOKEN_LENGTH
        and body.isascii()
        and all(c.isalnum() or c in "-_" for c in body)
        and bool(body)
    )
