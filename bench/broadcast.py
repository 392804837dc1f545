"""Broadcast fan-out at a city's scale: a million subscribers, one broadcast to everyone.

Fills a scratch PostgreSQL database (``COPY``) with ``--subscribers`` residents across the 116
wards, three channels (SMS, WhatsApp, Telegram) and four languages, each with an address and a
ward subscription (1 in 200 opted out), then times the ``broadcasts`` worker's fan-out of a
city-wide broadcast: from "send" to every delivery row written (``BroadcastSender.start_due``
until the broadcast is fanned out), and this process's peak memory while it did so.

    .venv/bin/python bench/broadcast.py --subscribers 1000000 \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test

Targets (issue 12): fan-out under 20 s, peak memory under 300 MB.

``--replies`` measures what matters to a resident instead: a real ``citybot serve`` sends the
broadcast to everyone (``--subscribers`` Telegram residents, the fake Telegram at ``--rate``,
Telegram's own 30/s by default, Redis for the queues and the shared pacer; needs
``CITYBOT_TEST_REDIS_URL`` or ``--redis``) while a resident writes to the bot, and prints the
latency of each answer (target: p99 under 2 s; ``tests/notifier/test_replies_during_broadcast.py``
runs the same with 20,000)::

    .venv/bin/python bench/broadcast.py --replies --subscribers 1000000

``--point`` times a broadcast around a point instead (2 km around the city centre, in ward
77): one subscriber in ten then holds a pin alert (500 m, scattered over the city), and the
audience matches the ward's followers and, by distance, the pins near the point.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scratch_database import scratch_database
from notifier.broadcast_sending import BroadcastSender
from storage.models import Broadcast, BroadcastDelivery, StaffAccount
from storage.session import create_engine, create_sessionmaker
from tests.notifier.reply_during_broadcast import replies_during_broadcast

CHANNELS = ("sms", "whatsapp", "telegram")
LOCALES = ("en", "af", "zu", "xh")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _subscription(
    n: int, rng: random.Random, now: datetime, pins: bool, topics: str
) -> tuple[Any, ...]:
    ward = str(rng.randint(1, 116))
    if pins and n % 10 == 0:
        lat, lon = rng.uniform(-34.2, -33.7), rng.uniform(18.35, 18.85)
        return (n, ward, f"pin {lat:.4f},{lon:.4f}", topics, lat, lon, 500, now)
    return (n, ward, f"ward {ward}", topics, None, None, None, now)


async def seed(url: str, count: int, pins: bool, *, topics: str = ",all,") -> None:
    """``count`` residents, each with an address and an alert (one in ten a pin, with ``pins``)."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    rng = random.Random(311)
    now = datetime.now(UTC)
    connection = await asyncpg.connect(dsn)
    try:
        await connection.copy_records_to_table(
            "residents",
            columns=["id", "locale", "created_at", "opted_out_at"],
            records=(
                (n, LOCALES[n % 4], now, now if n % 200 == 0 else None) for n in range(1, count + 1)
            ),
        )
        await connection.copy_records_to_table(
            "resident_addresses",
            columns=["resident_id", "channel", "address", "last_inbound_at", "created_at"],
            records=(
                (
                    n,
                    CHANNELS[n % 3],
                    f"+2782{n:07d}" if n % 3 != 2 else str(500_000_000 + n),
                    now - timedelta(hours=rng.randint(0, 72)),
                    now,
                )
                for n in range(1, count + 1)
            ),
        )
        await connection.copy_records_to_table(
            "subscriptions",
            columns=[
                "resident_id",
                "ward",
                "label",
                "topics",
                "latitude",
                "longitude",
                "radius_m",
                "created_at",
            ],
            records=(_subscription(n, rng, now, pins, topics) for n in range(1, count + 1)),
        )
        await connection.execute("SELECT setval('residents_id_seq', $1)", count)
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


async def _no_send(message: object) -> list[str]:
    raise AssertionError("the fan-out bench sends nothing")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1_000_000)
    parser.add_argument(
        "--database-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test"
    )
    parser.add_argument("--point", action="store_true", help="a broadcast around a point")
    parser.add_argument(
        "--replies", action="store_true", help="answers' latency while the broadcast drains"
    )
    parser.add_argument("--rate", type=float, default=30.0, help="with --replies: msg/s")
    parser.add_argument("--turns", type=int, default=20, help="with --replies: messages")
    parser.add_argument("--redis", default=os.environ.get("CITYBOT_TEST_REDIS_URL"))
    args = parser.parse_args()
    if args.replies:
        return await _replies(args)
    if args.point:
        target: dict[str, Any] = {
            "wards": ["77"],
            "everyone": False,
            "point": {"lat": -33.9249, "lon": 18.4241, "radius_m": 2000.0},
        }
    else:
        target = {"wards": [], "everyone": True}
    async with scratch_database(args.database_url) as url:
        started = time.perf_counter()
        await seed(url, args.subscribers, args.point)
        print(f"seeded {args.subscribers:,} subscribers in {time.perf_counter() - started:.1f} s")
        engine = create_engine(url)
        sessions = create_sessionmaker(engine)
        async with sessions() as session, session.begin():
            author = StaffAccount(email="bench@city.gov", roles=["broadcaster"], password_hash="-")
            session.add(author)
            await session.flush()
            broadcast = Broadcast(
                author_id=author.id,
                title="bench",
                texts={"en": "Water is off city-wide until 18:00."},
                target=target,
                topic="water",
                channels=list(CHANNELS),
                urgency="emergency",
                state="scheduled",
            )
            session.add(broadcast)
        before = _rss_mb()
        sender = BroadcastSender(sessions, _no_send)
        started = time.perf_counter()
        while await sender.start_due():
            pass
        elapsed = time.perf_counter() - started
        async with sessions() as session:
            written = await session.scalar(select(func.count()).select_from(BroadcastDelivery))
            state = await session.scalar(select(Broadcast.state))
        await engine.dispose()
    peak = _rss_mb()
    print(f"fan-out: {written:,} deliveries enqueued in {elapsed:.1f} s ({state})")
    print(f"peak memory: {peak:.0f} MB (before the fan-out: {before:.0f} MB)")
    ok = elapsed < 20 and peak < 300
    print("targets (under 20 s, under 300 MB):", "met" if ok else "NOT met")
    return 0 if ok else 1


async def _replies(args: argparse.Namespace) -> int:
    if not args.redis:
        raise SystemExit("--replies needs Redis: set CITYBOT_TEST_REDIS_URL or pass --redis")
    with tempfile.TemporaryDirectory(prefix="citybot-bench-") as folder:
        result = await replies_during_broadcast(
            args.database_url,
            args.redis,
            recipients=args.subscribers,
            rate=args.rate,
            turns=args.turns,
            workdir=Path(folder),
        )
    print(result)
    ok = result.percentile(0.99) < 2.0
    print("target (p99 under 2 s):", "met" if ok else "NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
