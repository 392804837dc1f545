"""``citybot db upgrade``: apply every pending migration to CITYBOT_DATABASE_URL."""

from __future__ import annotations

import argparse
import asyncio
import sys

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.config import ConfigError, Settings
from storage.migrate import upgrade_database

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    try:
        url = Settings.from_env().database_url  # the same default as serve and worker
    except ConfigError as exc:
        print(f"citybot db upgrade: {exc}", file=sys.stderr)
        return 2
    shown = make_url(url).render_as_string(hide_password=True)
    try:
        asyncio.run(upgrade_database(url))
    except (SQLAlchemyError, OSError) as exc:
        print(f"citybot db upgrade: cannot upgrade {shown}: {exc}", file=sys.stderr)
        return 1
    print(f"database {shown} is up to date")
    return 0
