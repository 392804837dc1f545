"""``citybot demo seed|clear``: synthetic requests for a living dashboard, and their removal.

``seed`` writes requests across the city's real wards and settlements (``staff.demo_data``),
marked as demo data, and brings the open data's figures up to date at once; ``clear`` removes
every demo request and does the same. Both are audited.

Example::

    $ citybot demo seed --requests 100000
    100000 demo requests written in 19.8 s; open data refreshed (34 periods) in 12.1 s
    $ citybot demo clear
    100000 demo requests removed
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.bootstrap import build_rollup
from bot.commands.lifecycle import settings_or_none
from bot.commands.staff import database
from bot.config import Settings
from forms_runtime.gazetteer import default_gazetteer
from staff import audit, demo_data
from storage.types import utc_now

__all__ = ["run"]

_ACTOR = "cli"


async def _demo(settings: Settings, args: argparse.Namespace) -> int:
    gazetteer = default_gazetteer()
    async with database(settings.database_url) as sessions:
        started = time.perf_counter()
        async with sessions() as session, session.begin():
            if args.demo_command == "seed":
                count = await demo_data.seed(
                    session, gazetteer, requests=args.requests, now=utc_now(), days=args.days
                )
            else:
                count = await demo_data.clear(session)
            await audit.record(
                session,
                actor=_ACTOR,
                action=f"demo.{args.demo_command}",
                target=None,
                address=None,
                details={"requests": count},
            )
        written = time.perf_counter() - started
        started = time.perf_counter()
        report = await build_rollup(settings, sessions, gazetteer).rebuild()
        refreshed = time.perf_counter() - started
    done = "written" if args.demo_command == "seed" else "removed"
    print(
        f"{count} demo requests {done} in {written:.1f} s; open data refreshed "
        f"({report.periods} periods) in {refreshed:.1f} s"
    )
    return 0


def run(args: argparse.Namespace) -> int:
    command = f"citybot demo {args.demo_command}"
    settings = settings_or_none(command)
    if settings is None:
        return 2
    try:
        return asyncio.run(_demo(settings, args))
    except (SQLAlchemyError, OSError) as exc:
        shown = make_url(settings.database_url).render_as_string(hide_password=True)
        print(f"{command}: cannot use the database {shown}: {exc}", file=sys.stderr)
        return 1
