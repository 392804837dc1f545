"""``citybot serve`` in a subprocess on a free port, for the benches that measure it over HTTP.

The server runs in a scratch folder (its SQLite file lives there; with a PostgreSQL URL, in a
database of its own on that server, dropped after the run: ``bench.scratch_database``) with the
per-resident rate limit out of the way: simulated residents type far faster than people,
and that limit is not what any bench measures. It is stopped with SIGINT, as an operator would,
so a profile taken with py-spy is written out whole.

Example::

    async with serve_in_subprocess(database_url=None, redis_url=None) as url:
        ...  # POST to f"{url}/webchat/messages"
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import aiohttp
from redis.asyncio import Redis

from bench.scratch_database import scratch_database

__all__ = ["Served", "free_port", "serve_in_subprocess"]

VENV_BIN = Path(__file__).resolve().parent.parent / ".venv" / "bin"
# How long a fresh server may take to answer /readyz (migrations on PostgreSQL included).
READY_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served(str):
    """The server's URL, which also knows the server's process (for its CPU time)."""

    pid: int | None = None
    # ``citybot worker`` processes beside the server, if any were asked for.
    worker_pids: tuple[int, ...] = ()
    # With several servers: every server's URL (this one first) and every server's process.
    urls: tuple[str, ...] = ()
    pids: tuple[int, ...] = ()
    # The database the servers use (a scratch one on PostgreSQL), for its statistics.
    database_url: str | None = None

    def cpu_seconds(self) -> float | None:
        """CPU seconds the server(s) have used so far (user + system); None if unknown."""
        if self.pid is None:
            return None
        used = [_cpu_seconds(pid) for pid in self.pids or (self.pid,)]
        return None if None in used else sum(u for u in used if u is not None)

    def worker_cpu_seconds(self) -> float | None:
        """CPU seconds the reply workers have used so far, all together."""
        used = [_cpu_seconds(pid) for pid in self.worker_pids]
        return None if None in used else sum(u for u in used if u is not None)


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # utime and stime are fields 14 and 15 of /proc/PID/stat, in clock ticks.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.asynccontextmanager
async def serve_in_subprocess(
    *,
    database_url: str | None,
    redis_url: str | None,
    env: Mapping[str, str] | None = None,
    profile: str | None = None,
    reply_workers: int = 0,
    citybot: str | None = None,
    serves: int = 1,
    workers: int = 0,
) -> AsyncIterator[Served]:
    """``citybot serve --no-workers`` until the block ends; yields its URL once /readyz says 200.

    ``env`` adds to (or overrides) the server's environment; ``profile`` records the server with
    py-spy into that file (collapsed stacks for a ``.txt`` name, for grep and sort; else an SVG).
    With ``reply_workers`` (and Redis) the server runs ``--no-replies`` and that many
    ``citybot worker --only replies`` processes send the replies. ``citybot`` is the executable
    to run (default: this checkout's), to measure another checkout under the same load.
    ``serves`` runs that many servers on one database and Redis (``Served.urls``: a load
    balancer's round robin is the caller's); ``workers`` adds that many ``citybot worker``
    processes running every worker (filer, dispatcher, replies...), as a scaled-out site does.
    """
    more = {"serves": serves, "workers": workers}
    if database_url and not database_url.startswith("sqlite"):
        # A fresh PostgreSQL database per run (dropped after): runs comparable, nothing left.
        async with (
            scratch_database(database_url) as fresh,
            _served(fresh, redis_url, env, profile, reply_workers, citybot, **more) as served,
        ):
            yield served
        return
    async with _served(
        database_url, redis_url, env, profile, reply_workers, citybot, **more
    ) as served:
        yield served


@contextlib.asynccontextmanager
async def _served(
    database_url: str | None,
    redis_url: str | None,
    env: Mapping[str, str] | None,
    profile: str | None,
    reply_workers: int,
    citybot: str | None,
    *,
    serves: int = 1,
    workers: int = 0,
) -> AsyncIterator[Served]:
    scratch = tempfile.mkdtemp(prefix="citybot-bench-")
    base_env = {
        **os.environ,
        "CITYBOT_DATABASE_URL": database_url or f"sqlite+aiosqlite:///{scratch}/bench.sqlite3",
        "CITYBOT_HOST": "127.0.0.1",
        "CITYBOT_SESSION_SECRET": "bench",
        "CITYBOT_RATE_LIMIT_PER_SECOND": "100000",
        "CITYBOT_RATE_LIMIT_BURST": "100000",
        "CITYBOT_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    # The caller's shell may name a Redis; only the one asked for here is used.
    base_env.pop("CITYBOT_REDIS_URL", None)
    if redis_url:
        base_env["CITYBOT_REDIS_URL"] = redis_url
    ports = [free_port() for _ in range(serves)]
    urls = [f"http://127.0.0.1:{port}" for port in ports]

    def env_of(port: int, url: str) -> dict[str, str]:
        # Each server signs and is signed for with its own public URL.
        return {**base_env, "CITYBOT_PORT": str(port), "CITYBOT_PUBLIC_URL": url}

    citybot = citybot or shutil.which("citybot", path=str(VENV_BIN)) or "citybot"
    command = [citybot, "serve", "--no-workers"]
    if reply_workers or workers:
        command.append("--no-replies")
    if profile:
        spy = shutil.which("py-spy", path=str(VENV_BIN)) or "py-spy"
        fmt = ["--format", "raw"] if profile.endswith(".txt") else []
        command = [spy, "record", "-o", profile, "--rate", "250", *fmt, "--", *command]
    first = subprocess.Popen(command, env=env_of(ports[0], urls[0]), cwd=scratch)
    processes = [first]
    children: list[subprocess.Popen[bytes]] = []
    try:
        # The first server upgrades the database; the others start on the upgraded schema.
        await _wait_until_ready(first, urls[0])
        for port, url in zip(ports[1:], urls[1:], strict=True):
            processes.append(subprocess.Popen(command, env=env_of(port, url), cwd=scratch))
            await _wait_until_ready(processes[-1], url)
        worker_env = env_of(ports[0], urls[0])
        children = [
            subprocess.Popen([citybot, "worker", "--only", "replies"], env=worker_env, cwd=scratch)
            for _ in range(reply_workers)
        ] + [
            subprocess.Popen([citybot, "worker"], env=worker_env, cwd=scratch)
            for _ in range(workers)
        ]
        served = Served(urls[0])
        # Under py-spy the child is py-spy itself: its CPU time would not be the server's.
        served.pid = None if profile else first.pid
        served.pids = () if profile else tuple(p.pid for p in processes)
        served.urls = tuple(urls)
        served.database_url = base_env["CITYBOT_DATABASE_URL"]
        served.worker_pids = tuple(w.pid for w in children)
        yield served
    finally:
        for child in (*processes, *children):
            child.send_signal(signal.SIGINT)
        for child in (*processes, *children):
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
        shutil.rmtree(scratch, ignore_errors=True)
        if redis_url and redis_url.startswith("redis://"):
            await _forget_bench_keys(redis_url)


async def _forget_bench_keys(redis_url: str) -> None:
    """A run leaves hundreds of thousands of residents' keys; they would slow every later user
    of that Redis database (the tests' key clean-ups among them)."""
    client = Redis.from_url(redis_url)
    try:
        batch: list[bytes] = []
        async for key in client.scan_iter(match="citybot:*", count=5000):
            batch.append(key)
            if len(batch) >= 5000:
                await client.unlink(*batch)
                batch.clear()
        if batch:
            await client.unlink(*batch)
    finally:
        await client.aclose()


async def _wait_until_ready(process: subprocess.Popen[bytes], url: str) -> None:
    async with aiohttp.ClientSession() as probe:
        for _ in range(int(READY_SECONDS * 10)):
            with contextlib.suppress(aiohttp.ClientError):
                async with probe.get(url + "/readyz") as response:
                    if response.status == 200:
                        return
            if process.poll() is not None:
                raise SystemExit(f"citybot serve exited with {process.returncode}")
            await asyncio.sleep(0.1)
    raise SystemExit("citybot serve did not become ready")
