"""City staff: their accounts, the API tokens other city systems use, sign-in throttling.

What each role may do and how a password or token is checked live in ``staff/``; these are the
rows. Emails are stored lower-cased (``staff.accounts.normalise_email``), so the unique index
makes them unique whatever the case they were typed in.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.base import Base
from storage.types import JsonDocument, UtcDateTime, utc_now

__all__ = ["LoginThrottle", "StaffAccount", "StaffToken"]


class StaffAccount(Base):
    """A person who works for the city: what they may do (roles) and where (wards)."""

    __tablename__ = "staff_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Lower-cased, so "Thandi@City.gov" and "thandi@city.gov" are one account.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    # Role names of ``staff.roles.Role``; a person may hold several.
    roles: Mapped[list[str]] = mapped_column(JsonDocument, default=list)
    # Language codes the person speaks (a resident may be handed to someone who speaks theirs).
    languages: Mapped[list[str]] = mapped_column(JsonDocument, default=list)
    # The wards this person acts for; None is the whole city.
    wards: Mapped[list[str] | None] = mapped_column(JsonDocument)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Argon2 (argon2-cffi's encoded form, parameters included so they can change later).
    password_hash: Mapped[str] = mapped_column(String(256))
    # Set by ``citybot staff add``: the printed one-time password must be replaced at sign-in.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=True)
    # Base32 TOTP secret; None until a second factor is set up.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    # The last TOTP time step accepted: a code seen once is refused the second time.
    totp_last_step: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now, onupdate=utc_now)


class StaffToken(Base):
    """An API token for another city system: shown once, stored as its SHA-256 only."""

    __tablename__ = "staff_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    account_id: Mapped[int] = mapped_column(
        ForeignKey("staff_accounts.id", ondelete="CASCADE"), index=True
    )
    # sha256 hex of the token; the token itself has 256 random bits, so a fast hash is enough.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the token, so an operator can tell tokens apart in a list.
    prefix: Mapped[str] = mapped_column(String(16))
    # A subset of the account's roles; the account's current roles still bound it at use.
    roles: Mapped[list[str]] = mapped_column(JsonDocument, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class LoginThrottle(Base):
    """Failed sign-ins counted per key ("account:<email>" or "address:<ip>"), shared by every
    process through the database."""

    __tablename__ = "staff_login_throttle"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utc_now)
    locked_until: Mapped[datetime | None] = mapped_column(UtcDateTime())
