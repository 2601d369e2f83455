"""Injected faults: HTTP errors (targeted, possibly after the handler ran), resets, hangs,
Alpaca's rate limit, rejected orders, and the trade stream's misbehaviours."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

HTTP_ACTIONS = ("status", "reset", "hang", "delay")
STREAM_ACTIONS = ("drop", "delay", "duplicate", "reorder")
DEFAULT_HANG_S = 3600.0
RATE_WINDOW_S = 60.0


@dataclass(slots=True)
class HttpFault:
    """The next `count` requests matching method and path prefix (None: any) meet `action`:
    an error `status`, a connection reset, a hang, or a delay (the request is handled
    `hang_s` late, as if slow on the wire). With `after`, the handler runs first, so its
    side effects happen (an order is created) and only the answer is lost."""

    action: str = "status"
    status: int = 500
    count: int = 1
    method: str | None = None
    path: str | None = None
    after: bool = False
    hang_s: float = DEFAULT_HANG_S

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path is None or path.startswith(self.path)


@dataclass(slots=True)
class TokenBucket:
    """Alpaca's per-account limit: `per_minute` requests, refilled continuously (wall time)."""

    per_minute: int
    tokens: float = 0.0
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = float(self.per_minute)

    def take(self) -> bool:
        now = time.monotonic()
        rate = self.per_minute / RATE_WINDOW_S
        self.tokens = min(float(self.per_minute), self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True

    def headers(self) -> dict[str, str]:
        reset = int(time.time() + (1 - self.tokens) * RATE_WINDOW_S / self.per_minute) + 1
        return {
            "X-RateLimit-Limit": str(self.per_minute),
            "X-RateLimit-Remaining": str(max(int(self.tokens), 0)),
            "X-RateLimit-Reset": str(reset),
        }


@dataclass(slots=True)
class Faults:
    """Pending fault injection, consumed by the HTTP middleware and the order engine."""

    http: list[HttpFault] = field(default_factory=list)
    latency_s: float = 0.0
    reject_next_orders: int = 0
    reject_reason: str = "rejected by simulator"
    rate_limit: TokenBucket | None = None

    def take(self, method: str, path: str) -> HttpFault | None:
        """The first fault that matches this request, counted down."""
        for fault in self.http:
            if fault.count > 0 and fault.matches(method, path):
                fault.count -= 1
                if fault.count == 0:
                    self.http.remove(fault)
                return fault
        return None

    def summary(self) -> dict[str, Any]:
        return {
            "error_count": sum(f.count for f in self.http),
            "http": [
                {"action": f.action, "status": f.status, "count": f.count, "method": f.method}
                | {"path": f.path, "after": f.after}
                for f in self.http
            ],
            "latency_s": self.latency_s,
            "reject_next_orders": self.reject_next_orders,
            "reject_reason": self.reject_reason,
            "rate_limit_per_minute": self.rate_limit.per_minute if self.rate_limit else 0,
        }


@dataclass(slots=True)
class StreamFault:
    """The next `count` trade updates are dropped, delayed by `delay_s` (so later ones
    overtake them), sent twice, or held and sent in reverse order."""

    action: str
    count: int
    delay_s: float = 0.0
    held: list[bytes] = field(default_factory=list)


@dataclass(slots=True)
class StreamFaults:
    pending: StreamFault | None = None
    down_until: float = 0.0  # wall time (monotonic) before which connections are refused
    swallowed: int = 0  # frames a silent connection or a drop never delivered

    def is_down(self) -> bool:
        return time.monotonic() < self.down_until

    def route(self, frame: bytes, later: Callable[[float, list[bytes]], None]) -> list[bytes]:
        """What to send now for `frame` (`later(delay, frames)` sends some afterwards)."""
        fault = self.pending
        if fault is None:
            return [frame]
        fault.count -= 1
        if fault.count <= 0:
            self.pending = None
        if fault.action == "drop":
            self.swallowed += 1
            return []
        if fault.action == "duplicate":
            return [frame, frame]
        if fault.action == "delay":
            later(fault.delay_s, [frame])
            return []
        fault.held.append(frame)  # reorder
        return fault.held[::-1] if fault.count <= 0 else []
