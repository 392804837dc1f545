"""Webhook load: signed Twilio SMS posts and Telegram updates through one ``citybot serve``.

Every request is what a provider sends: a Telegram Update JSON with the secret header, or a
Twilio form post signed with ``RequestValidator.compute_signature`` against the public URL. The
server verifies it, runs the whole turn loop (dedupe, lock, state, engine, message log, commit),
answers the provider, then sends the reply through the real SDK to a local fake Telegram / Twilio
server run by this bench (which records every request, so the report says how many replies were
sent too). Simulated residents walk through the pothole form and start again; each one waits for
the answer to its last message before sending the next (closed loop).

    .venv/bin/python bench/webhooks.py --seconds 10 \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
        --redis-url redis://127.0.0.1:6379/15

Target (issue 4): at least 1,500 messages/s per process on PostgreSQL + Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import itertools
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.latency import LatencySummary, closed_loop  # noqa: E402
from bench.serve_process import serve_in_subprocess  # noqa: E402
from tests.fakes.telegram_api import FakeTelegram  # noqa: E402
from tests.fakes.twilio_api import ACCOUNT_SID, AUTH_TOKEN, FakeTwilio  # noqa: E402

TOKEN = "7000000001:AAFakeTokenForBench"
SECRET = "bench-secret"
# What a resident types through the pothole form (consent, place, kind, size, danger, photo...).
SCRIPT = (
    "pothole",
    "1",
    "yes",
    "Site C Khayelitsha",
    "1",
    "2",
    "no",
    "skip",
    "no",
    "send",
)


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: {"sms": [], "telegram": []})
    statuses: Counter[int] = field(default_factory=Counter)


class Resident:
    def __init__(self, number: int, channel: str, url: str, session: aiohttp.ClientSession):
        self.channel = channel
        self.url = url
        self.session = session
        self.number = number
        self.phone = f"+2783{number:07d}"
        self.chat_id = 500_000_000 + number
        self.script = itertools.cycle(SCRIPT)
        self.ids = itertools.count(1)
        self.validator = RequestValidator(AUTH_TOKEN)

    async def say(self, stats: Stats) -> None:
        text = next(self.script)
        n = next(self.ids)
        if self.channel == "telegram":
            path = "/webhooks/telegram"
            update_id = self.number * 1_000_000 + n
            body = {
                "update_id": update_id,
                "message": {
                    "message_id": n,
                    "from": {
                        "id": self.chat_id,
                        "is_bot": False,
                        "first_name": "R",
                        "language_code": "en",
                    },
                    "chat": {"id": self.chat_id, "type": "private", "first_name": "R"},
                    "date": int(time.time()),
                    "text": text,
                },
            }
            kwargs: dict[str, object] = {
                "data": json.dumps(body),
                "headers": {
                    "Content-Type": "application/json",
                    "X-Telegram-Bot-Api-Secret-Token": SECRET,
                },
            }
        else:
            path = "/webhooks/twilio/sms"
            sid = f"SM{self.number:016d}{n:016d}"
            form = {
                "MessageSid": sid,
                "SmsSid": sid,
                "AccountSid": ACCOUNT_SID,
                "From": self.phone,
                "To": "+27211234567",
                "Body": text,
                "NumMedia": "0",
            }
            signature = self.validator.compute_signature(self.url + path, form)
            kwargs = {
                "data": urlencode(form),
                "headers": {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "X-Twilio-Signature": signature,
                },
            }
        started = time.perf_counter()
        async with self.session.post(self.url + path, **kwargs) as response:  # type: ignore[arg-type]
            await response.read()
            stats.statuses[response.status] += 1
        stats.latencies[self.channel].append(time.perf_counter() - started)


def server_env(telegram: FakeTelegram, twilio: FakeTwilio) -> dict[str, str]:
    """Both channels on, talking to the bench's fake providers."""
    return {
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_API_BASE_URL": telegram.url,
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_SMS_FROM": "+27211234567",
        "TWILIO_API_BASE_URL": twilio.url,
        # Outbound pacing is the providers' rule, not what this measures: the fakes take any rate.
        "CITYBOT_TELEGRAM_SEND_RATE": "100000",
        "CITYBOT_TWILIO_SEND_RATE": "100000",
    }


async def bench(args: argparse.Namespace) -> int:
    async with contextlib.AsyncExitStack() as stack:
        telegram = await stack.enter_async_context(FakeTelegram())
        twilio = await stack.enter_async_context(FakeTwilio())
        server = serve_in_subprocess(
            database_url=args.database_url,
            redis_url=args.redis_url,
            env=server_env(telegram, twilio),
            profile=args.profile,
        )
        url = await stack.enter_async_context(server)
        connector = aiohttp.TCPConnector(limit=args.residents)
        session = await stack.enter_async_context(aiohttp.ClientSession(connector=connector))
        residents = [
            Resident(i, "telegram" if i % 2 else "sms", url, session) for i in range(args.residents)
        ]
        await closed_loop([functools.partial(r.say, Stats()) for r in residents], args.warmup)
        sent_before = len(telegram.requests) + len(twilio.requests)
        cpu_before = url.cpu_seconds()
        started = time.perf_counter()
        stats = Stats()
        await closed_loop([functools.partial(r.say, stats) for r in residents], args.seconds)
        elapsed = time.perf_counter() - started
        cpu_after = url.cpu_seconds()
        replies = len(telegram.requests) + len(twilio.requests) - sent_before
    everything = LatencySummary.of([x for v in stats.latencies.values() for x in v])
    backend = (
        "PostgreSQL + Redis"
        if args.database_url and args.redis_url
        else ("PostgreSQL" if args.database_url else "SQLite")
    )
    print(
        f"webhooks through the full turn loop, one citybot serve, {backend}, {args.residents} residents"
    )
    print(
        f"  messages/s: {everything.count / elapsed:,.0f}  ({everything.count} in {elapsed:.1f} s; "
        f"HTTP statuses {dict(stats.statuses)})"
    )
    print(f"  {everything}")
    for channel, values in stats.latencies.items():
        print(f"  {channel:8s} {len(values) / elapsed:,.0f} msgs/s   {LatencySummary.of(values)}")
    print(f"  replies that reached the fake providers during the run: {replies:,}")
    if cpu_before is not None and cpu_after is not None and everything.count:
        cpu = cpu_after - cpu_before
        # Comparable across machines and loads: what one message costs the server's one core.
        print(
            f"  server CPU: {cpu:.1f} s of {elapsed:.1f} s ({100 * cpu / elapsed:.0f}% of a core), "
            f"{1000 * cpu / everything.count:.2f} ms a message "
            f"(= {everything.count / cpu:,.0f} msg/s per fully used core)"
        )
    return 0 if stats.statuses.keys() <= {200} else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--residents", type=int, default=200)
    parser.add_argument(
        "--profile", help="record the server with py-spy into this SVG (.txt: collapsed stacks)"
    )
    parser.add_argument("--database-url", default=os.environ.get("CITYBOT_TEST_POSTGRES_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("CITYBOT_TEST_REDIS_URL"))
    return asyncio.run(bench(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
