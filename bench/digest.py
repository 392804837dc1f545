"""The daily digest's fan-out at a city's scale: every subscriber follows the ``reports`` topic.

Fills a scratch PostgreSQL database with ``--subscribers`` residents (as ``bench/broadcast.py``
does: 116 wards, three channels, four languages, one in ten on a 500 m pin, 1 in 200 opted out),
all following their area's daily digest, and ``--reports`` reports made that day across the
city, then times the ``digests`` worker writing the day's digests (``DigestSender.fan_out``
until the day is done: reading the alerts in resident-id ranges, one digest per area, language
and channel rendered, a row per resident whose area had something), and the peak memory.

    .venv/bin/python bench/digest.py --subscribers 1000000 \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test

No target was set for it (it runs once a day, before sending at the providers' pace); the
figure says how long after the digest time the first digest can go.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.broadcast import seed
from bench.scratch_database import scratch_database
from forms_runtime.loader import standard_forms
from notifier.digest_sending import DigestSender
from notifier.digests import DigestSchedule
from storage.models import ReportDigest
from storage.session import create_engine, create_sessionmaker

FORMS = ("pothole", "no_water", "streetlight", "refuse_missed", "water_leak")


async def _reports(url: str, count: int, at: datetime) -> None:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    rng = random.Random(12)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.executemany(
            "INSERT INTO submissions (reference, form_id, form_version, service_code, locale,"
            " answers, lat, lon, ward, status, created_at, updated_at)"
            " VALUES ($1, $2, 1, $2, 'en', '{}', $3, $4, $5, 'filed', $6, $6)",
            [
                (
                    f"CT-B{n:05d}",
                    FORMS[n % len(FORMS)],
                    rng.uniform(-34.2, -33.7),
                    rng.uniform(18.35, 18.85),
                    str(rng.randint(1, 116)),
                    at,
                )
                for n in range(count)
            ],
        )
    finally:
        await connection.close()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _no_send(message: object) -> list[str]:
    raise AssertionError("the fan-out bench sends nothing")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument("--reports", type=int, default=2_000)
    parser.add_argument(
        "--database-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    )
    args = parser.parse_args()
    schedule = DigestSchedule()
    # Tomorrow's digest, just after its time: the subscribers (made now) are all in it.
    day = schedule.due_day(datetime.now(UTC)) + timedelta(days=2)
    now = schedule.moment(day) + timedelta(minutes=5)
    async with scratch_database(args.database_url) as url:
        started = time.perf_counter()
        await seed(url, args.subscribers, True, topics=",reports,")
        await _reports(url, args.reports, schedule.moment(day) - timedelta(hours=1))
        print(
            f"seeded {args.subscribers:,} subscribers and {args.reports:,} reports"
            f" in {time.perf_counter() - started:.1f} s"
        )
        engine = create_engine(url)
        sessions = create_sessionmaker(engine)
        titles = {form.id: form.title for form in standard_forms().values()}
        sender = DigestSender(sessions, _no_send, titles, clock=lambda: now)
        before = _rss_mb()
        started = time.perf_counter()
        while await sender.fan_out(day):
            pass
        elapsed = time.perf_counter() - started
        async with sessions() as session:
            written = await session.scalar(select(func.count()).select_from(ReportDigest))
        await engine.dispose()
    print(f"digests: {written:,} written in {elapsed:.1f} s")
    print(f"peak memory: {_rss_mb():.0f} MB (before the fan-out: {before:.0f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
