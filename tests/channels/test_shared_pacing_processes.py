"""Two sending processes, one provider account: together at the limit, never above, and a 429
pauses both.

Each process is ``tests.channels.paced_sender``: the real channel built as ``citybot worker``
builds it, its shared ``RedisPacer`` on the real Redis server, ``send_with_retries``. The fake
provider (tests/fakes) records when each request arrived; the tests count arrivals in every
sliding one-second window.

The machine running the tests is shared (test suites side by side on two cores, load average
above 4), and arrivals at the fake, which runs in the busy test process, jitter by 50 ms and more
there. So the tests give the pacers 100 ms of jitter allowance (``CITYBOT_PACING_JITTER_MS``):
they then aim 10% under the limit, and the lower bound on the achieved rate is loose; the upper
bounds are the point.
"""

from __future__ import annotations

from tests.channels.paced_sender import busiest_second, paced_arrivals, run_senders
from tests.fakes.recording_server import RecordedRequest
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.twilio_api import FakeTwilio

JITTER_MS = 100


async def test_two_processes_together_send_at_the_limit_never_above(redis_url: str) -> None:
    async with FakeTelegram() as fake:
        reports = await run_senders(
            fake.url, redis_url, "telegram", rate=40, per_worker=60, jitter_ms=JITTER_MS
        )
    assert [r["statuses"] for r in reports] == [{"sent": 60}, {"sent": 60}]
    times = sorted(r.at for r in paced_arrivals(fake))
    assert len(times) == 120
    # Each process alone would send at 40/s, twice the limit together; shared, they keep to it.
    assert busiest_second(times) <= 40
    achieved = (len(times) - 1) / (times[-1] - times[0])
    assert 40 * 0.75 <= achieved <= 40
    # Both really sent side by side, not one after the other.
    by_worker = [
        sorted(r.at for r in paced_arrivals(fake) if r.form["chat_id"][2] == w) for w in "01"
    ]
    assert by_worker[0][0] < by_worker[1][-1] and by_worker[1][0] < by_worker[0][-1]


async def test_a_429_pauses_both_processes_for_the_time_it_names(redis_url: str) -> None:
    async with FakeTwilio() as fake:

        def limit_once_midway(request: RecordedRequest) -> None:
            if len(paced_arrivals(fake)) == 30:
                fake.rate_limit_next(retry_after=1)

        fake.on_request = limit_once_midway
        reports = await run_senders(
            fake.url, redis_url, "sms", rate=40, per_worker=40, jitter_ms=JITTER_MS
        )
    assert all(r["statuses"] == {"queued": 40} or r["statuses"] == {"sent": 40} for r in reports)
    arrivals = paced_arrivals(fake)
    [limited] = [r for r in arrivals if r.status == 429]
    # Sends already on the wire when the 429 was answered still arrive; then nothing from either
    # process until the second Twilio named has passed, then both resume.
    settling = limited.at + 0.1
    assert not [r for r in arrivals if settling < r.at < limited.at + 1.0]
    after = [r for r in arrivals if r.at >= limited.at + 1.0]
    assert {r.form["To"][5] for r in after} == {"0", "1"}
    assert sum(r.status == 201 for r in arrivals) == 80
    assert busiest_second([r.at for r in arrivals]) <= 40
