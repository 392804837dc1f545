"""Scale-out: one process on one Redis against two servers and two workers on a Redis Cluster.

The same simulated residents as bench/webhooks.py (signed Twilio SMS and Telegram updates
walking through the pothole form, each waiting for the bot's reply at the fake provider before
writing again) talk to each set-up in turn, on a fresh PostgreSQL database each time:

- ``single``: one ``citybot serve`` (it sends its own replies) and one ``citybot worker`` (the
  filer, the dispatcher and the other workers) on one ``redis-server``;
- ``cluster``: two ``citybot serve --no-replies`` behind a round robin (as a load balancer
  spreads providers' posts) and two ``citybot worker`` (replies included) on a 3-primary Redis
  Cluster (``redis+cluster://``);
- ``scaled``: the same four processes on one ``redis-server``, to tell the cost of the cluster
  from the cost of more processes.

Every Redis is this bench's own, on free loopback ports, so its counts are the run's alone.
Printed for each: messages answered by their reply per second, the latency from post to reply
(p50, p99), and what one message costs: citybot's CPU (every process), Redis commands and
Redis CPU, PostgreSQL transactions, rows written and WAL bytes (WAL is the server's whole, so
keep others off it while measuring). On a 2-core machine the total cannot grow with more
processes; the costs per message are what docs/scaling.md sizes a city with.

    .venv/bin/python bench/scale_out.py --seconds 15 \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test

Measured 2026-12-04 on the 2-core machine, nothing else running, 1,500 residents (saturated:
each set-up takes all the CPU there is), 15 s each:

==========================  ========  ========  ========
                            single    scaled    cluster
==========================  ========  ========  ========
messages answered/s         755       637       622
post to reply p50 / p99     475 ms /  838 ms /  699 ms /
                            5226 ms   2908 ms   2624 ms
citybot CPU per message     1.54 ms   1.82 ms   1.94 ms
Redis commands per message  25.6      26.2      28.9
Redis CPU per message       0.110 ms  0.123 ms  0.164 ms
PostgreSQL transactions     0.27      0.38      0.38
rows written per message    3.8       3.7       4.3
WAL per message             1.9 KiB   1.9 KiB   2.2 KiB
database growth / message   1.0 KB    1.1 KB    1.2 KB
Redis memory / resident     4.0 KB    4.2 KB    5.7 KB
==========================  ========  ========  ========

Four processes cost 18% more CPU a message than two (more connections, group commits of fewer
turns each); the cluster another 7% (the client's slot routing, one blocking read per shard and
channel) and 50% more Redis CPU, all of which only matters once one machine is not enough.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import asyncpg
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.latency import LatencySummary  # noqa: E402
from bench.serve_process import Served, serve_in_subprocess  # noqa: E402
from bench.webhooks import (  # noqa: E402
    REPLY_TIMEOUT,
    Conditions,
    Resident,
    Window,
    route_replies,
    server_env,
    talk,
)
from bot import event_loop  # noqa: E402
from tests.cluster.servers import RedisClusterServers  # noqa: E402
from tests.fakes.telegram_api import FakeTelegram  # noqa: E402
from tests.fakes.twilio_api import FakeTwilio  # noqa: E402
from tests.reliability.own_servers import OwnRedis  # noqa: E402

SETUPS = {
    # name: (servers, workers, Redis Cluster)
    "alone": (1, 0, False),
    "single": (1, 1, False),
    "scaled": (2, 2, False),
    "cluster": (2, 2, True),
}


@dataclass(frozen=True)
class Counts:
    """Cumulative counters of the run's Redis nodes and PostgreSQL database."""

    redis_commands: int
    redis_cpu: float
    pg_transactions: int
    pg_rows: int
    wal_bytes: int
    # What the database and Redis hold (bytes): their growth is what storage is sized with.
    database_bytes: int
    redis_memory: int

    def __sub__(self, other: Counts) -> Counts:
        return Counts(
            self.redis_commands - other.redis_commands,
            self.redis_cpu - other.redis_cpu,
            self.pg_transactions - other.pg_transactions,
            self.pg_rows - other.pg_rows,
            self.wal_bytes - other.wal_bytes,
            self.database_bytes - other.database_bytes,
            self.redis_memory - other.redis_memory,
        )


@contextlib.contextmanager
def own_redis(cluster: bool) -> Iterator[tuple[str, list[int]]]:
    """A Redis of this run's own: its URL for citybot and the ports of its nodes."""
    with tempfile.TemporaryDirectory(prefix="citybot-scale-") as folder:
        if cluster:
            with RedisClusterServers() as nodes:
                yield nodes.url, list(nodes.ports)
        else:
            with OwnRedis(Path(folder)) as one:
                yield one.url, [one.port]


async def counts(ports: list[int], database_url: str) -> Counts:
    commands, cpu, memory = 0, 0.0, 0
    for port in ports:
        node = Redis(host="127.0.0.1", port=port)
        try:
            stats = await node.info("stats")
            used = await node.info("cpu")
            held = await node.info("memory")
        finally:
            await node.aclose()
        commands += int(stats["total_commands_processed"])
        cpu += float(used["used_cpu_user"]) + float(used["used_cpu_sys"])
        memory += int(held["used_memory"])
    url = make_url(database_url)
    connection = await asyncpg.connect(
        host=url.host, port=url.port or 5432, user=url.username, database=url.database
    )
    try:
        row = await connection.fetchrow(
            "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted AS written,"
            " pg_current_wal_lsn() - '0/0'::pg_lsn AS wal,"
            " pg_database_size(current_database()) AS size"
            " FROM pg_stat_database WHERE datname = current_database()"
        )
    finally:
        await connection.close()
    assert row is not None
    return Counts(
        commands,
        cpu,
        int(row["xact_commit"]),
        int(row["written"]),
        int(row["wal"]),
        int(row["size"]),
        memory,
    )


