"""The open data over a million requests: the performance endpoint's answer time, and the CSV of
every request streamed in constant memory.

It fills a scratch PostgreSQL database (dropped afterwards) with demo requests
(``staff.demo_data``), builds the rollup, starts ``citybot serve --no-workers`` on it, then:

* asks ``/api/v1/open-data/performance`` for every group and period (5 times each) and prints
  the median and worst answer time (the target: under 1 s);
* downloads ``/api/v1/open-data/requests.csv`` whole and prints rows, bytes, time, and the
  server's peak resident memory (``VmHWM``) before and after: a download held in memory would
  add hundreds of MB.

Usage::

    .venv/bin/python bench/open_data.py --database postgresql+asyncpg://postgres@127.0.0.1/x
    .venv/bin/python bench/open_data.py --requests 100000       # smaller, or on SQLite (no URL)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scratch_database import scratch_database
from bench.serve_process import VENV_BIN, free_port
from bot.bootstrap import build_rollup
from bot.config import Settings
from forms_runtime.gazetteer import default_gazetteer
from staff import demo_data
from storage.session import create_engine, create_sessionmaker
from storage.types import utc_now

_SEED_BATCH = 100_000


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _fill(url: str, requests: int) -> None:
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    gazetteer = default_gazetteer()
    started = time.perf_counter()
    now = utc_now()
    made = 0
    while made < requests:
        size = min(_SEED_BATCH, requests - made)
        async with sessions() as session, session.begin():
            await demo_data.seed(
                session, gazetteer, requests=size, now=now, days=365, seed_value=made
            )
        made += size
        print(f"  seeded {made} ({time.perf_counter() - started:.0f} s)", flush=True)
    print(f"seed: {requests} requests in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    report = await build_rollup(
        Settings(database_url=url, session_secret="bench"), sessions, gazetteer
    ).rebuild()
    print(
        f"rollup: {report.periods} periods, {report.disparities} disparities in "
        f"{time.perf_counter() - started:.1f} s"
    )
    await engine.dispose()


async def _wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            if process.poll() is not None:
                raise RuntimeError("citybot serve ended before it was ready")
            try:
                async with http.get(f"{base}/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError("citybot serve was not ready within 120 s")


async def _measure(base: str, pid: int) -> None:
    api = f"{base}/api/v1/open-data"
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        worst_overall = 0.0
        for group in ("area_type", "service", "ward"):
            for period in ("week", "month"):
                times = []
                for _ in range(5):
                    started = time.perf_counter()
                    async with http.get(
                        f"{api}/performance", params={"group": group, "period": period}
                    ) as response:
                        body = await response.json()
                        assert response.status == 200, body
                    times.append(time.perf_counter() - started)
                worst_overall = max(worst_overall, max(times))
                print(
                    f"performance group={group:9} period={period:5}: "
                    f"median {statistics.median(times) * 1000:6.0f} ms, worst "
                    f"{max(times) * 1000:6.0f} ms ({len(body['rows'])} rows, "
                    f"{len(body['disparity'])} disparities)"
                )
        print(f"performance: worst answer {worst_overall * 1000:.0f} ms (target: under 1000 ms)")
        before = _peak_rss_mb(pid)
        started = time.perf_counter()
        rows = size = 0
        async with http.get(f"{api}/requests.csv") as response:
            assert response.status == 200
            async for chunk in response.content.iter_chunked(1 << 16):
                size += len(chunk)
                rows += chunk.count(b"\n")
        elapsed = time.perf_counter() - started
        after = _peak_rss_mb(pid)
        print(
            f"requests.csv: {rows - 1} rows, {size / 1e6:.0f} MB in {elapsed:.1f} s "
            f"({(rows - 1) / elapsed:.0f} rows/s); server peak RSS {before:.0f} MB before, "
            f"{after:.0f} MB after"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default=os.environ.get("CITYBOT_TEST_POSTGRES_URL"))
    parser.add_argument("--requests", type=int, default=1_000_000)
    args = parser.parse_args()
    async with scratch_database(args.database) as url:
        await _fill(url, args.requests)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "CITYBOT_DATABASE_URL": url,
            "CITYBOT_PORT": str(port),
            "CITYBOT_PUBLIC_URL": base,
            "CITYBOT_SESSION_SECRET": "bench",
            "CITYBOT_LOG_LEVEL": "WARNING",
        }
        env.pop("CITYBOT_REDIS_URL", None)
        citybot = shutil.which("citybot", path=str(VENV_BIN)) or "citybot"
        process = subprocess.Popen([citybot, "serve", "--no-workers"], env=env)
        try:
            await _wait_ready(base, process)
            await _measure(base, process.pid)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)


if __name__ == "__main__":
    asyncio.run(main())
