"""Simulated time: wall time plus an offset, running at a settable speed."""

from __future__ import annotations

import time
from datetime import UTC, datetime


class SimClock:
    """sim = anchor_sim + (wall - anchor_wall) · speed, re-anchored whenever it is changed."""

    def __init__(self, now: datetime | None = None, speed: float = 1.0) -> None:
        _require_aware(now)
        self.anchor_wall = time.time()
        self.anchor_sim = now.timestamp() if now is not None else self.anchor_wall
        self.speed = speed

    def epoch(self) -> float:
        return self.anchor_sim + (time.time() - self.anchor_wall) * self.speed

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.epoch(), UTC)

    def set(self, now: datetime | None = None, speed: float | None = None) -> None:
        _require_aware(now)
        current = now.timestamp() if now is not None else self.epoch()
        self.anchor_wall = time.time()
        self.anchor_sim = current
        if speed is not None:
            self.speed = speed

    def jump_to(self, epoch: float) -> None:
        """Exactly `epoch` (no round trip through datetime), keeping the speed."""
        self.anchor_wall = time.time()
        self.anchor_sim = epoch

    def advance(self, seconds: float) -> None:
        self.set(datetime.fromtimestamp(self.epoch() + seconds, UTC))

    def real_seconds(self, sim_seconds: float) -> float:
        """How long `sim_seconds` of simulated time takes in real time (a frozen clock: 1:1)."""
        return sim_seconds / self.speed if self.speed > 0 else sim_seconds


def _require_aware(now: datetime | None) -> None:
    if now is not None and now.tzinfo is None:
        raise ValueError("simulated time must be timezone-aware (e.g. America/New_York)")
