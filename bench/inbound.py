"""Inbound load: simulated residents complete forms over HTTP through the web chat API.

Each resident has its own session cookie, picks a service by typing its keyword, answers every
question the way people do (``forms_runtime.sample_answers``), sends the review, and starts over.
Every request is one message through the whole stack: HTTP, cookie, dedupe, lock, state load, the
engine, state save (and the submission on the last step), JSON rendering.

Two modes:

* closed loop (default): ``--residents`` residents each send their next message as soon as the
  last is answered; measures the most messages per second the server sustains.
* fixed rate (``--rate R``): messages are offered at R per second whatever the server does, and
  latency is measured from when each was due (no coordinated omission). ``--half`` first finds
  the maximum with a closed loop, then offers half of it.

Run against a server you started, or let the bench start one (``--start``)::

    .venv/bin/python bench/inbound.py --start --seconds 10
    .venv/bin/python bench/inbound.py --start --half \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
        --redis-url redis://127.0.0.1:6379/15

Target (issue 3, one process, HTTP included, PostgreSQL + Redis): at least 1,500 messages/s,
and p99 under 50 ms at half that load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from forms_runtime.effects import Ask, InputKind, OptionView
from forms_runtime.loader import standard_forms
from forms_runtime.sample_answers import sample_answer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.latency import LatencySummary, closed_loop  # noqa: E402
from bench.serve_process import serve_in_subprocess  # noqa: E402


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    submitted: int = 0
    rate_limited: int = 0

    def merge(self, other: Stats) -> None:
        self.latencies += other.latencies
        self.statuses.update(other.statuses)
        self.submitted += other.submitted
        self.rate_limited += other.rate_limited


def answer_for(
    messages: list[dict[str, Any]], rng: random.Random, keywords: list[str]
) -> dict[str, Any]:
    """What a resident says next, given the bot's last reply (JSON bubbles)."""
    for message in reversed(messages):
        if message.get("type") == "review":
            return {"option_id": "send"}
        if message.get("type") == "ask":
            options = tuple(OptionView(o["id"], o["label"]) for o in message.get("options", []))
            kind = InputKind(message.get("input", "text"))
            if kind is InputKind.PHOTO or (kind is InputKind.CONFIRM and not options):
                return {"text": "skip"}
            ask = Ask(
                step_id=message.get("step_id", ""),
                prompt=message["text"],
                kind=kind,
                options=options,
            )
            inbound = sample_answer(ask, rng, typos=False)
            if inbound.option_id is not None:
                return {"option_id": inbound.option_id}
            if inbound.location is not None:
                return {"location": {"lat": inbound.location.lat, "lon": inbound.location.lon}}
            if inbound.media is not None:
                return {"text": "skip"}
            return {"text": inbound.text or "yes"}
    return {"text": rng.choice(keywords)}


class Resident:
    def __init__(
        self, number: int, base_url: str, connector: aiohttp.BaseConnector, keywords: list[str]
    ) -> None:
        self.rng = random.Random(number)
        self.keywords = keywords
        self.session = aiohttp.ClientSession(
            base_url=base_url,
            connector=connector,
            connector_owner=False,
            # unsafe: keep cookies for an IP address host such as 127.0.0.1.
            cookie_jar=aiohttp.CookieJar(unsafe=True),
        )
        self.last: list[dict[str, Any]] = []
        self.sent = 0
        self.number = number

    async def say(self, stats: Stats, due: float | None = None) -> None:
        body = answer_for(self.last, self.rng, self.keywords)
        self.sent += 1
        body["client_message_id"] = f"r{self.number}-{self.sent}"
        started = due if due is not None else time.perf_counter()
        async with self.session.post("/webchat/messages", json=body) as response:
            payload = await response.json() if response.status == 200 else {}
        stats.latencies.append(time.perf_counter() - started)
        stats.statuses[response.status] += 1
        if response.status != 200:
            return
        if payload.get("reference"):
            stats.submitted += 1
        if payload.get("rate_limited"):
            stats.rate_limited += 1
        if payload.get("messages"):
            self.last = payload["messages"]

    async def close(self) -> None:
        await self.session.close()


