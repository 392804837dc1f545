"""Turns per second of the conversation turn loop in-process (no HTTP), on real stores.

Simulated residents complete the standard forms as people do (``forms_runtime.sample_answers``):
pick a service by its keyword, answer each question, send the review, start over. Each resident
waits for its answer before sending the next message (a closed loop), so ``--residents`` is the
concurrency. Everything a turn does is measured: lock, dedupe, rate limit, state load and save,
the engine, the message log, submissions and their outbox rows.

Run::

    .venv/bin/python bench/turn_loop.py                       # SQLite file in a temp folder
    .venv/bin/python bench/turn_loop.py \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test \\
        --redis-url redis://127.0.0.1:6379/15
    .venv/bin/python bench/turn_loop.py --profile turns.prof  # cProfile of the timed part

On PostgreSQL the bench creates a scratch database next to the one named and drops it after;
on Redis it uses a key prefix of its own and deletes its keys after.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import functools
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from redis.asyncio import Redis

from bot.bootstrap import turn_loop_on
from channels.types import InboundKind, InboundMessage
from conversations.turn import TurnLoop, TurnResult
from forms_runtime.effects import Ask, Review
from forms_runtime.gazetteer import default_gazetteer
from forms_runtime.loader import standard_forms
from forms_runtime.sample_answers import sample_answer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.latency import LatencySummary, closed_loop  # noqa: E402
from bench.scratch_database import scratch_database  # noqa: E402


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    submitted: int = 0


class Resident:
    """One simulated resident on the web chat channel."""

    def __init__(self, number: int, keywords: list[str]) -> None:
        self.rng = random.Random(number)
        self.address = f"bench-{uuid.uuid4().hex[:8]}-{number}"
        self.keywords = keywords
        self.sent = 0
        self.last: TurnResult | None = None

    def next_message(self) -> InboundMessage:
        self.sent += 1
        message_id = f"{self.address}-{self.sent}"
        last = self.last.effects[-1] if self.last and self.last.effects else None
        if isinstance(last, Ask) and last.step_id == "consent":
            return InboundMessage("webchat", self.address, message_id, text="yes")
        if isinstance(last, Ask | Review):
            inbound = sample_answer(last, self.rng, typos=False)
            kind = InboundKind.TEXT
            if inbound.option_id is not None:
                kind = InboundKind.BUTTON
            elif inbound.location is not None:
                kind = InboundKind.LOCATION
            elif inbound.media is not None:
                return InboundMessage("webchat", self.address, message_id, text="skip")
            return InboundMessage(
                "webchat",
                self.address,
                message_id,
                kind=kind,
                text=inbound.text,
                option_id=inbound.option_id,
                location=inbound.location,
            )
        return InboundMessage(
            "webchat", self.address, message_id, text=self.rng.choice(self.keywords)
        )

    async def say(self, loop: TurnLoop, stats: Stats) -> None:
        message = self.next_message()
        started = time.perf_counter()
        result = await loop.handle(message)
        stats.latencies.append(time.perf_counter() - started)
        if result.reference is not None:
            stats.submitted += 1
        self.last = result


async def closed_loop_stats(loop: TurnLoop, residents: list[Resident], seconds: float) -> Stats:
    stats = Stats()
    await closed_loop([functools.partial(r.say, loop, stats) for r in residents], seconds)
    return stats


def report(title: str, stats: Stats, seconds: float) -> None:
    latency = LatencySummary.of(stats.latencies)
    print(
        f"{title}: {latency.count / seconds:,.0f} turns/s ({latency.count} in {seconds:.1f} s); "
        f"latency {latency}; {stats.submitted} forms submitted",
        flush=True,
    )


async def bench(args: argparse.Namespace) -> None:
    forms = standard_forms()
    keywords = [f.keywords["en"][0] for f in forms.values() if f.keywords.get("en")]
    gazetteer = default_gazetteer()
    prefix = f"citybot-bench:{uuid.uuid4().hex[:8]}:"
    async with scratch_database(args.database_url) as url:
        loop = turn_loop_on(
            url,
            args.redis_url,
            forms=forms,
            gazetteer=gazetteer,
            # The simulated residents type far faster than people; not what this measures.
            rate_per_second=100_000,
            rate_burst=100_000,
            redis_prefix=prefix,
        )
        what = "SQLite" if url.startswith("sqlite") else "PostgreSQL"
        what += " + Redis" if args.redis_url else ""
        print(f"citybot turn loop bench ({what}), {args.residents} residents", flush=True)
        try:
            await closed_loop_stats(
                loop, [Resident(i, keywords) for i in range(args.residents)], 1.0
            )
            residents = [Resident(1000 + i, keywords) for i in range(args.residents)]
            profiler = cProfile.Profile() if args.profile else None
            if profiler is not None:
                profiler.enable()
            stats = await closed_loop_stats(loop, residents, args.seconds)
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(args.profile)
            report("closed loop", stats, args.seconds)
        finally:
            await loop.close()
            if args.redis_url:
                redis = Redis.from_url(args.redis_url)
                keys = [k async for k in redis.scan_iter(match=prefix + "*", count=1000)]
                for start in range(0, len(keys), 1000):
                    await redis.delete(*keys[start : start + 1000])
                await redis.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="default: a SQLite file in a temp folder")
    parser.add_argument("--redis-url", help="state, dedupe, locks and rate limits in Redis")
    parser.add_argument("--residents", type=int, default=64, help="concurrent residents")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--profile", help="write a cProfile of the timed part to this file")
    args = parser.parse_args(argv)
    asyncio.run(bench(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
