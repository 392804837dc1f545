"""Staff accounts and their API tokens: created, listed, disabled, every change audited.

Every function runs in the caller's transaction and records its action with ``staff.audit``
(actor ``"cli"`` for the command line, ``"staff:<id>"`` for the admin API), so a change and its
audit row commit together.

Example::

    async with sessionmaker() as session, session.begin():
        created = await create_account(session, NewAccount.checked(
            "Thandi@City.gov", roles=["broadcaster"], wards=["115"]), actor="cli")
    created.password        # shown once
    created.totp_uri        # otpauth://... (broadcasters need a second factor)
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from staff import audit, passwords, tokens, totp
from staff.errors import AccountExists, AccountNotFound, InvalidStaffInput, NotFound
from staff.paging import Page
from staff.roles import TOTP_REQUIRED, Role, parse_roles
from storage.models import StaffAccount, StaffToken
from storage.types import utc_now

__all__ = [
    "MAX_TOKEN_DAYS",
    "AccountChange",
    "CreatedAccount",
    "IssuedToken",
    "NewAccount",
    "account_by_id",
    "change_account",
    "create_account",
    "disable_account",
    "has_active_admin",
    "issue_token",
    "list_accounts",
    "list_accounts_page",
    "list_tokens_page",
    "normalise_email",
    "revoke_token",
]

MAX_TOKEN_DAYS = 365
# A practical address, not all of RFC 5322: no quoted local parts or IP-literal domains, which
# no city mail system hands out; an internationalised domain is written in its xn-- form.
_LOCAL = r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_EMAIL = re.compile(rf"{_LOCAL}@{_LABEL}(?:\.{_LABEL})+")
_WARD = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _-]{0,31}")
_LANGUAGE = re.compile(r"[a-z]{2,3}")


def normalise_email(email: str) -> str:
    """The stored form of ``email`` (lower case), or ``InvalidStaffInput`` saying what is odd."""
    candidate = email.strip()
    if len(candidate) > 254:
        raise InvalidStaffInput("the email address is longer than 254 characters")
    if not _EMAIL.fullmatch(candidate) or ".." in candidate or candidate.startswith("."):
        raise InvalidStaffInput(
            f"{email!r} is not an email address this can use (like name@city.gov; "
            "write an internationalised domain in its xn-- form)"
        )
    return candidate.lower()


def _name(name: str) -> str:
    name = name.strip()
    if len(name) > 200:
        raise InvalidStaffInput("the name is longer than 200 characters")
    if any(unicodedata.category(c).startswith("C") for c in name):
        raise InvalidStaffInput("the name has control characters in it")
    return name


def _wards(wards: Iterable[str] | None) -> list[str] | None:
    if wards is None:
        return None
    checked = sorted({w.strip() for w in wards})
    for ward in checked:
        if not _WARD.fullmatch(ward):
            raise InvalidStaffInput(f"{ward!r} is not a ward (letters, digits, up to 32)")
    return checked or None


def _languages(languages: Iterable[str]) -> list[str]:
    checked = sorted({code.strip().lower() for code in languages})
    for code in checked:
        if not _LANGUAGE.fullmatch(code):
            raise InvalidStaffInput(f"{code!r} is not a language code (like en, af, zu, xh)")
    return checked


@dataclass(frozen=True, slots=True)
class NewAccount:
    """An account to create, its input already checked (``NewAccount.checked``)."""

    email: str
    roles: frozenset[Role]
    name: str = ""
    wards: tuple[str, ...] | None = None
    languages: tuple[str, ...] = ()

    @classmethod
    def checked(
        cls,
        email: str,
        *,
        roles: Iterable[str],
        name: str = "",
        wards: Iterable[str] | None = None,
        languages: Iterable[str] = (),
    ) -> NewAccount:
        parsed = parse_roles(roles)
        if not parsed:
            raise InvalidStaffInput("an account needs at least one role")
        ward_list = _wards(wards)
        return cls(
            email=normalise_email(email),
            roles=parsed,
            name=_name(name),
            wards=None if ward_list is None else tuple(ward_list),
            languages=tuple(_languages(languages)),
        )


@dataclass(frozen=True, slots=True)
class CreatedAccount:
    account: StaffAccount
    # The one-time password, to be shown once.
    password: str
    # For roles that need a second factor: the otpauth:// URI, to be shown once.
    totp_uri: str | None


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    record: StaffToken


def _sorted_roles(roles: Iterable[Role]) -> list[str]:
    order = list(Role)
    return [r.value for r in sorted(roles, key=order.index)]


async def create_account(
    session: AsyncSession,
    new: NewAccount,
    *,
    actor: str,
    address: str | None = None,
    hasher: PasswordHasher = passwords.DEFAULT_HASHER,
) -> CreatedAccount:
    password = passwords.one_time_password()
    secret = totp.new_secret() if new.roles & TOTP_REQUIRED else None
    account = StaffAccount(
        email=new.email,
        name=new.name,
        roles=_sorted_roles(new.roles),
        languages=list(new.languages),
        wards=None if new.wards is None else list(new.wards),
        active=True,
        password_hash=passwords.hash_password(password, hasher),
        must_change_password=True,
        totp_secret=secret,
    )
    try:
        async with session.begin_nested():
            session.add(account)
            await session.flush()
    except IntegrityError:
        raise AccountExists(f"there is already a staff account for {new.email}") from None
    await audit.record(
        session,
        actor=actor,
        action="account.create",
        target=f"staff:{account.id}",
        address=address,
        details={"roles": account.roles, "wards": account.wards},
    )
    uri = totp.provisioning_uri(secret, new.email) if secret else None
    return CreatedAccount(account=account, password=password, totp_uri=uri)


async def _account(session: AsyncSession, email: str) -> StaffAccount:
    normalised = normalise_email(email)
    account = await session.scalar(select(StaffAccount).where(StaffAccount.email == normalised))
    if account is None:
        raise AccountNotFound(f"there is no staff account for {normalised}")
    return account


async def list_accounts(session: AsyncSession) -> Sequence[StaffAccount]:
    return (await session.scalars(select(StaffAccount).order_by(StaffAccount.email))).all()


async def account_by_id(session: AsyncSession, account_id: int) -> StaffAccount:
    account = await session.get(StaffAccount, account_id)
    if account is None:
        raise AccountNotFound(f"there is no staff account {account_id}")
    return account


async def list_accounts_page(
    session: AsyncSession, *, limit: int, after: int | None = None
) -> Page[StaffAccount]:
    """Accounts in the order they were made, ``limit`` after the account ``after``."""
    query = select(StaffAccount).order_by(StaffAccount.id).limit(limit + 1)
    if after is not None:
        query = query.where(StaffAccount.id > after)
    return Page.of((await session.scalars(query)).all(), limit, key=lambda a: a.id)


@dataclass(frozen=True, slots=True)
class AccountChange:
    """What to change on an account; None leaves a field as it is (``wards=()`` is city-wide)."""

    roles: frozenset[Role] | None = None
    wards: tuple[str, ...] | None = None
    active: bool | None = None

    @classmethod
    def checked(
        cls,
        *,
        roles: Iterable[str] | None = None,
        wards: Iterable[str] | None = None,
        active: bool | None = None,
    ) -> AccountChange:
        parsed = None if roles is None else parse_roles(roles)
        if parsed is not None and not parsed:
            raise InvalidStaffInput("an account needs at least one role")
        ward_list = None if wards is None else tuple(_wards(wards) or ())
        return cls(roles=parsed, wards=ward_list, active=active)


async def change_account(
    session: AsyncSession,
    account_id: int,
    change: AccountChange,
    *,
    actor: str,
    address: str | None = None,
) -> StaffAccount:
    """Change roles, wards or active; refused when it would leave nobody to run the house."""
    account = await account_by_id(session, account_id)
    before = {"roles": account.roles, "wards": account.wards, "active": account.active}
    if change.roles is not None:
        if change.roles & TOTP_REQUIRED and account.totp_secret is None:
            # The person could no longer sign in; create a new account for such roles instead.
            raise InvalidStaffInput(
                f"{', '.join(_sorted_roles(change.roles & TOTP_REQUIRED))} need a second "
                "factor, which this account has not set up"
            )
        account.roles = _sorted_roles(change.roles)
    if change.wards is not None:
        account.wards = list(change.wards) or None
    if change.active is not None:
        account.active = change.active
    await session.flush()
    if not await has_active_admin(session):
        raise InvalidStaffInput("that would leave no active admin")
    after = {"roles": account.roles, "wards": account.wards, "active": account.active}
    action = "account.disable" if before["active"] and not account.active else "account.change"
    await audit.record(
        session,
        actor=actor,
        action=action,
        target=f"staff:{account.id}",
        address=address,
        details={k: {"from": before[k], "to": v} for k, v in after.items() if before[k] != v},
    )
    return account


async def disable_account(
    session: AsyncSession, email: str, *, actor: str, address: str | None = None
) -> StaffAccount:
    """Disable the account (its sign-ins and tokens stop working); disabling twice is a no-op
    that is still audited, so the log shows who tried."""
    account = await _account(session, email)
    was_active = account.active
    account.active = False
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="account.disable",
        target=f"staff:{account.id}",
        address=address,
        details={"was_active": was_active},
    )
    return account


async def issue_token(
    session: AsyncSession,
    email: str,
    *,
    roles: Iterable[str],
    days: int,
    actor: str,
    address: str | None = None,
    now: datetime | None = None,
) -> IssuedToken:
    """A new API token for the account, limited to ``roles`` (which it must hold)."""
    wanted = parse_roles(roles)
    if not wanted:
        raise InvalidStaffInput("a token needs at least one role")
    if not 1 <= days <= MAX_TOKEN_DAYS:
        raise InvalidStaffInput(f"a token lasts 1 to {MAX_TOKEN_DAYS} days, not {days}")
    account = await _account(session, email)
    missing = wanted - parse_roles(account.roles)
    if missing:
        raise InvalidStaffInput(
            f"{account.email} does not hold {', '.join(_sorted_roles(missing))}; "
            "a token can only carry roles its account has"
        )
    if not account.active:
        raise InvalidStaffInput(f"{account.email} is disabled")
    token = tokens.new_token()
    now = now or utc_now()
    record = StaffToken(
        account_id=account.id,
        token_hash=tokens.token_hash(token),
        prefix=token[:12],
        roles=_sorted_roles(wanted),
        created_at=now,
        expires_at=now + timedelta(days=days),
    )
    session.add(record)
    await session.flush()
    await audit.record(
        session,
        actor=actor,
        action="token.issue",
        target=f"token:{record.id}",
        address=address,
        details={"account": f"staff:{account.id}", "roles": record.roles, "days": days},
    )
    return IssuedToken(token=token, record=record)


async def has_active_admin(session: AsyncSession) -> bool:
    """Whether anyone can run the house yet (``serve`` says how to create the first admin)."""
    for roles in await session.scalars(
        select(StaffAccount.roles).where(StaffAccount.active.is_(True))
    ):
        if Role.ADMIN.value in roles:
            return True
    return False


async def list_tokens_page(
    session: AsyncSession, *, limit: int, before: int | None = None
) -> Page[StaffToken]:
    """Tokens, newest first (never the token itself: only its prefix is kept)."""
    query = select(StaffToken).order_by(StaffToken.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(StaffToken.id < before)
    return Page.of((await session.scalars(query)).all(), limit, key=lambda t: t.id)


async def revoke_token(
    session: AsyncSession,
    token_id: int,
    *,
    actor: str,
    address: str | None = None,
    now: datetime | None = None,
) -> StaffToken:
    """Revoke a token from now on; revoking twice keeps the first time (and is audited)."""
    record = await session.get(StaffToken, token_id)
    if record is None:
        raise NotFound(f"there is no API token {token_id}")
    if record.revoked_at is None:
        record.revoked_at = now or utc_now()
    await session.flush()
    await audit.record(
        session, actor=actor, action="token.revoke", target=f"token:{record.id}", address=address
    )
    return record
