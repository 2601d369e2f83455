"""Settings of one simulator instance."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

DEFAULT_HOST = "127.0.0.1"
DEFAULT_API_KEY = "SIMKEY"
DEFAULT_SECRET_KEY = "SIMSECRET"
DEFAULT_CASH = Decimal("100000")
DEFAULT_HISTORY_START = date(2000, 1, 3)


@dataclass(slots=True)
class SimConfig:
    """Everything a simulator is started with; the admin API can change the mutable knobs later."""

    host: str = DEFAULT_HOST
    port: int = 0  # 0 = pick a free port
    seed: int = 0
    now: datetime | None = None  # simulated time at start; None = wall time
    speed: float = 1.0
    cash: Decimal = DEFAULT_CASH
    api_key: str = DEFAULT_API_KEY
    secret_key: str = DEFAULT_SECRET_KEY
    history_start: date = DEFAULT_HISTORY_START
    # Multiplies every simulated fill wait; tests use ~0.001 to fill in milliseconds.
    fill_wait_scale: float = 1.0
    # Orders worth more than this fill in several parts.
    partial_fill_notional: Decimal = Decimal("50000")
    # Seconds (real) between quote pushes on the data stream.
    quote_interval: float = 0.5
    # Simulated seconds before a POST is acknowledged (pending_new -> new), and before a
    # replace or cancel resolves (the old order may fill meanwhile).
    ack_latency_s: float = 0.02
    replace_latency_s: float = 0.2
    cancel_latency_s: float = 0.2
    # False: orders fill only when the admin API fills them (scripted tests).
    auto_fill: bool = True
    # Chance that an execution is partial, whatever the order's size.
    partial_fill_probability: float = 0.0
    # A paper account is a margin account: buying power is this multiple of cash (1 = cash).
    margin_multiplier: Decimal = Decimal(2)
    # Refuse a 4th day trade in 5 sessions under $25k equity (403 40310100).
    pdt_protection: bool = False
    # Virtual time: the clock moves only when the admin advances it.
    virtual_time: bool = False
