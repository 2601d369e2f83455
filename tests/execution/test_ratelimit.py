"""The sliding window never lets more than N requests into any W seconds (a fake clock)."""

from __future__ import annotations

import asyncio

from alchemiser.execution.ratelimit import SlidingWindowLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_the_request_past_the_limit_waits_for_the_oldest_to_leave_the_window() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(3, 60.0, clock=clock, sleep=clock.sleep)
    for at in (0.0, 10.0, 20.0):
        clock.now = at
        await limiter.acquire()
    assert clock.slept == []
    clock.now = 30.0
    await limiter.acquire()  # the first left the window at 60
    assert clock.slept == [30.0]
    assert clock.now == 60.0


async def test_concurrent_callers_never_exceed_the_limit_in_any_window() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter(5, 1.0, clock=clock, sleep=clock.sleep)
    sent: list[float] = []

    async def call() -> None:
        await limiter.acquire()
        sent.append(clock.now)

    await asyncio.gather(*(call() for _ in range(23)))
    assert len(sent) == 23
    for start in sent:
        assert sum(start <= t < start + 1.0 for t in sent) <= 5
