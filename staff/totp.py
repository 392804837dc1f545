"""The second factor: time-based one-time codes (RFC 6238, pyotp), each accepted once.

A code is good for its 30-second step and one step either side (clocks drift); the step
accepted is stored on the account, so the same code (or an older one) cannot be replayed.

Example::

    secret = new_secret()
    provisioning_uri(secret, "thandi@city.gov")   # otpauth://totp/citybot:thandi%40city.gov?...
    accepted_step(secret, "123456", last_step=None, now=datetime.now(UTC))   # None or the step
"""

from __future__ import annotations

import hmac
from datetime import datetime

import pyotp

__all__ = ["ISSUER", "accepted_step", "new_secret", "provisioning_uri"]

ISSUER = "citybot"
_DRIFT_STEPS = 1


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str, issuer: str = ISSUER) -> str:
    """The ``otpauth://`` URI an authenticator app reads (as text or a QR code)."""
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def accepted_step(secret: str, code: str, *, last_step: int | None, now: datetime) -> int | None:
    """The time step ``code`` belongs to, if it is right and newer than ``last_step``."""
    code = code.replace(" ", "").strip()
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for offset in range(-_DRIFT_STEPS, _DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.at(now, counter_offset=offset), code):
            step = current + offset
            return step if last_step is None or step > last_step else None
    return None
