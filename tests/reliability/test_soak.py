"""Soak: ``citybot serve`` at half its capacity for 10 minutes: memory flat within 10%, no file
descriptor growth, p99 steady (issue 15's suite; ``make chaos`` only).

Capacity is measured first (SMS per second with 32 in flight, for 20 s); then residents send at
half that rate, each a new one, for ``CITYBOT_SOAK_SECONDS`` (600). The process's resident
memory and open descriptors are read from /proc, and each minute's p99 latency is kept. The
first minute warms up (caches, pools, catalogs); the rest is compared with it.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
import pytest
from twilio.request_validator import RequestValidator

from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio
from tests.reliability.figures import figure
from tests.web.serve_process import ServeProcess

pytestmark = pytest.mark.chaos

SECONDS = float(os.environ.get("CITYBOT_SOAK_SECONDS", "600"))
MINUTE = min(60.0, SECONDS / 5)
PATH = "/webhooks/twilio/sms"


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _keep(
    in_flight: set[asyncio.Task[float]], minute: list[float], failures: list[BaseException]
) -> Callable[[asyncio.Task[float]], None]:
    """A done callback: the latency into its minute, a failure into ``failures``."""

    def done(task: asyncio.Task[float]) -> None:
        in_flight.discard(task)
        error = task.exception()
        if error is None:
            minute.append(task.result())
        else:
            failures.append(error)

    return done


def _p99(latencies: list[float]) -> float:
    return statistics.quantiles(latencies, n=100)[98] if len(latencies) >= 2 else 0.0


async def test_half_capacity_for_ten_minutes_is_flat(tmp_path: Path) -> None:
    async with FakeTwilio() as twilio:
        server = ServeProcess(
            tmp_path,
            {
                "CITYBOT_RATE_LIMIT_PER_SECOND": "1000",
                "CITYBOT_RATE_LIMIT_BURST": "1000",
                "CITYBOT_TWILIO_SEND_RATE": "1000",
                "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
                "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                "TWILIO_SMS_FROM": "+27211234567",
                "TWILIO_API_BASE_URL": twilio.url,
            },
        )
        server.env["CITYBOT_PUBLIC_URL"] = server.url
        validator = RequestValidator(AUTH_TOKEN)
        await asyncio.to_thread(server.start, 60)
        assert server.process is not None
        pid = server.process.pid
        try:
            # At most 64 connections: the server's sockets for them are bounded too.
            async with aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=30),
                connector=aiohttp.TCPConnector(limit=64),
            ) as http:

                async def sms() -> float:
                    form = {
                        "MessageSid": "SM" + uuid.uuid4().hex,
                        "AccountSid": ACCOUNT_SID,
                        "From": f"+2785{uuid.uuid4().int % 10**7:07d}",
                        "To": "+27211234567",
                        "Body": "menu",
                        "NumMedia": "0",
                    }
                    signature = validator.compute_signature(server.url + PATH, form)
                    headers = {
                        "Content-Type": "application/x-www-form-urlencoded",
                        "X-Twilio-Signature": signature,
                    }
                    began = time.monotonic()
                    async with http.post(
                        server.url + PATH, data=urlencode(form), headers=headers
                    ) as r:
                        assert r.status == 200, await r.text()
                    return time.monotonic() - began

                # -- capacity: as fast as 32 residents at once can go, for 20 s --------------
                done = 0
                until = time.monotonic() + 20

                async def flat_out() -> None:
                    nonlocal done
                    while time.monotonic() < until:
                        await sms()
                        done += 1

                await asyncio.gather(*(flat_out() for _ in range(32)))
                capacity = done / 20
                rate = capacity / 2

                # -- half capacity for SECONDS, sampled every 5 s ----------------------------
                samples: list[tuple[float, int, int]] = []
                minutes: list[list[float]] = [[]]
                failures: list[BaseException] = []
                start = time.monotonic()
                in_flight: set[asyncio.Task[float]] = set()
                sent = 0
                while (now := time.monotonic()) - start < SECONDS:
                    due = int((now - start) * rate)
                    while sent < due:
                        task = asyncio.create_task(sms())
                        in_flight.add(task)
                        task.add_done_callback(_keep(in_flight, minutes[-1], failures))
                        sent += 1
                    if now - start >= MINUTE * len(minutes):
                        minutes.append([])
                    if not samples or now - samples[-1][0] >= 5:
                        samples.append((now, _rss_kib(pid), _fds(pid)))
                    await asyncio.sleep(0.01)
                await asyncio.gather(*in_flight)
        finally:
            server.stop()

    assert failures == [], failures[:3]
    warm = [s for s in samples if s[0] - start >= MINUTE]
    rss_base, rss_end = warm[0][1], warm[-1][1]
    p99s = [_p99(m) for m in minutes if len(m) >= 20]
    growth = (rss_end - rss_base) / rss_base
    assert growth <= 0.10, f"memory grew {growth:.0%}: {rss_base} -> {rss_end} KiB"
    # Sockets in flight come and go with each sample; a leak goes on growing: the last
    # quarter's median may not pass the first quarter's by more than a few.
    quarter = max(1, len(warm) // 4)
    fd_base = int(statistics.median(s[2] for s in warm[:quarter]))
    fd_end = int(statistics.median(s[2] for s in warm[-quarter:]))
    assert fd_end <= fd_base + 5, f"descriptors grew: {[s[2] for s in warm]}"
    # Steady: no upward trend. A shared machine makes single minutes noisy (one run here had a
    # 399 ms minute between 145 and 29 ms ones), so thirds are compared by their medians.
    steady = p99s[1:]
    third = max(1, len(steady) // 3)
    early, late = statistics.median(steady[:third]), statistics.median(steady[-third:])
    assert late <= 2 * max(early, 0.05), f"p99 by minute: {p99s}"
    figure(
        f"soak: {SECONDS / 60:.0f} min at half capacity ({rate:.0f} of {capacity:.0f} SMS/s, "
        f"{sent} SMS): memory {rss_base / 1024:.0f} -> {rss_end / 1024:.0f} MiB "
        f"({growth:+.1%}), descriptors {fd_base} -> {fd_end}, p99 by minute "
        f"{', '.join(f'{p * 1000:.0f}' for p in p99s)} ms"
    )
