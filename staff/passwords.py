"""Staff passwords, hashed with Argon2id (argon2-cffi), re-hashed when the parameters change.

argon2-cffi's defaults follow RFC 9106's recommendation and move with new releases; a hash
made with older parameters still verifies, and ``check_password`` hands back a new hash for the
caller to store (the only moment the password is known).

Example::

    stored = hash_password("correct horse battery staple")
    check_password(stored, "correct horse battery staple")   # PasswordCheck(ok=True, rehashed=None)
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from staff.errors import InvalidStaffInput

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "PasswordCheck",
    "check_password",
    "hash_password",
    "one_time_password",
]

# Long enough for any pass phrase; a megabyte pasted into the field is refused before any work.
MAX_PASSWORD_LENGTH = 1024
# For a password a person chooses (the one-time ones are longer): NIST SP 800-63B's floor is 8;
# staff accounts reach residents' personal data, so a little more.
MIN_PASSWORD_LENGTH = 12
DEFAULT_HASHER = PasswordHasher()


@dataclass(frozen=True, slots=True)
class PasswordCheck:
    ok: bool
    # A new hash to store when the stored one used other parameters (only when ``ok``).
    rehashed: str | None = None


def _checked(password: str) -> str:
    if not password:
        raise InvalidStaffInput("the password is empty")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidStaffInput(f"the password is longer than {MAX_PASSWORD_LENGTH} characters")
    return password


def hash_password(password: str, hasher: PasswordHasher = DEFAULT_HASHER) -> str:
    return hasher.hash(_checked(password))


def check_password(
    stored_hash: str, password: str, hasher: PasswordHasher = DEFAULT_HASHER
) -> PasswordCheck:
    """Whether ``password`` matches ``stored_hash`` (constant work whether it does or not)."""
    if not password or len(password) > MAX_PASSWORD_LENGTH:
        return PasswordCheck(ok=False)
    try:
        hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return PasswordCheck(ok=False)
    if hasher.check_needs_rehash(stored_hash):
        return PasswordCheck(ok=True, rehashed=hasher.hash(password))
    return PasswordCheck(ok=True)


def one_time_password() -> str:
    """A password for a new account, printed once and replaced at the first sign-in."""
    return secrets.token_urlsafe(15)
