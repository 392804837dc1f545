"""Creating accounts and tokens: odd input refused with a reason, every change audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from staff.accounts import (
    NewAccount,
    create_account,
    has_active_admin,
    issue_token,
    list_accounts,
    normalise_email,
)
from staff.errors import AccountExists, AccountNotFound, InvalidStaffInput, UnknownRole
from storage.models import AuditLog, StaffToken
from tests.staff.conftest import FAST_HASHER

Sessions = async_sessionmaker[AsyncSession]


@pytest.mark.parametrize(
    "email",
    [
        "",
        "thandi",
        "thandi@",
        "@city.gov",
        "thandi@city",
        "two@at@city.gov",
        "space here@city.gov",
        "thandi@city..gov",
        ".thandi@city.gov",
        "thandi@-city.gov",
        "thandi\n@city.gov",
        "<thandi@city.gov>",
        "thandi@città.gov",
        "a" * 65 + "@city.gov",
        "a@" + "b" * 250 + ".gov",
    ],
)
def test_odd_emails_are_refused(email: str) -> None:
    with pytest.raises(InvalidStaffInput):
        normalise_email(email)


def test_emails_are_kept_in_lower_case() -> None:
    assert normalise_email("  Thandi.Nkosi+ops@City.GOV ") == "thandi.nkosi+ops@city.gov"
    assert normalise_email("x@xn--citt-4na.gov") == "x@xn--citt-4na.gov"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"roles": []}, "at least one role"),
        ({"roles": ["root"]}, "unknown role 'root'"),
        ({"roles": ["agent"], "wards": ["115", "../etc"]}, "not a ward"),
        ({"roles": ["agent"], "languages": ["english"]}, "not a language"),
        ({"roles": ["agent"], "name": "x" * 201}, "longer than 200"),
        ({"roles": ["agent"], "name": "Bell\x07"}, "control characters"),
    ],
)
def test_new_account_input_is_checked(kwargs: dict[str, object], error: str) -> None:
    with pytest.raises(InvalidStaffInput, match=error):
        NewAccount.checked("a@city.gov", **kwargs)  # type: ignore[arg-type]


async def test_one_account_per_email_whatever_the_case(sessions: Sessions) -> None:
    async with sessions() as session, session.begin():
        assert not await has_active_admin(session)
        await create_account(
            session,
            NewAccount.checked("Admin@City.gov", roles=["admin"]),
            actor="cli",
            hasher=FAST_HASHER,
        )
        assert await has_active_admin(session)
    with pytest.raises(AccountExists, match=r"already a staff account for admin@city\.gov"):
        async with sessions() as session, session.begin():
            await create_account(
                session,
                NewAccount.checked("ADMIN@city.gov", roles=["agent"]),
                actor="cli",
                hasher=FAST_HASHER,
            )
    async with sessions() as session:
        assert [a.email for a in await list_accounts(session)] == ["admin@city.gov"]
        actions = (await session.scalars(select(AuditLog.action))).all()
    assert actions == ["account.create"]


async def test_tokens_carry_only_roles_the_account_holds(sessions: Sessions) -> None:
    async with sessions() as session, session.begin():
        await create_account(
            session,
            NewAccount.checked("a@city.gov", roles=["analyst"]),
            actor="cli",
            hasher=FAST_HASHER,
        )
    for roles, days, error in [
        (["admin"], 30, "does not hold admin"),
        (["bogus"], 30, "unknown role"),
        ([], 30, "at least one role"),
        (["analyst"], 0, "1 to 365 days"),
        (["analyst"], 366, "1 to 365 days"),
    ]:
        with pytest.raises(InvalidStaffInput, match=error):
            async with sessions() as session, session.begin():
                await issue_token(session, "a@city.gov", roles=roles, days=days, actor="cli")
    with pytest.raises(AccountNotFound):
        async with sessions() as session, session.begin():
            await issue_token(session, "b@city.gov", roles=["analyst"], days=1, actor="cli")
    async with sessions() as session:
        assert (await session.scalars(select(StaffToken))).all() == []
    assert issubclass(UnknownRole, InvalidStaffInput)
