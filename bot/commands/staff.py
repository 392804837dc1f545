"""``citybot staff add|list|disable|token``: staff accounts and API tokens from the shell.

Each change is audited with actor ``cli``. Passwords, TOTP set-up URIs and tokens are printed
once and never stored in the clear. Bad input exits 2 with a one-line reason; an unknown or
duplicate account, or a database that cannot be reached, exits 1.

Example::

    $ citybot staff add thandi@city.gov --role admin --name "Thandi Nkosi"
    $ citybot staff token etl@city.gov --role analyst --days 30
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.commands.lifecycle import settings_or_none
from staff.accounts import NewAccount, create_account, disable_account, issue_token, list_accounts
from staff.errors import InvalidStaffInput, StaffError
from storage.migrate import upgrade_database
from storage.session import create_engine, create_sessionmaker

__all__ = ["database", "run"]

ACTOR = "cli"
Sessions = async_sessionmaker[AsyncSession]


@asynccontextmanager
async def database(url: str) -> AsyncIterator[Sessions]:
    """Sessions on an up-to-date database (the first command on a new machine creates it)."""
    await upgrade_database(url)
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


async def _add(sessions: Sessions, args: argparse.Namespace) -> int:
    new = NewAccount.checked(
        args.email, roles=args.roles, name=args.name, wards=args.wards, languages=args.languages
    )
    async with sessions() as session, session.begin():
        created = await create_account(session, new, actor=ACTOR)
    account = created.account
    scope = f" in ward(s) {', '.join(account.wards)}" if account.wards else ""
    print(f"created staff account {account.email} ({', '.join(account.roles)}){scope}")
    print(
        f"one-time password (shown once; a new one is set at the first sign-in): {created.password}"
    )
    if created.totp_uri:
        print("these roles need a second factor: add this to an authenticator app (shown once):")
        print(created.totp_uri)
    return 0


async def _list(sessions: Sessions, args: argparse.Namespace) -> int:
    async with sessions() as session:
        accounts = await list_accounts(session)
    if not accounts:
        print("no staff accounts yet: citybot staff add EMAIL --role admin")
        return 0
    rows = [("email", "name", "roles", "wards", "languages", "status", "totp")]
    for a in accounts:
        rows.append(
            (
                a.email,
                a.name or "-",
                ",".join(a.roles),
                ",".join(a.wards) if a.wards else "all",
                ",".join(a.languages) or "-",
                "active" if a.active else "disabled",
                "yes" if a.totp_secret else "no",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


async def _disable(sessions: Sessions, args: argparse.Namespace) -> int:
    async with sessions() as session, session.begin():
        account = await disable_account(session, args.email, actor=ACTOR)
    print(f"disabled {account.email}: it can no longer sign in, and its API tokens stop working")
    return 0


async def _token(sessions: Sessions, args: argparse.Namespace) -> int:
    async with sessions() as session, session.begin():
        issued = await issue_token(
            session, args.email, roles=args.roles, days=args.days, actor=ACTOR
        )
    record = issued.record
    print(
        f"API token for {args.email.strip().lower()} ({', '.join(record.roles)}), "
        f"valid until {record.expires_at:%Y-%m-%d %H:%M} UTC; shown once, stored only as a hash:"
    )
    print(issued.token)
    return 0


_ACTIONS: dict[str, Callable[[Sessions, argparse.Namespace], Awaitable[int]]] = {
    "add": _add,
    "list": _list,
    "disable": _disable,
    "token": _token,
}


async def _run(url: str, args: argparse.Namespace) -> int:
    async with database(url) as sessions:
        return await _ACTIONS[args.staff_command](sessions, args)


def run(args: argparse.Namespace) -> int:
    command = f"citybot staff {args.staff_command}"
    settings = settings_or_none(command)
    if settings is None:
        return 2
    try:
        return asyncio.run(_run(settings.database_url, args))
    except InvalidStaffInput as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return 2
    except StaffError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return 1
    except (SQLAlchemyError, OSError) as exc:
        shown = make_url(settings.database_url).render_as_string(hide_password=True)
        print(f"{command}: cannot use the database {shown}: {exc}", file=sys.stderr)
        return 1
