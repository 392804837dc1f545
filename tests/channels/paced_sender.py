"""A sending process for the pacing tests and bench/pacing.py: real channels, shared pacer, N sends.

It builds its channels the way ``citybot worker`` does (``bot.channel_setup.build_channels`` with
Redis, so each channel's pacer is the shared ``RedisPacer``), waits until ``--start-at`` so that
several processes begin together, sends ``--count`` messages to distinct residents from
``--concurrency`` tasks through ``send_with_retries`` and prints one JSON line of what happened (with the moments the pacer let each send go).
``run_senders`` starts several and collects their reports; ``busiest_second`` counts what the
fake provider received in its busiest second.

Example::

    python -m tests.channels.paced_sender --channel telegram --api http://127.0.0.1:8081 \\
        --redis redis://127.0.0.1:6379/11 --prefix test-1: --rate 40 --count 60 --worker 0
    {"statuses": {"sent": 60}, "seconds": 3.01}

    reports = await run_senders(fake.url, redis_url, "telegram", rate=40, per_worker=60)
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import resource
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

from bot.channel_setup import build_channels
from bot.config import Settings
from channels.pacing import BasePacer, Lane
from channels.retrying import send_with_retries
from channels.types import OutboundMessage
from storage.redis import connect_redis
from tests.fakes.recording_server import RecordedRequest, RecordingServer
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN

TELEGRAM_TOKEN = "123456:TEST-TOKEN"
SMS_FROM = "+27210000000"
WARM_UP = "warm-up"
ROOT = Path(__file__).resolve().parents[2]


async def run_senders(
    api_url: str,
    redis_url: str,
    channel: str,
    *,
    rate: float,
    per_worker: int,
    workers: int = 2,
    concurrency: int = 20,
    lane: str = "bulk",
    jitter_ms: float = 10.0,
    start_in: float = 3.0,
) -> list[dict[str, object]]:
    """Run ``workers`` sending processes to the end (they start together); their reports."""
    prefix = f"pace-{uuid.uuid4().hex[:8]}:"
    # All begin at the same moment, once each has imported everything and connected.
    start_at = time.time() + start_in
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.channels.paced_sender",
            f"--channel={channel}",
            f"--api={api_url}",
            f"--redis={redis_url}",
            f"--prefix={prefix}",
            f"--rate={rate}",
            f"--count={per_worker}",
            f"--worker={worker}",
            f"--concurrency={concurrency}",
            f"--lane={lane}",
            f"--jitter-ms={jitter_ms}",
            f"--start-at={start_at}",
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        for worker in range(workers)
    ]
    outputs = [await p.communicate() for p in processes]
    if any(p.returncode != 0 for p in processes):
        raise RuntimeError(f"a sending process failed: {[p.returncode for p in processes]}")
    return [json.loads(out.decode().strip().splitlines()[-1]) for out, _ in outputs]


def paced_arrivals(fake: RecordingServer) -> list[RecordedRequest]:
    """The messages the fake received from the paced sends (not the warm-up), in arrival order."""
    return sorted(
        (
            r
            for r in fake.requests
            if r.path.endswith(("/sendMessage", "/Messages.json"))
            and r.form.get("text", r.form.get("Body")) != WARM_UP
        ),
        key=lambda r: r.at,
    )


def busiest_second(times: list[float]) -> int:
    """The most of ``times`` in any one-second window [t, t + 1)."""
    ordered = sorted(times)
    return max((bisect.bisect_left(ordered, t + 1.0) - i for i, t in enumerate(ordered)), default=0)


def _address(channel: str, worker: int, i: int) -> str:
    number = worker * 1_000_000 + i
    return str(100_000_000 + number) if channel == "telegram" else f"+2783{number:07d}"


class _Stamped(BasePacer):
    """The channel's pacer, noting the moment (time.time()) it lets each send go."""

    def __init__(self, pacer: BasePacer) -> None:
        self.pacer = pacer
        self.released: list[float] = []

    async def wait(self, address: str, lane: Lane = Lane.REPLY) -> None:
        await self.pacer.wait(address, lane)
        self.released.append(time.time())

    async def hold(self, seconds: float, address: str | None = None) -> None:
        await self.pacer.hold(seconds, address)


async def run(args: argparse.Namespace) -> dict[str, object]:
    env = {
        "CITYBOT_REDIS_URL": args.redis,
        "TELEGRAM_BOT_TOKEN": TELEGRAM_TOKEN,
        "TELEGRAM_API_BASE_URL": args.api,
        "CITYBOT_TELEGRAM_SEND_RATE": str(args.rate),
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_BASE_URL": args.api,
        "TWILIO_SMS_FROM": SMS_FROM,
        "TWILIO_SMS_MPS": str(args.rate),
        "CITYBOT_PACING_JITTER_MS": str(args.jitter_ms),
    }
    settings = Settings.from_env(env)
    assert settings.redis_url is not None
    redis = connect_redis(settings.redis_url)
    channels = build_channels(settings, None, env, redis=redis, redis_prefix=args.prefix)
    channel = channels[args.channel]
    pacer = _Stamped(channel.pacer)  # type: ignore[attr-defined]
    lane = Lane(args.lane)
    todo: asyncio.Queue[int] = asyncio.Queue()
    for i in range(args.count):
        todo.put_nowait(i)
    statuses: Counter[str] = Counter()

    async def sender() -> None:
        while not todo.empty():
            i = todo.get_nowait()
            message = OutboundMessage(args.channel, _address(args.channel, args.worker, i), "Hi")
            delivery = await send_with_retries(channel, message, pacer=pacer, lane=lane)
            statuses[delivery.status.value] += 1

    # Like a worker that has been running: Redis connected, the provider's connections open and
    # the SDK's first-call work done before the start, so the first second measures the pacing
    # rather than start-up. (The fake's recordings of these carry the text WARM_UP.)
    await redis.ping()
    await asyncio.gather(
        *(
            channel.send(OutboundMessage(args.channel, _address(args.channel, 9, i), WARM_UP))
            for i in range(args.concurrency)
        )
    )
    await asyncio.sleep(max(0.0, args.start_at - time.time()))
    started = time.perf_counter()
    cpu_before = _cpu_seconds()
    await asyncio.gather(*(sender() for _ in range(args.concurrency)))
    cpu = _cpu_seconds() - cpu_before
    seconds = time.perf_counter() - started
    for each in {id(c): c for c in channels.values()}.values():
        await each.close()
    await redis.aclose()
    return {
        "statuses": dict(statuses),
        "seconds": round(seconds, 3),
        "cpu_seconds": round(cpu, 3),
        "released": [round(t, 6) for t in pacer.released],
    }


def _cpu_seconds() -> float:
    # User + system time of this process: what a send costs, whatever else loads the machine.
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channel", choices=("telegram", "sms"), default="telegram")
    parser.add_argument("--api", required=True, help="the fake provider's base URL")
    parser.add_argument("--redis", required=True)
    parser.add_argument("--prefix", required=True, help="Redis key prefix (one per run)")
    parser.add_argument("--rate", type=float, required=True, help="the provider's limit, msg/s")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--worker", type=int, default=0, help="numbers this worker's residents")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--lane", choices=[lane.value for lane in Lane], default="bulk")
    parser.add_argument("--jitter-ms", type=float, default=10.0, help="CITYBOT_PACING_JITTER_MS")
    parser.add_argument("--start-at", type=float, default=0.0, help="time.time() to begin at")
    print(json.dumps(asyncio.run(run(parser.parse_args()))), flush=True)


if __name__ == "__main__":
    main()
