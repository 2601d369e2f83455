"""Run the simulator on its own thread and event loop, for synchronous callers.

alpaca-py's REST clients block, so they cannot run on the loop that serves them.
`SimThread` starts a `SimServer` on a private loop in a daemon thread and offers the
admin operations as plain blocking methods (they run on the simulator's loop).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from alchemiser.sim.config import SimConfig
from alchemiser.sim.core import Simulator
from alchemiser.sim.server import SimServer

T = TypeVar("T")
START_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 30.0


class SimThread:
    """`with SimThread(seed=1, now=...) as sim:` → a running simulator on a free port."""

    def __init__(self, config: SimConfig | None = None, **overrides: Any) -> None:
        self.server = SimServer(config, **overrides)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="alpaca-sim", daemon=True)
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> SimThread:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise TimeoutError("simulator did not start")
        if self._error is not None:
            raise RuntimeError("simulator failed to start") from self._error
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.server.start())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.server.stop())
        self._loop.close()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(START_TIMEOUT_S)

    def __enter__(self) -> SimThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- URLs ----------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def trading_url(self) -> str:
        return self.server.trading_url

    @property
    def data_url(self) -> str:
        return self.server.data_url

    @property
    def stream_url(self) -> str:
        return self.server.stream_url

    @property
    def data_stream_url(self) -> str:
        return self.server.data_stream_url

    @property
    def api_key(self) -> str:
        return self.server.api_key

    @property
    def secret_key(self) -> str:
        return self.server.secret_key

    def env(self) -> dict[str, str]:
        return self.server.env()

    # --- admin (blocking; each runs on the simulator's loop) -------------------------

    def call(self, fn: Callable[[Simulator], T]) -> T:
        """Run `fn(simulator)` on the simulator's loop and return its result."""

        async def run() -> T:
            return fn(self.server.sim)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(CALL_TIMEOUT_S)

    def call_async(self, fn: Callable[[Simulator], Awaitable[T]]) -> T:
        """Await `fn(simulator)` on the simulator's loop and return its result."""

        async def run() -> T:
            return await fn(self.server.sim)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(CALL_TIMEOUT_S)

    def state(self) -> dict[str, Any]:
        return self.call(lambda s: s.state())

    def set_clock(
        self,
        now: datetime | None = None,
        speed: float | None = None,
        advance: float | None = None,
        virtual: bool | None = None,
    ) -> dict[str, Any]:
        return self.call(lambda s: s.set_clock(now, speed, advance, virtual))

    def advance(self, seconds: float) -> dict[str, Any]:
        return self.set_clock(advance=seconds)

    def fund(self, amount: Decimal | int | str) -> dict[str, Any]:
        return self.call(lambda s: s.fund(Decimal(str(amount))))

    def set_price(
        self,
        symbol: str,
        price: Decimal | str | float | None = None,
        spread_bps: float | None = None,
    ) -> dict[str, Any]:
        value = None if price is None else Decimal(str(price))
        return self.call(lambda s: s.set_price(symbol, value, spread_bps))

    def reset(
        self, cash: Decimal | int | str | None = None, seed: int | None = None
    ) -> dict[str, Any]:
        value = None if cash is None else Decimal(str(cash))
        return self.call(lambda s: s.reset(value, seed))

    def fill(
        self,
        order_id: object = None,
        client_order_id: str | None = None,
        qty: Decimal | int | str | None = None,
        price: Decimal | int | str | None = None,
    ) -> dict[str, Any]:
        """Fill an order (or `qty` of it) now, at `price` (default: its limit or the far side)."""
        oid = None if order_id is None else str(order_id)
        q = None if qty is None else Decimal(str(qty))
        p = None if price is None else Decimal(str(price))
        return self.call(lambda s: s.fill(oid, client_order_id, q, p))

    def set_quote(
        self,
        symbol: str,
        *,
        bid: Decimal | str | None = None,
        ask: Decimal | str | None = None,
        bid_size: int = 1,
        ask_size: int = 1,
        stale_seconds: float = 0.0,
    ) -> dict[str, Any]:
        b = None if bid is None else Decimal(str(bid))
        a = None if ask is None else Decimal(str(ask))
        return self.call(
            lambda s: s.set_quote(
                symbol,
                bid=b,
                ask=a,
                bid_size=bid_size,
                ask_size=ask_size,
                stale_seconds=stale_seconds,
            )
        )

    def halt(self, symbol: str, halted: bool = True) -> dict[str, Any]:
        return self.call(lambda s: s.halt(symbol, halted))

    def set_asset(
        self, symbol: str, fractionable: bool | None = None, tradable: bool | None = None
    ) -> dict[str, Any]:
        return self.call(lambda s: s.set_asset(symbol, fractionable, tradable))

    def set_unknown(self, symbol: str, unknown: bool = True) -> dict[str, Any]:
        return self.call(lambda s: s.set_unknown(symbol, unknown))

    def corporate_action(
        self, symbol: str, day: date, split_ratio: float = 1.0, dividend: float = 0.0
    ) -> dict[str, Any]:
        return self.call(lambda s: s.corporate_action(symbol, day, split_ratio, dividend))

    def set_faults(
        self,
        status: int | None = None,
        count: int | None = None,
        latency_ms: float | None = None,
        reject_orders: int | None = None,
        reject_reason: str | None = None,
        **targeting: Any,
    ) -> dict[str, Any]:
        """`targeting`: action, method, path, after, hang_ms, rate_limit_per_minute."""
        return self.call(
            lambda s: s.set_faults(
                status, count, latency_ms, reject_orders, reject_reason, **targeting
            )
        )

    def clear_faults(self) -> dict[str, Any]:
        return self.call(lambda s: s.clear_faults())

    def drop_websockets(self) -> dict[str, Any]:
        return self.call_async(lambda s: s.drop_websockets())

    def stream_down(self, seconds: float) -> dict[str, Any]:
        return self.call_async(lambda s: s.stream_down(seconds))

    def stream_silent(self) -> dict[str, Any]:
        return self.call(lambda s: s.stream_silent())

    def stream_fault(
        self, action: str, count: int = 1, delay_ms: float | None = None
    ) -> dict[str, Any]:
        return self.call(lambda s: s.stream_fault(action, count, delay_ms))

    def configure(self, **knobs: Any) -> dict[str, Any]:
        """Any of `core.TUNABLE`, e.g. `configure(auto_fill=False, replace_latency_s=2)`."""
        return self.call(lambda s: s.configure(**knobs))
