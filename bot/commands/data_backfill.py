"""``citybot data backfill``: place older requests (ward, suburb, area type) from their stored
pins or place text, in batches; idempotent (see ``city.request_places.backfill``).

Example::

    $ citybot data backfill
    placed 1180 requests (pin 900, place 200, text 80); 20 unknown (kept, counted as unknown)
    $ citybot data backfill
    placed 0 requests; 0 unknown (nothing left to place)
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.commands.lifecycle import settings_or_none
from bot.commands.staff import database
from city.request_places import BackfillReport, backfill
from forms_runtime.gazetteer import default_gazetteer

__all__ = ["run"]


async def _backfill(url: str, batch_size: int) -> BackfillReport:
    async with database(url) as sessions:
        return await backfill(sessions, default_gazetteer(), batch_size=batch_size)


def run(args: argparse.Namespace) -> int:
    settings = settings_or_none("citybot data backfill")
    if settings is None:
        return 2
    if args.batch_size < 1:
        print("citybot data backfill: --batch-size must be at least 1", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(_backfill(settings.database_url, args.batch_size))
    except (SQLAlchemyError, OSError) as exc:
        shown = make_url(settings.database_url).render_as_string(hide_password=True)
        print(f"citybot data backfill: cannot use the database {shown}: {exc}", file=sys.stderr)
        return 1
    by_source = ", ".join(
        f"{source} {n}" for source, n in sorted(report.sources.items()) if source != "none"
    )
    placed = f"placed {report.placed} requests" + (f" ({by_source})" if by_source else "")
    if report.placed or report.unknown:
        print(f"{placed}; {report.unknown} unknown (kept, counted as unknown)")
    else:
        print(f"{placed}; 0 unknown (nothing left to place)")
    return 0
