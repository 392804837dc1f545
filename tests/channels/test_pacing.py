from channels.pacing import Pacer


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_overall_rate_spaces_slots_evenly():
    clock = Clock()
    pacer = Pacer(per_second=30, jitter_allowance=0, clock=clock)
    delays = [pacer.reserve(str(i)) for i in range(31)]
    assert delays[0] == 0
    assert abs(delays[30] - 1.0) < 1e-9


def test_one_message_a_second_to_the_same_chat_without_slowing_others():
    clock = Clock()
    pacer = Pacer(per_second=30, per_address_per_second=1, jitter_allowance=0, clock=clock)
    assert pacer.reserve("a") == 0
    assert abs(pacer.reserve("a") - 1.0) < 1e-9
    assert abs(pacer.reserve("b") - 1 / 30) < 1e-9  # only the overall spacing applies to b


async def test_hold_delays_one_address_or_everyone():
    clock = Clock()
    pacer = Pacer(per_second=1000, per_address_per_second=1000, clock=clock)
    await pacer.hold(5, "a")
    assert pacer.reserve("a") >= 5
    assert pacer.reserve("b") < 1
    await pacer.hold(7)
    assert pacer.reserve("c") >= 7


def test_idle_addresses_are_forgotten():
    clock = Clock()
    pacer = Pacer(per_second=1_000_000, per_address_per_second=1000, clock=clock)
    for i in range(10_001):
        pacer.reserve(str(i))
    clock.now += 10
    pacer.reserve("x")
    pacer.reserve("y")
    assert len(pacer._next_by_address) < 10


async def test_wait_sleeps_for_the_reserved_slot():
    clock = Clock()
    slept = []

    async def sleep(seconds):
        slept.append(seconds)

    pacer = Pacer(
        per_second=2, per_address_per_second=1, jitter_allowance=0, clock=clock, sleep=sleep
    )
    await pacer.wait("a")
    await pacer.wait("a")
    assert slept == [1.0]
