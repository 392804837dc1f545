"""``citybot db upgrade``: apply every pending migration to CITYBOT_DATABASE_URL.

Safe beside running processes and other upgrades: on PostgreSQL they take turns on an advisory
lock (``storage.migrate``), and the second finds nothing left to do.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.commands.lifecycle import settings_or_none
from bot.preflight import database_problem, database_reason
from storage.migrate import upgrade_database

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    settings = settings_or_none("citybot db upgrade")  # the same default as serve and worker
    if settings is None:
        return 2
    url = settings.database_url
    problem = asyncio.run(database_problem(url))
    if problem is not None:
        print(f"citybot db upgrade: {problem.detail} -> {problem.fix}", file=sys.stderr)
        return 2
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        asyncio.run(upgrade_database(url))
    except (SQLAlchemyError, OSError) as exc:
        print(
            f"citybot db upgrade: cannot upgrade {shown}: {database_reason(exc)}", file=sys.stderr
        )
        return 1
    print(f"database {shown} is up to date")
    return 0