async def closed_loop_stats(residents: list[Resident], seconds: float) -> Stats:
    stats = Stats()
    await closed_loop([functools.partial(r.say, stats) for r in residents], seconds)
    return stats


async def fixed_rate(residents: list[Resident], seconds: float, rate: float) -> Stats:
    """Offer ``rate`` messages/s in total, each resident on its own evenly spaced schedule."""
    stats = Stats()
    interval = len(residents) / rate
    began = time.perf_counter() + 0.05
    deadline = began + seconds

    async def run(index: int, resident: Resident) -> None:
        due = began + interval * index / len(residents)
        while due < deadline:
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            await resident.say(stats, due=due)
            due += interval

    await asyncio.gather(*(run(i, r) for i, r in enumerate(residents)))
    return stats


def report(title: str, stats: Stats, seconds: float) -> float:
    ok = stats.statuses.get(200, 0)
    rate = ok / seconds if seconds else 0.0
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(stats.statuses.items()))
    print(
        f"{title}: {rate:,.0f} messages/s ({ok} ok in {seconds:.1f} s; {statuses}); "
        f"latency {LatencySummary.of(stats.latencies)}; "
        f"{stats.submitted} forms submitted; {stats.rate_limited} rate-limited",
        flush=True,
    )
    return rate


async def bench(args: argparse.Namespace) -> None:
    keywords = [
        form.keywords["en"][0] for form in standard_forms().values() if form.keywords.get("en")
    ]
    async with contextlib.AsyncExitStack() as stack:
        if args.start:
            server = serve_in_subprocess(
                database_url=args.database_url, redis_url=args.redis_url, profile=args.profile
            )
            url = await stack.enter_async_context(server)
        else:
            url = args.url
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        stack.push_async_callback(connector.close)
        what = (
            "SQLite"
            if not args.database_url or args.database_url.startswith("sqlite")
            else "PostgreSQL"
        )
        what += " + Redis" if args.redis_url else ""
        print(
            f"citybot inbound bench against {url} ({what if args.start else 'running server'})",
            flush=True,
        )

        async def residents(n: int, offset: int) -> list[Resident]:
            people = [Resident(offset + i, url, connector, keywords) for i in range(n)]
            for person in people:
                stack.push_async_callback(person.close)
            return people

        warm = await residents(args.residents, 0)
        await closed_loop_stats(warm, args.warmup)  # connections, caches, the JIT of the mind
        rate = args.rate
        if rate is None or args.half:
            stats = await closed_loop_stats(await residents(args.residents, 10_000), args.seconds)
            maximum = report(
                f"max, {args.residents} residents in a closed loop", stats, args.seconds
            )
            rate = maximum / 2 if args.half else None
        if rate:
            n = max(args.residents, int(rate))  # about one message per resident per second
            stats = await fixed_rate(await residents(n, 100_000), args.seconds, rate)
            report(f"fixed rate {rate:,.0f}/s offered, {n} residents", stats, args.seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8080", help="a running citybot serve")
    parser.add_argument("--start", action="store_true", help="start citybot serve on a free port")
    parser.add_argument(
        "--database-url", help="with --start: CITYBOT_DATABASE_URL (default: temp SQLite)"
    )
    parser.add_argument("--redis-url", help="with --start: CITYBOT_REDIS_URL")
    parser.add_argument(
        "--residents", type=int, default=64, help="concurrent residents (closed loop)"
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rate", type=float, help="offer this many messages/s (fixed-rate mode)")
    parser.add_argument(
        "--half", action="store_true", help="measure the max, then offer half of it"
    )
    parser.add_argument(
        "--profile",
        help="with --start: record the server with py-spy into this SVG (.txt: collapsed stacks)",
    )
    args = parser.parse_args(argv)
    asyncio.run(bench(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
