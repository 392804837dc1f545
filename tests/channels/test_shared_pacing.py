"""The pacers' contract (rate, burst, per address, holds, lanes), run against each pacer.

``Pacer`` paces one process; ``RedisPacer`` runs on the real Redis server (``redis_url``), and
two of them on one account stand for two processes. Time is a hand-stepped clock where the
contract is about arithmetic, and the real clock where it is about concurrent senders.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from channels.pacing import BasePacer, Lane, Pacer
from channels.shared_pacing import RedisPacer


class Clock:
    """A clock that only moves when a pacer sleeps."""

    def __init__(self) -> None:
        self.now = 1_000_000.0
        self.on_sleep: Callable[[], object] | None = None

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if self.on_sleep is not None:
            hook, self.on_sleep = self.on_sleep, None
            await hook()  # type: ignore[misc]
        self.now += seconds


MakePacer = Callable[..., BasePacer]


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(params=["in_process", "redis"])
def make_pacer(request: pytest.FixtureRequest) -> MakePacer:
    """Pacers for one account: ``make_pacer()`` twice is two processes sharing it (Redis)."""
    if request.param == "in_process":
        shared: list[Pacer] = []

        def in_process(per_second: float, per_address: float | None = None, **kw: object) -> Pacer:
            # One process: the same pacer however many times it is asked for.
            if not shared:
                shared.append(Pacer(per_second, per_address, **kw))  # type: ignore[arg-type]
            return shared[0]

        return in_process
    redis = request.getfixturevalue("redis")
    prefix = f"test-{uuid.uuid4().hex[:8]}:"

    def shared_pacer(
        per_second: float, per_address: float | None = None, **kw: object
    ) -> RedisPacer:
        return RedisPacer(redis, "telegram:1", per_second, per_address, prefix=prefix, **kw)  # type: ignore[arg-type]

    return shared_pacer


async def send_times(pacer: BasePacer, clock: Clock, addresses: list[str]) -> list[float]:
    """When each message may go, sent one after another, relative to the first."""
    start = clock.now
    times = []
    for address in addresses:
        await pacer.wait(address)
        times.append(round(clock.now - start, 6))
    return times


async def test_sends_are_spaced_at_the_rate_with_no_burst(make_pacer: MakePacer) -> None:
    clock = Clock()
    pacer = make_pacer(30, jitter_allowance=0, clock=clock, sleep=clock.sleep)
    times = await send_times(pacer, clock, [str(i) for i in range(31)])
    # An idle account does not save up a burst: the 31st message goes one second after the first.
    assert times[0] == 0
    assert times[1] == pytest.approx(1 / 30, abs=1e-5)
    assert times[30] == pytest.approx(1.0, abs=1e-4)
    assert sum(1 for t in times if t < 1.0) == 30


async def test_one_a_second_to_the_same_chat_without_slowing_others(make_pacer: MakePacer) -> None:
    clock = Clock()
    pacer = make_pacer(30, 1, jitter_allowance=0, clock=clock, sleep=clock.sleep)
    times = await send_times(pacer, clock, ["a", "a", "b"])
    assert times[:2] == [0, pytest.approx(1.0, abs=1e-5)]
    assert times[2] == pytest.approx(1.0 + 1 / 30, abs=1e-5)  # b only waits for the overall slot


async def test_a_hold_stops_every_address_until_it_has_passed(make_pacer: MakePacer) -> None:
    clock = Clock()
    pacer = make_pacer(1000, 1000, jitter_allowance=0, clock=clock, sleep=clock.sleep)
    await pacer.hold(5)
    times = await send_times(pacer, clock, ["a", "b"])
    assert 5.0 - 1e-5 <= times[0] <= 5.001 + 1e-5
    assert times[1] - times[0] == pytest.approx(0.001, abs=1e-5)


async def test_the_spacing_allows_for_jitter_at_the_providers_window_edge(
    make_pacer: MakePacer,
) -> None:
    clock = Clock()
    pacer = make_pacer(40, clock=clock, sleep=clock.sleep)  # the default: 10 ms
    times = await send_times(pacer, clock, [str(i) for i in range(41)])
    # The 41st send is 10 ms past the one-second edge: jitter up to that cannot put 41 in a second.
    assert times[40] - times[0] == pytest.approx(1.01, abs=1e-4)


async def test_a_hold_made_while_a_sender_sleeps_makes_it_book_again(make_pacer: MakePacer) -> None:
    clock = Clock()
    pacer = make_pacer(10, jitter_allowance=0, clock=clock, sleep=clock.sleep)
    other = make_pacer(
        10, jitter_allowance=0, clock=clock, sleep=clock.sleep
    )  # with Redis: another process
    await pacer.wait("a")
    # The next sender books the slot 0.1 s on and sleeps; meanwhile another process gets a 429.
    clock.on_sleep = lambda: other.hold(3)
    start = clock.now
    await pacer.wait("b")
    # Not at its slot 0.1 s on, but once the hold has passed (the in-process pacer's slots lie
    # on a grid of 0.1 s, so it may be the grid's next slot).
    assert 3.0 - 1e-5 <= clock.now - start <= 3.1 + 1e-5


async def test_two_processes_share_one_schedule(redis: Redis) -> None:
    clock = Clock()
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    first, second = (
        RedisPacer(
            redis,
            "twilio:AC1:+27210000000",
            10,
            prefix=prefix,
            jitter_allowance=0,
            clock=clock,
            sleep=clock.sleep,
        )
        for _ in range(2)
    )
    elsewhere = RedisPacer(
        redis, "twilio:AC1:+27219999999", 10, prefix=prefix, clock=clock, sleep=clock.sleep
    )
    start = clock.now
    times = []
    for pacer in (first, second, first, second):
        await pacer.wait("+27831234567")
        times.append(round(clock.now - start, 6))
    assert times == pytest.approx([0, 0.1, 0.2, 0.3], abs=1e-5)
    before = clock.now
    await elsewhere.wait("+27831234567")  # another sending number has its own limit
    assert clock.now == before


async def test_every_key_carries_the_accounts_hash_tag(redis: Redis) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    pacer = RedisPacer(redis, "telegram:42", 30, 1, prefix=prefix)
    await pacer.wait("123456789")
    await pacer.hold(0.001)
    keys = sorted([k.decode() async for k in redis.scan_iter(match=f"{prefix}*")])
    assert len(keys) == 2
    tag = pacer.schedule_key.removesuffix(":rate")
    assert tag.startswith(f"{prefix}{{pace:telegram:") and tag.endswith("}")
    assert all(k.startswith(f"{tag}:") for k in keys)
    assert not any("123456789" in k for k in keys)  # the resident's address is not in a key name
    assert await redis.pttl(keys[0]) > 0 and await redis.pttl(keys[1]) > 0  # nothing lingers


async def test_redis_clock_by_default_and_idle_accounts_expire(redis: Redis) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    pacer = RedisPacer(redis, "telegram:7", 20, prefix=prefix)
    started = time.perf_counter()
    for i in range(5):
        await pacer.wait(str(i))
    assert 0.19 <= time.perf_counter() - started < 0.5
    assert 0 < await redis.pttl(pacer.schedule_key) <= 61_000


async def test_without_redis_the_process_paces_itself() -> None:
    unreachable = Redis.from_url("redis://127.0.0.1:1/0")
    pacer = RedisPacer(unreachable, "telegram:1", 20)
    started = time.perf_counter()
    for i in range(3):
        await pacer.wait(str(i))
    await pacer.hold(0.05)
    assert 0.1 <= time.perf_counter() - started < 1.0
    await unreachable.aclose()


async def test_replies_go_ahead_of_bulk_sends(make_pacer: MakePacer) -> None:
    # Real time: 60 bulk sends at 20/s take 3 s; a reply that arrives in the middle waits at
    # most the bulk horizon (0.25 s) and its own slot, not for the bulk sends queued before it.
    pacer = make_pacer(20)
    sent: list[tuple[str, float]] = []

    async def send(address: str, lane: Lane) -> None:
        await pacer.wait(address, lane)
        sent.append((address, time.perf_counter()))

    bulk = [asyncio.create_task(send(f"b{i}", Lane.BULK)) for i in range(60)]
    await asyncio.sleep(0.5)
    asked = time.perf_counter()
    await send("reply", Lane.REPLY)
    waited = time.perf_counter() - asked
    await asyncio.gather(*bulk)
    assert waited < 0.25 + 0.05 + 0.1  # horizon, one slot, scheduling slack
    times = sorted(t for _, t in sent)
    # And bulk sends keep the provider busy at the full rate (no share is kept back for replies):
    # 61 sends in about 3 s, never less; more on a busy machine, where senders that wake too
    # late book again.
    assert 60 / 20 <= times[-1] - times[0] < 60 / 20 * 1.3


async def test_a_bulk_send_waiting_for_its_chat_does_not_hold_up_the_others(
    make_pacer: MakePacer,
) -> None:
    pacer = make_pacer(100, 1)
    await pacer.wait("a", Lane.BULK)
    started = time.perf_counter()
    again = asyncio.create_task(pacer.wait("a", Lane.BULK))  # one a second to the same chat
    await asyncio.sleep(0.01)
    for i in range(10):
        await pacer.wait(f"other{i}", Lane.BULK)
    assert time.perf_counter() - started < 0.5
    assert not again.done()
    await again
    assert time.perf_counter() - started >= 0.99


async def test_a_bulk_sender_woken_too_late_books_again_rather_than_bunch_up(
    make_pacer: MakePacer,
) -> None:
    clock = Clock()
    pacer = make_pacer(10, 1, clock=clock, sleep=clock.sleep)
    await pacer.wait("a")
    first = clock.now

    async def busy_process() -> None:
        clock.now += 0.05  # the sleep overran by 50 ms, past the 10 ms allowance

    clock.on_sleep = busy_process
    await pacer.wait("b", Lane.BULK)
    # Not at 0.15 s, right behind the slot it missed (which a send of the next slot could share
    # a window with), but at a slot booked again: the next one, 0.2 s after the first send. The
    # slot given up does not count against b's one a second.
    assert clock.now - first == pytest.approx(0.202, abs=0.01)


class CountingRedis(Redis):
    """The real client, counting the pacing scripts it runs (one round trip each)."""

    scripts = 0

    async def execute_command(self, *args: object, **options: object) -> object:
        if args and args[0] == "EVALSHA":
            self.scripts += 1
        return await super().execute_command(*args, **options)


async def test_a_process_books_its_bulk_senders_in_batches(redis_url: str) -> None:
    # At a provider's full rate one script call a send was the pacing's whole cost (and, one at
    # a time, its ceiling); the senders waiting together book together.
    redis = CountingRedis.from_url(redis_url)
    pacer = RedisPacer(redis, "telegram:1", 1000, 1, prefix=f"test-{uuid.uuid4().hex[:8]}:")
    released: list[float] = []

    async def send(address: str) -> None:
        await pacer.wait(address, Lane.BULK)
        released.append(time.perf_counter())

    await asyncio.wait_for(asyncio.gather(*(send(str(i)) for i in range(300))), timeout=30)
    await redis.aclose()
    assert len(released) == 300
    assert redis.scripts <= 300 / 5
    released.sort()
    # Never faster than the rate: 300 sends span at least 299 intervals.
    assert released[-1] - released[0] >= 299 / 1000


async def test_two_sends_to_one_chat_in_one_batch_are_a_second_apart(redis: Redis) -> None:
    pacer = RedisPacer(redis, "telegram:1", 100, 1, prefix=f"test-{uuid.uuid4().hex[:8]}:")
    released: dict[str, list[float]] = {"a": [], "b": []}

    async def send(address: str) -> None:
        await pacer.wait(address, Lane.BULK)
        released[address].append(time.perf_counter())

    await asyncio.wait_for(asyncio.gather(send("a"), send("b"), send("a")), timeout=30)
    first, second = released["a"]
    assert second - first >= 0.99
    assert released["b"][0] - first < 0.5  # b did not wait behind a's second message
