"""Benchmark: reports filed per second, and the cost of status polling cycles.

Both run against the built-in GeoReport v2 server over real HTTP on loopback. The database is a
SQLite file (the embedded default) migrated from scratch in a temporary folder, or, with
``--database-url postgresql+asyncpg://...``, a throw-away database created on that server and
dropped afterwards (the one the URL names is only used to create it).

Polling runs, for each ``--ids-per-call`` value, ``--cycles`` cycles over ``--open`` filed
requests: the very first one records every first sighting, the later ones find nothing changed;
then one finds nothing changed but every ``last_polled_at`` stale (as about once an hour), and
one more finds ``--changed`` requests that the city changed meanwhile. Each line says how many
rows the cycle inserted and updated, and in how many UPDATE statements (an executemany counts
once per row).

    .venv/bin/python bench/filer.py --reports 500 --open 100000 --ids-per-call 50 1000
    .venv/bin/python bench/filer.py --part polling --database-url \\
        postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry
from sqlalchemy import event, insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from city.filer import Filer, FilerSettings
from city.open311.client import Open311Backend
from city.open311.server import PREFIX, add_open311_routes
from city.open311.types import ServiceRequest
from city.status_poller import PollerSettings, StatusPoller
from forms_runtime.loader import standard_forms
from notifier.status_notices import queue_filed
from storage.migrate import upgrade_database
from storage.models import Open311Request, Submission, SubmissionOutbox
from storage.session import create_engine, create_sessionmaker

# tests/ is not installed; the bench files the same pothole report the filer's tests do.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.pothole_report import pothole_submission
from tests.storage.databases import postgres_database


@asynccontextmanager
async def database(folder: Path, name: str, server_url: str | None) -> AsyncIterator[str]:
    """A migrated, empty database: a SQLite file in ``folder``, or a fresh one on ``server_url``."""
    if server_url is None:
        url = f"sqlite+aiosqlite:///{folder / f'{name}.sqlite3'}"
        await upgrade_database(url)
        yield url
        return
    async with postgres_database(server_url, prefix=f"citybot_bench_{name}") as url:
        yield url


def _kind(url: str) -> str:
    return "PostgreSQL" if url.startswith("postgresql") else "SQLite"


async def bench_filing(folder: Path, server_url: str | None, reports: int, workers: int) -> None:
    async with database(folder, "filing", server_url) as url:
        engine = create_engine(url)
        sessionmaker = create_sessionmaker(engine)
        app = web.Application()
        add_open311_routes(app, sessionmaker, standard_forms(), api_key="")
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        async with sessionmaker() as session, session.begin():
            for i in range(reports):
                submission = Submission(**pothole_submission(f"CT-B{i:07d}"))
                session.add(submission)
                await session.flush()
                session.add(SubmissionOutbox(submission_id=submission.id))
        filers = [
            Filer(
                sessionmaker,
                Open311Backend(str(server.make_url(PREFIX))),
                standard_forms(),
                settings=FilerSettings(batch_size=50),
                registry=CollectorRegistry(),
                on_filed=queue_filed,
            )
            for _ in range(workers)
        ]
        started = time.perf_counter()
        while any(await asyncio.gather(*(f.run_once() for f in filers))):
            pass
        seconds = time.perf_counter() - started
        filed = sum(int(f.filed._value.get()) for f in filers)
        print(
            f"filing: {filed} reports in {seconds:.2f} s = {filed / seconds:.0f} reports/s "
            f"({workers} worker{'s' if workers > 1 else ''}, {_kind(url)}, "
            "built-in server over HTTP)"
        )
        for f in filers:
            await f.backend.close()
        await server.close()
        await engine.dispose()


class TimedBackend(Open311Backend):
    """The HTTP client, timing its status calls.

    The built-in server runs in this process, so a cycle's time is the poller's own work plus
    the city's answers (the server's reads included); this tells the two apart.
    """

    waited = 0.0

    async def status(self, ids: Sequence[str]) -> list[ServiceRequest]:
        started = time.perf_counter()
        try:
            return await super().status(ids)
        finally:
            self.waited += time.perf_counter() - started


def count_writes(engine: AsyncEngine) -> Counter[str]:
    """Rows written and statements run per verb (INSERT, UPDATE, DELETE) through ``engine``."""
    writes: Counter[str] = Counter()

    @event.listens_for(engine.sync_engine, "after_execute")
    def _count(
        _conn: Any, clause: Any, multiparams: Any, _params: Any, _options: Any, result: Any
    ) -> None:
        verb = str(getattr(clause, "is_dml", False) and clause.__visit_name__).upper()
        if verb in ("INSERT", "UPDATE", "DELETE"):
            # An executemany counts once per parameter set: the database runs it per row (and
            # its rowcount is not reliable with asyncpg, nor an INSERT's with RETURNING).
            statements = max(1, len(multiparams or []))
            rows = result.rowcount if verb != "INSERT" and statements == 1 else statements
            writes[verb] += max(rows, 0)
            writes[f"{verb} statements"] += statements

    return writes


async def _seed(engine: AsyncEngine, open_requests: int, now: datetime) -> None:
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker() as session, session.begin():
        for start in range(0, open_requests, 10_000):
            chunk = range(start + 1, min(start + 10_001, open_requests + 1))
            await session.execute(
                insert(Open311Request),
                [
                    {
                        "id": i,
                        "token": f"t{i}",
                        "service_code": "ROADS-POTHOLE",
                        "service_name": "Pothole or road damage",
                        "description": f"Pothole [ref CT-B{i:07d}]",
                        "attributes": {},
                        "lat": -34.0,
                        "long": 18.6,
                        "status": "open",
                        "requested_datetime": now,
                        "updated_datetime": now,
                    }
                    for i in chunk
                ],
            )
            await session.execute(
                insert(Submission),
                [
                    pothole_submission(f"CT-B{i:07d}", status="filed", service_request_id=str(i))
                    for i in chunk
                ],
            )


async def _city_changes(engine: AsyncEngine, open_requests: int, count: int, cycle: int) -> None:
    """The city's staff add a note to ``count`` requests spread over the whole range."""
    if count <= 0:
        return
    step = max(1, open_requests // count)
    ids = list(range(1, open_requests + 1, step))[:count]
    async with engine.begin() as connection:
        await connection.execute(
            update(Open311Request)
            .where(Open311Request.id.in_(ids))
            .values(
                status_notes=f"Crew visit {cycle}",
                updated_datetime=datetime.now(UTC) + timedelta(seconds=cycle),
            )
        )


async def bench_polling(
    folder: Path,
    server_url: str | None,
    open_requests: int,
    ids_per_call: list[int],
    cycles: int,
    changed: int,
) -> None:
    async with database(folder, "polling", server_url) as url:
        engine = create_engine(url)
        sessionmaker = create_sessionmaker(engine)
        await _seed(engine, open_requests, datetime.now(UTC))
        app = web.Application()
        add_open311_routes(app, sessionmaker, standard_forms(), api_key="")
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        writes = count_writes(engine)
        cycle = 0
        for per_call in ids_per_call:
            runs = ["unchanged"] * cycles + ["unchanged, stale stamps"]
            runs += ["changed"] if changed > 0 else []
            for run in runs:
                if run == "changed":
                    await _city_changes(engine, open_requests, changed, cycle)
                backend = TimedBackend(
                    str(server.make_url(PREFIX)), max_ids_per_call=per_call, timeout=120
                )
                # "stale stamps": the cycle, about once an hour, that refreshes last_polled_at
                # of every unchanged request; resolution 0 makes every stamp stale now.
                resolution = 0.0 if run == "unchanged, stale stamps" else 3600.0
                settings = PollerSettings(polled_at_resolution_seconds=resolution)
                poller = StatusPoller(sessionmaker, backend, settings=settings)
                writes.clear()
                started = time.perf_counter()
                report = await poller.poll_once()
                seconds = time.perf_counter() - started
                label = "first" if cycle == 0 else f"later, {run}"
                print(
                    f"polling ({_kind(url)}, {label}): {report.requests} open requests, "
                    f"{per_call} ids per call: {backend.calls} HTTP calls, {seconds:.1f} s "
                    f"({seconds - backend.waited:.1f} s without the city's answers), "
                    f"{report.changes} changes recorded; rows written: "
                    f"{writes['INSERT']} inserted, {writes['UPDATE']} updated "
                    f"({writes['UPDATE statements']} UPDATE statements)",
                    flush=True,
                )
                await backend.close()
                cycle += 1
        await server.close()
        await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=["filing", "polling", "both"], default="both")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server to create a throw-away database on (default: a SQLite file)",
    )
    parser.add_argument("--reports", type=int, default=500, help="reports to file")
    parser.add_argument("--workers", type=int, default=1, help="filers running side by side")
    parser.add_argument("--open", type=int, default=100_000, help="open requests to poll")
    parser.add_argument("--ids-per-call", type=int, nargs="+", default=[50, 1000])
    parser.add_argument(
        "--cycles", type=int, default=2, help="cycles per --ids-per-call value before changes"
    )
    parser.add_argument(
        "--changed", type=int, default=1000, help="requests changed before the last cycle"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        if args.part in ("filing", "both"):
            await bench_filing(Path(scratch), args.database_url, args.reports, args.workers)
        if args.part in ("polling", "both"):
            await bench_polling(
                Path(scratch),
                args.database_url,
                args.open,
                args.ids_per_call,
                args.cycles,
                args.changed,
            )


if __name__ == "__main__":
    asyncio.run(main())
