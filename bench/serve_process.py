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
    # ``citybot worker --only replies`` processes beside the server, if any were asked for.
    worker_pids: tuple[int, ...] = ()

    def cpu_seconds(self) -> float | None:
        """CPU seconds the server has used so far (user + system); None if unknown."""
        return None if self.pid is None else _cpu_seconds(self.pid)

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
) -> AsyncIterator[Served]:
    """``citybot serve --no-workers`` until the block ends; yields its URL once /readyz says 200.

    ``env`` adds to (or overrides) the server's environment; ``profile`` records the server with
    py-spy into that file (collapsed stacks for a ``.txt`` name, for grep and sort; else an SVG).
    With ``reply_workers`` (and Redis) the server runs ``--no-replies`` and that many
    ``citybot worker --only replies`` processes send the replies. ``citybot`` is the executable
    to run (default: this checkout's), to measure another checkout under the same load.
    """
    if database_url and not database_url.startswith("sqlite"):
        # A fresh PostgreSQL database per run (dropped after): runs comparable, nothing left.
        async with (
            scratch_database(database_url) as fresh,
            _served(fresh, redis_url, env, profile, reply_workers, citybot) as served,
        ):
            yield served
        return
    async with _served(database_url, redis_url, env, profile, reply_workers, citybot) as served:
        yield served


@contextlib.asynccontextmanager
async def _served(
    database_url: str | None,
    redis_url: str | None,
    env: Mapping[str, str] | None,
    profile: str | None,
    reply_workers: int,
    citybot: str | None,
) -> AsyncIterator[Served]:
    scratch = tempfile.mkdtemp(prefix="citybot-bench-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server_env = {
        **os.environ,
        "CITYBOT_DATABASE_URL": database_url or f"sqlite+aiosqlite:///{scratch}/bench.sqlite3",
        "CITYBOT_PORT": str(port),
        "CITYBOT_HOST": "127.0.0.1",
        "CITYBOT_PUBLIC_URL": url,
        "CITYBOT_SESSION_SECRET": "bench",
        "CITYBOT_RATE_LIMIT_PER_SECOND": "100000",
        "CITYBOT_RATE_LIMIT_BURST": "100000",
        "CITYBOT_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    # The caller's shell may name a Redis; only the one asked for here is used.
    server_env.pop("CITYBOT_REDIS_URL", None)
    if redis_url:
        server_env["CITYBOT_REDIS_URL"] = redis_url
    citybot = citybot or shutil.which("citybot", path=str(VENV_BIN)) or "citybot"
    command = [citybot, "serve", "--no-workers"]
    if reply_workers:
        command.append("--no-replies")
    if profile:
        spy = shutil.which("py-spy", path=str(VENV_BIN)) or "py-spy"
        fmt = ["--format", "raw"] if profile.endswith(".txt") else []
        command = [spy, "record", "-o", profile, "--rate", "250", *fmt, "--", *command]
    process = subprocess.Popen(command, env=server_env, cwd=scratch)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        await _wait_until_ready(process, url)
        # After the server, which has upgraded the database by then.
        workers = [
            subprocess.Popen([citybot, "worker", "--only", "replies"], env=server_env, cwd=scratch)
            for _ in range(reply_workers)
        ]
        served = Served(url)
        # Under py-spy the child is py-spy itself: its CPU time would not be the server's.
        served.pid = None if profile else process.pid
        served.worker_pids = tuple(w.pid for w in workers)
        yield served
    finally:
        for child in (process, *workers):
            child.send_signal(signal.SIGINT)
        for child in (process, *workers):
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
        shutil.rmtree(scratch, ignore_errors=True)
        if redis_url:
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
