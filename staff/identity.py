"""Who a signed-in staff member or API token is, and what a refused sign-in says.

Example::

    result = await authentication.sign_in(email, password, code, address="10.0.0.5")
    if isinstance(result, Refusal):
        ...   # result.code for the HTTP status, result.message for the person
    elif result.can(Permission.CREATE_BROADCASTS) and result.covers_ward("115"):
        ...
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from staff.roles import Permission, Role, permissions_for

__all__ = ["Refusal", "RefusalCode", "StaffIdentity"]


@dataclass(frozen=True, slots=True)
class StaffIdentity:
    account_id: int
    email: str
    roles: frozenset[Role]
    # The wards this identity acts for; None is the whole city.
    wards: frozenset[str] | None
    # Signed in with the one-time password from ``citybot staff add``: set a new one first.
    must_change_password: bool = False
    # The API token used, when it was a token.
    token_id: int | None = None

    @property
    def actor(self) -> str:
        """How the audit log names this identity."""
        return f"staff:{self.account_id}"

    def can(self, permission: Permission) -> bool:
        return permission in permissions_for(self.roles)

    def covers_ward(self, ward: str) -> bool:
        return self.wards is None or ward in self.wards


class RefusalCode(StrEnum):
    # 401: the credentials are wrong, or the second factor is missing or wrong.
    WRONG_CREDENTIALS = "wrong_credentials"
    TOTP_REQUIRED = "totp_required"
    TOTP_NOT_SET_UP = "totp_not_set_up"
    ACCOUNT_DISABLED = "account_disabled"
    TOKEN_INVALID = "token_invalid"
    TOKEN_EXPIRED = "token_expired"
    TOKEN_REVOKED = "token_revoked"
    # 429: too many failures; ``retry_after`` says when.
    THROTTLED = "throttled"


@dataclass(frozen=True, slots=True)
class Refusal:
    code: RefusalCode
    # A sentence for the person signing in; never says whether an email has an account.
    message: str
    retry_after: datetime | None = None