@contextlib.asynccontextmanager
async def providers() -> AsyncIterator[tuple[FakeTelegram, FakeTwilio]]:
    async with FakeTelegram() as telegram, FakeTwilio() as twilio:
        yield telegram, twilio


async def measure(args: argparse.Namespace, setup: str) -> None:
    servers, workers, cluster = SETUPS[setup]
    with own_redis(cluster) as (redis_url, ports):
        async with providers() as (telegram, twilio):
            server = serve_in_subprocess(
                database_url=args.database_url,
                redis_url=redis_url,
                env=server_env(telegram, twilio) | {"CITYBOT_REDIS_STREAM_SHARDS": "4"},
                serves=servers,
                workers=workers,
            )
            async with server as served, _client(args.residents) as client:
                conditions = Conditions(wait_for_reply=True, think=args.think)
                residents = [
                    Resident(
                        i,
                        "telegram" if i % 2 else "sms",
                        served.urls[i % len(served.urls)],
                        client,
                        conditions,
                    )
                    for i in range(args.residents)
                ]
                route_replies(residents, telegram, twilio)
                assert served.database_url is not None
                window, used = await _window(args, served, residents, ports)
    _report(setup, servers, workers, cluster, window, used, args.residents)


async def _window(
    args: argparse.Namespace, served: Served, residents: list[Resident], ports: list[int]
) -> tuple[Window, Counts]:
    """The measured window's counts; ``redis_memory`` from before any resident wrote, since a
    conversation's keys are made by its first message."""
    assert served.database_url is not None
    database = served.database_url
    idle = await counts(ports, database)
    before: list[Counts] = []

    async def at_start() -> None:
        before.append(await counts(ports, database))

    warm = asyncio.create_task(_after(args.warmup, at_start))
    window = await talk(residents, served, warmup=args.warmup, seconds=args.seconds)
    await warm
    # PostgreSQL's statistics arrive a moment late: read them once the run has settled.
    await asyncio.sleep(1.0)
    end = await counts(ports, database)
    return window, replace(end - before[0], redis_memory=end.redis_memory - idle.redis_memory)


async def _after(seconds: float, then: Callable[[], object]) -> None:
    await asyncio.sleep(seconds)
    result = then()
    if asyncio.iscoroutine(result):
        await result


@contextlib.asynccontextmanager
async def _client(residents: int) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=min(residents, 400)),
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=REPLY_TIMEOUT),
    ) as client:
        yield client


def _report(
    setup: str,
    servers: int,
    workers: int,
    cluster: bool,
    window: Window,
    used: Counts,
    residents: int,
) -> None:
    stats = window.stats
    answered = LatencySummary.of([x for v in stats.reply_latencies.values() for x in v])
    n = answered.count
    redis = "a 3-primary Redis Cluster" if cluster else "one redis-server"
    print(f"{setup}: {servers} citybot serve + {workers} citybot worker, {redis}, PostgreSQL")
    missing = sum(stats.missing.values())
    print(
        f"  messages answered by their reply/s: {n / window.seconds:,.0f} "
        f"({n} in {window.seconds:.1f} s; HTTP {dict(stats.statuses)}; {missing} missing)"
    )
    print(f"  post to reply: p50 {answered.p50:.0f} ms, p99 {answered.p99:.0f} ms")
    if not n:
        return
    cpu = (window.cpu or 0.0) + (window.worker_cpu or 0.0)
    print(
        f"  per message: citybot CPU {1000 * cpu / n:.2f} ms, "
        f"Redis {used.redis_commands / n:.1f} commands and {1000 * used.redis_cpu / n:.3f} ms CPU, "
        f"PostgreSQL {used.pg_transactions / n:.2f} transactions, {used.pg_rows / n:.1f} rows "
        f"written, {used.wal_bytes / n / 1024:.1f} KiB WAL"
    )
    print(
        f"  storage: the database grew {used.database_bytes / n:,.0f} bytes a message, "
        f"Redis {used.redis_memory / 1024 / 1024:+.1f} MiB for {residents:,} residents "
        f"in conversation ({used.redis_memory / residents:,.0f} bytes each)"
    )


async def bench(args: argparse.Namespace) -> int:
    for setup in args.setups:
        await measure(args, setup)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    # The workers start after the servers (and file the first reports): let them settle.
    parser.add_argument("--warmup", type=float, default=8.0)
    parser.add_argument("--residents", type=int, default=1500)
    parser.add_argument("--think", type=float, default=1.0)
    parser.add_argument(
        "--setups", nargs="+", choices=list(SETUPS), default=["single", "scaled", "cluster"]
    )
    parser.add_argument("--database-url", default=os.environ.get("CITYBOT_TEST_POSTGRES_URL"))
    args = parser.parse_args(argv)
    if not args.database_url or args.database_url.startswith("sqlite"):
        parser.error("a PostgreSQL --database-url (or CITYBOT_TEST_POSTGRES_URL) is needed")
    return event_loop.run(bench(args))


if __name__ == "__main__":
    sys.exit(main())
