"""Staff sessions in the browser: an encrypted cookie (aiohttp-session's EncryptedCookieStorage,
Fernet from cryptography), timed out when idle and after a working day, with a CSRF token.

The cookie holds the account id, when the person signed in, when they were last seen and the
session's CSRF token; nothing else, and it is sealed with a key derived from
CITYBOT_SESSION_SECRET (HKDF, so the web chat's signing key and this one never coincide). It is
HttpOnly, SameSite=Strict, limited to /api, and Secure when CITYBOT_PUBLIC_URL is https. While a
secret is rotated out (CITYBOT_SESSION_SECRET_OLD) cookies sealed with it still open, and are
sealed again with the new one when next written (cryptography's MultiFernet).

A request with a session that changes anything must send the session's CSRF token in the
``X-CSRF-Token`` header (a synchronizer token: GET /api/v1/session hands it out). Roles, wards
and whether the account is still active are read from the database on every request, so a
change or a disabled account takes effect at once.

Example::

    storage = session_storage(settings)           # aiohttp_session.setup(api, storage)
    start(session, account_id=7, now=clock())      # after a good sign-in
    state = check(session, now=clock())            # SessionState.OK, IDLE, EXPIRED or NONE
"""

from __future__ import annotations

import base64
import hmac
import secrets
import warnings
from collections.abc import Callable, Sequence
from enum import Enum
from urllib.parse import urlsplit

from aiohttp.web_exceptions import NotAppKeyWarning
from aiohttp_session import Session
from aiohttp_session.cookie_storage import EncryptedCookieStorage
from cryptography.fernet import Fernet, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bot.config import Settings

__all__ = [
    "ABSOLUTE_SECONDS",
    "COOKIE_NAME",
    "CSRF_HEADER",
    "IDLE_SECONDS",
    "SessionState",
    "account_of",
    "check",
    "csrf_ok",
    "derived_key",
    "sealer",
    "session_storage",
    "start",
    "touch",
]

COOKIE_NAME = "citybot_staff_session"
CSRF_HEADER = "X-CSRF-Token"
# Half an hour away from the desk ends a session; so does a working day, whatever happens.
IDLE_SECONDS = 30 * 60
ABSOLUTE_SECONDS = 12 * 60 * 60
# "last seen" is rewritten at most this often, so a busy page does not re-seal the cookie on
# every request.
_TOUCH_SECONDS = 60

Clock = Callable[[], float]

# aiohttp-session 2.12 (the newest) stores its session on the request under string keys, which
# aiohttp 3.14 warns about on every request; the keys are its own and cannot clash with ours.
warnings.filterwarnings("ignore", category=NotAppKeyWarning, module="aiohttp_session")


class SessionState(Enum):
    NONE = "none"
    OK = "ok"
    IDLE = "idle"
    EXPIRED = "expired"


def derived_key(secret: str, purpose: bytes) -> bytes:
    """A Fernet key of its own for ``purpose``, from CITYBOT_SESSION_SECRET (HKDF)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose)
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode()))


def sealer(secrets: Sequence[str], purpose: bytes) -> MultiFernet:
    """Seals with the first secret's key for ``purpose``; opens what any of them sealed."""
    return MultiFernet([Fernet(derived_key(secret, purpose)) for secret in secrets])


class _RotatingFernet(Fernet):
    """A Fernet that is a MultiFernet inside: aiohttp-session's cookie storage takes one Fernet
    and has no key rotation of its own."""

    def __init__(self, keys: MultiFernet, first: bytes) -> None:
        super().__init__(first)
        self._keys = keys

    def encrypt(self, data: bytes) -> bytes:
        return self._keys.encrypt(data)

    def decrypt(self, token: bytes | str, ttl: int | None = None) -> bytes:
        return self._keys.decrypt(token, ttl)


def session_storage(settings: Settings) -> EncryptedCookieStorage:
    purpose = b"citybot staff session"
    return EncryptedCookieStorage(
        _RotatingFernet(
            sealer(settings.session_secrets, purpose),
            derived_key(settings.session_secret, purpose),
        ),
        cookie_name=COOKIE_NAME,
        # Fernet's time-to-live as well: an older cookie does not even decrypt.
        max_age=ABSOLUTE_SECONDS,
        path="/api",
        secure=urlsplit(settings.public_url).scheme == "https",
        httponly=True,
        samesite="Strict",
    )


def start(session: Session, *, account_id: int, now: float) -> str:
    """Fill a fresh session for ``account_id``; returns its CSRF token."""
    session.invalidate()
    csrf = secrets.token_urlsafe(32)
    session.update({"account": account_id, "since": now, "seen": now, "csrf": csrf})
    return csrf


def check(session: Session, *, now: float) -> SessionState:
    since, seen = session.get("since"), session.get("seen")
    if not isinstance(session.get("account"), int) or not isinstance(since, float | int):
        return SessionState.NONE
    if now - since > ABSOLUTE_SECONDS:
        return SessionState.EXPIRED
    if not isinstance(seen, float | int) or now - seen > IDLE_SECONDS:
        return SessionState.IDLE
    return SessionState.OK


def account_of(session: Session) -> int:
    return int(session["account"])


def touch(session: Session, *, now: float) -> None:
    if now - float(session.get("seen", 0)) >= _TOUCH_SECONDS:
        session["seen"] = now


def csrf_ok(session: Session, given: str | None) -> bool:
    expected = session.get("csrf")
    return (
        isinstance(expected, str)
        and given is not None
        and hmac.compare_digest(given.encode(), expected.encode())
    )
