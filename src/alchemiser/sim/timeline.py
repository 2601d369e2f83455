"""Every future event of the simulator (acknowledgements, fills, replace and cancel
resolutions), in simulated time, in one of two modes:

* real time: each event is an asyncio timer, its simulated delay scaled to wall time by
  the clock's speed and the fill-wait scale (tests fill in milliseconds);
* virtual time: the clock stands still until `advance_to`, which moves it from event
  to event (and from market step to market step), firing each at its own instant, in
  (time, scheduling order): the same requests then give the same events and times.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from alchemiser.sim.clock import SimClock

Callback = Callable[..., None]


@dataclass(order=True, slots=True)
class Timer:
    due: float  # simulated epoch seconds
    seq: int
    fn: Callback = field(compare=False)
    args: tuple[Any, ...] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)
    handle: asyncio.TimerHandle | None = field(default=None, compare=False, repr=False)

    def cancel(self) -> None:
        self.cancelled = True
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None


class Timeline:
    def __init__(self, clock: SimClock, wait_scale: Callable[[], float]) -> None:
        self.clock = clock
        self.wait_scale = wait_scale  # real mode: multiplies every wait (config.fill_wait_scale)
        self.virtual = False
        self._heap: list[Timer] = []  # virtual mode
        self._armed: dict[int, Timer] = {}  # real mode, by seq
        self._seq = 0
        self._drain_pending = False

    def after(self, sim_seconds: float, fn: Callback, *args: Any) -> Timer:
        self._seq += 1
        timer = Timer(self.clock.epoch() + max(sim_seconds, 0.0), self._seq, fn, args)
        if self.virtual:
            heapq.heappush(self._heap, timer)
            if sim_seconds <= 0:
                self._drain_soon()
        else:
            self._arm(timer)
        return timer

    def _arm(self, timer: Timer) -> None:
        wait = max(timer.due - self.clock.epoch(), 0.0)
        real = self.clock.real_seconds(wait) * self.wait_scale()
        timer.handle = asyncio.get_running_loop().call_later(real, self._fire, timer)
        self._armed[timer.seq] = timer

    def _fire(self, timer: Timer) -> None:
        timer.handle = None
        self._armed.pop(timer.seq, None)
        if not timer.cancelled:
            timer.cancelled = True  # fired: a later cancel() is a no-op
            timer.fn(*timer.args)

    def _drain_soon(self) -> None:
        """Events due now fire on the next loop turn, after the request that made them."""
        if not self._drain_pending:
            self._drain_pending = True
            asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        self._drain_pending = False
        self.run_due()

    def run_due(self) -> None:
        """(Virtual mode) fire every event due at or before the clock's time, in order."""
        now = self.clock.epoch()
        while self._heap and self._heap[0].due <= now:
            timer = heapq.heappop(self._heap)
            if not timer.cancelled:
                self._fire(timer)

    def next_due(self) -> float:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].due if self._heap else math.inf

    def advance_to(
        self, target: float, tick: Callable[[], None], next_step: Callable[[float], float]
    ) -> None:
        """(Virtual mode) move the clock to `target`, stopping at every event and every
        market step on the way (`next_step(now)` is the next instant the market changes)."""
        while True:
            now = self.clock.epoch()
            stop = max(min(target, self.next_due(), next_step(now)), now)
            self.clock.jump_to(stop)
            self.run_due()
            tick()
            if stop >= target:
                return

    def set_virtual(self, virtual: bool) -> None:
        """Switch modes, keeping every pending event at its simulated time."""
        if virtual == self.virtual:
            return
        self.virtual = virtual
        if virtual:
            for timer in self._armed.values():
                if timer.handle is not None:
                    timer.handle.cancel()
                    timer.handle = None
                if not timer.cancelled:
                    heapq.heappush(self._heap, timer)
            self._armed = {}
            self._drain_soon()
        else:
            pending, self._heap = [t for t in self._heap if not t.cancelled], []
            for timer in pending:
                self._arm(timer)

    def clear(self) -> None:
        for timer in [*self._heap, *self._armed.values()]:
            timer.cancel()
        self._heap, self._armed = [], {}
