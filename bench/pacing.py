"""Two worker processes, one provider account at 1,000 messages/s: do they keep to it together?

Each worker (``tests.channels.paced_sender``) builds its channel as ``citybot worker`` does, with
the shared ``RedisPacer``, and sends its half of the messages in the bulk lane; the fake provider
(tests/fakes) records when each request arrived. Printed per channel: the achieved rate between
the first arrival and the last (target: within 2% of the limit, never above) and the most
arrivals in any one-second window (never above the limit), and the same count over the moments
the pacers released the sends (what the pacing itself does, before the SDK, the network and the
fake's event loop add their jitter).

Also printed: the CPU time (user + system) of the two sending processes per message, the figure
to compare on a shared machine, where the rate mostly shows how loaded it was.

Needs Redis: ``CITYBOT_TEST_REDIS_URL`` (or ``--redis``).

Measured on the shared 2-core machine (load average 4 to 8, other suites running), 5,000
messages a channel, runs alternated with the code before (issue 12):

=========================  ======================  ======================
                           before                  after
=========================  ======================  ======================
Telegram, CPU per message  0.90 to 1.04 ms         0.41 to 0.48 ms
Telegram, rate             387 to 613/s            736 to 877/s
SMS, CPU per message       0.66 to 0.82 ms         0.41 to 0.53 ms
SMS, rate                  540 to 636/s            516 to 955/s
=========================  ======================  ======================

The CPU went to one pacing script call per message, made one at a time (now one per batch of
up to 64 waiting senders), a second call per message asking about 429 holds (now shared, and
rarely needed), and, for Telegram, decoding each answer into a ``Message`` (now kept as JSON).
The rate stays under the limit on this machine because a process that the OS leaves waiting
for more than the jitter allowance wakes too late for its slots and gives them up (rather than
bunch its sends up); the pacers never released more than the limit in any second (999 at 95.5%
of it), but the fake provider, in a loaded process of its own, counted up to 1,030 in its
busiest second once: arrivals jitter by more than the 10 ms allowed there, which
``--jitter-ms`` (``CITYBOT_PACING_JITTER_MS``) widens.

On the same machine with nothing else running (2026-12-04, after the key layout of issue 20),
three runs: Telegram 987 to 991/s (98.7 to 99.0% of the limit), SMS 981 to 990/s (98.1 to
99.0%), 0.36 to 0.44 ms of CPU a message; the pacers released at most 996 to 1,000 in any
second. The fake provider counted 1,004 to 1,013 in its busiest second, and a capture of the
loopback interface (tcpdump, the kernel's own timestamps) 1,011: after the pacer releases a
send, the OS and the SDK delay some by tens of milliseconds and then let two 100 ms spans
carry 110 and 108 where the spans before carried 94 and 95. That bunching happens after
citybot lets go; a provider's token bucket takes it, but it is why the bench printed MISSED.

2026-12-05, quiet machine, four runs of both channels: 990.1 to 990.3/s (99.0% of the limit),
busiest second at the fake provider 995 to 997, as released by the pacers 993 to 995, 0.25 to
0.31 ms of CPU a message: ok. Two of the runs were also captured with tcpdump on the loopback:
995 in the busiest second on the wire, each channel. Before the fake's process set the first
run's heap aside from the garbage collector (``bench()``), SMS, measured second, counted 1,073
to 1,110 at the fake in three runs out of three, while the wire showed 998: the fake's own
stall, not the senders'.

Example::

    .venv/bin/python bench/pacing.py --rate 1000 --seconds 10
    telegram: 10000 sent in 10.10 s: 990.0/s (99.0% of 1000), busiest second 991, 429s 0: ok
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
from pathlib import Path
from typing import cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.channels.paced_sender import busiest_second, paced_arrivals, run_senders
from tests.fakes.recording_server import RecordingServer
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio


async def bench(
    channel: str,
    rate: float,
    seconds: float,
    redis_url: str,
    workers: int,
    jitter_ms: float,
    lane: str,
) -> bool:
    # What the runs before left on this process's heap (the first channel's 10,000 recorded
    # requests) is set aside from the collector: a full collection of it in the middle of this
    # run stalled the fake provider's loop for about 100 ms, and the requests that waited were
    # stamped together on arrival (SMS after Telegram: 1,073 to 1,110 in its busiest second,
    # while the kernel's own timestamps on the loopback, tcpdump, showed 998).
    gc.collect()
    gc.freeze()
    fake: RecordingServer = FakeTelegram() if channel == "telegram" else FakeTwilio()
    total = int(rate * seconds)
    async with fake:
        reports = await run_senders(
            fake.url,
            redis_url,
            channel,
            rate=rate,
            per_worker=total // workers,
            workers=workers,
            # Enough senders per process to keep a quarter second of bulk slots booked ahead.
            concurrency=max(20, int(rate / workers * 0.5)),
            jitter_ms=jitter_ms,
            lane=lane,
        )
    arrivals = paced_arrivals(fake)
    times = sorted(r.at for r in arrivals)
    span = times[-1] - times[0]
    achieved = (len(times) - 1) / span if span > 0 else 0.0
    busiest = busiest_second(times)
    limited = sum(r.status == 429 for r in arrivals)
    released = [t for r in reports for t in cast(list[float], r["released"])]
    ok = 0.98 * rate <= achieved <= rate and busiest <= rate
    cpu = sum(cast(float, r["cpu_seconds"]) for r in reports)
    print(
        f"{channel}: {len(times)} sent in {span:.2f} s: {achieved:.1f}/s "
        f"({achieved / rate:.1%} of {rate:g}), busiest second at the provider {busiest}, "
        f"429s {limited}: {'ok' if ok else 'MISSED'}; "
        f"CPU {cpu * 1000 / max(1, len(times)):.2f} ms per message (user+sys of the senders)"
    )
    # The same count where the pacers let the sends go (both processes' clocks are this host's):
    # what the pacing does, before the SDK, the network and the fake's own event loop add jitter.
    print(
        f"  busiest second as released by the pacers {busiest_second(released)}; "
        f"workers: {[r['statuses'] for r in reports]}"
    )
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="the provider's limit, msg/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long at the limit")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--channel", choices=("telegram", "sms", "both"), default="both")
    parser.add_argument("--jitter-ms", type=float, default=10.0, help="CITYBOT_PACING_JITTER_MS")
    parser.add_argument("--lane", choices=("bulk", "reply"), default="bulk")
    parser.add_argument("--redis", default=os.environ.get("CITYBOT_TEST_REDIS_URL"))
    args = parser.parse_args()
    if not args.redis:
        parser.error("set CITYBOT_TEST_REDIS_URL or pass --redis")
    channels = ("telegram", "sms") if args.channel == "both" else (args.channel,)
    results = [
        asyncio.run(
            bench(
                channel,
                args.rate,
                args.seconds,
                args.redis,
                args.workers,
                args.jitter_ms,
                args.lane,
            )
        )
        for channel in channels
    ]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
