"""Benchmark: reports filed per second, and the cost of one status polling cycle.

Both run against the built-in GeoReport v2 server over real HTTP on loopback, with a SQLite
database (the embedded default) migrated from scratch in a temporary folder.

    .venv/bin/python bench/filer.py --reports 500 --open 100000 --ids-per-call 50 1000
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry
from sqlalchemy import insert

from bot.db.migrate import upgrade_database
from bot.db.models import Submission, SubmissionOutbox
from bot.db.session import create_engine, create_sessionmaker
from bot.filer import Filer, FilerSettings
from bot.open311.client import Open311Backend
from bot.open311.models import Open311Request
from bot.open311.server import PREFIX, add_open311_routes
from forms_runtime.loader import standard_forms
from notifier.status_poller import PollerSettings, StatusPoller

# tests/ is not installed; the bench files the same pothole report the filer's tests do.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.pothole_report import pothole_submission


async def bench_filing(folder: Path, reports: int, workers: int) -> None:
    url = f"sqlite+aiosqlite:///{folder / 'filing.sqlite3'}"
    await upgrade_database(url)
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    app = web.Application()
    add_open311_routes(app, sessionmaker, standard_forms(), api_key="", staff_token="")
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
        f"({workers} worker{'s' if workers > 1 else ''}, SQLite, built-in server over HTTP)"
    )
    for f in filers:
        await f.backend.close()
    await server.close()
    await engine.dispose()


async def bench_polling(folder: Path, open_requests: int, ids_per_call: list[int]) -> None:
    url = f"sqlite+aiosqlite:///{folder / 'polling.sqlite3'}"
    await upgrade_database(url)
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    now = datetime.now(UTC)
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
    app = web.Application()
    add_open311_routes(app, sessionmaker, standard_forms(), api_key="", staff_token="")
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    for per_call in ids_per_call:
        backend = Open311Backend(
            str(server.make_url(PREFIX)), max_ids_per_call=per_call, timeout=120
        )
        poller = StatusPoller(sessionmaker, backend, settings=PollerSettings(quiet_hours=None))
        started = time.perf_counter()
        report = await poller.poll_once()
        seconds = time.perf_counter() - started
        print(
            f"polling: {report.requests} open requests, {per_call} ids per call: "
            f"{backend.calls} HTTP calls, {seconds:.1f} s ({report.changes} first sightings recorded)"
        )
        await backend.close()
    await server.close()
    await engine.dispose()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=500)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--open", type=int, default=100_000)
    parser.add_argument("--ids-per-call", type=int, nargs="+", default=[50, 1000])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        await bench_filing(Path(scratch), args.reports, args.workers)
        await bench_polling(Path(scratch), args.open, args.ids_per_call)


if __name__ == "__main__":
    asyncio.run(main())
