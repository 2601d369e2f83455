"""Benchmark of the local Alpaca simulator, through the real alpaca-py clients.

Targets (issues 4 and 10):
  * with 100 orders in flight, REST answers in < 20 ms at the median;
  * trade updates arrive within 50 ms of the fill;
  * 20 years of daily bars for 500 tickers are served in < 10 s;
  * in virtual time, a whole trading day of 100 walk-the-book executions (limit at 75 %,
    replaced at 85 % and 95 % with the remaining quantity, then a market order for the
    rest; 30 s steps) runs in < 2 s of wall time.

The simulator runs as `alchemiser sim` in its own process (as users run it), so the
client's work does not share its interpreter. Run: `.venv/bin/python benchmarks/bench_sim.py`.
"""

from __future__ import annotations

import argparse
import functools
import gc
import itertools
import json
import logging
import multiprocessing
import os
import signal
import statistics
import string
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import requests
import simproc
from alpaca.data.enums import Adjustment
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest, StockLatestQuoteRequest
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.models import TradeUpdate
from alpaca.trading.requests import (
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
)
from alpaca.trading.stream import TradingStream

NOW = "2026-11-18T11:00:00-05:00"
ORDERS_IN_FLIGHT = 100
REST_SAMPLES = 400
FILL_SAMPLES = 200
BAR_TICKERS = 500
BAR_YEARS = 20
# Resting orders fill over a few seconds, so the engine is busy while REST is measured.
FILL_WAIT_SCALE = 0.02
REST_TARGET_S = 0.020
UPDATE_TARGET_S = 0.050
BARS_TARGET_S = 10.0
VIRTUAL_DAY_TARGET_S = 2.0
WALKS = 100
WALK_BATCHES = 10
WALK_STEP_S = 30
WALK_FRACTIONS = (0.75, 0.85, 0.95)
SESSION_OPEN = "2026-11-18T09:30:00-05:00"
SESSION_S = 6.5 * 3600
CLIENT_PROCESSES = 2


def start_sim(fill_wait_scale: float) -> tuple[subprocess.Popen[str], dict[str, str]]:
    return simproc.start_sim(
        "--seed",
        "1",
        "--now",
        NOW,
        "--cash",
        "100000000",
        "--fill-wait-scale",
        str(fill_wait_scale),
    )


def admin(origin: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{origin}/_sim/{path}", data=data)
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def verdict(what: str, value_s: float, target_s: float) -> None:
    outcome = "PASS" if value_s < target_s else "MISS"
    print(f"[{outcome}] {what}: {value_s * 1000:.1f} ms (target < {target_s * 1000:.0f} ms)")


def ms(seconds: list[float]) -> str:
    qs = statistics.quantiles(seconds, n=100)
    return (
        f"median {statistics.median(seconds) * 1000:6.2f} ms  p90 {qs[89] * 1000:6.2f} ms  "
        f"max {max(seconds) * 1000:6.2f} ms  (n={len(seconds)})"
    )


class Collector:
    """A TradingStream on a thread; records the wall time each update arrives."""

    def __init__(self, settings: dict[str, str]) -> None:
        key, secret = settings["ALPACA_API_KEY"], settings["ALPACA_SECRET_KEY"]
        self.stream = TradingStream(key, secret, url_override=settings["ALPACA_STREAM_URL"])
        self.arrivals: list[tuple[float, TradeUpdate]] = []
        self.stream.subscribe_trade_updates(self._on_update)
        self.thread = threading.Thread(target=self.stream.run, daemon=True)
        self.thread.start()

    async def _on_update(self, update: TradeUpdate) -> None:
        self.arrivals.append((time.time(), update))

    def fills(self) -> list[tuple[float, TradeUpdate]]:
        return [(t, u) for t, u in self.arrivals if str(u.event) in ("fill", "partial_fill")]


def bench_trading(settings: dict[str, str]) -> None:
    origin = settings["ALPACA_TRADING_URL"]
    key, secret = settings["ALPACA_API_KEY"], settings["ALPACA_SECRET_KEY"]
    client = TradingClient(key, secret, url_override=origin)
    collector = Collector(settings)
    while admin(origin, "state")["trade_listeners"] < 1:
        time.sleep(0.05)
    # Orders are acknowledged (pending_new -> new) before the next request, so the
    # submit-replace-cancel cycle below never meets Alpaca's "not yet replaceable" 422.
    admin(origin, "config", {"ack_latency_s": 0})
    symbols = [f"B{a}{b}" for a, b in itertools.product(string.ascii_uppercase, repeat=2)][:50]
    for symbol in symbols:  # wide enough spreads that a limit can sit inside them
        admin(origin, "price", {"symbol": symbol, "spread_bps": 40})
    data = StockHistoricalDataClient(key, secret, url_override=origin)
    quotes = data.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols=symbols))

    def buy_limit(i: int, fraction_of_spread: float) -> LimitOrderRequest:
        q = quotes[symbols[i % len(symbols)]]
        price = q.bid_price + (q.ask_price - q.bid_price) * fraction_of_spread
        return LimitOrderRequest(
            symbol=q.symbol,
            qty=10 + i,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.DAY,
            limit_price=round(price, 2),
        )

    # 100 orders resting below the bid (in flight for the whole run), plus 100 inside the
    # spread that the engine fills, in parts, while REST latency is measured.
    in_flight = [client.submit_order(buy_limit(i, -0.5)) for i in range(ORDERS_IN_FLIGHT)]
    for i in range(ORDERS_IN_FLIGHT):
        client.submit_order(buy_limit(i, 0.3))
    open_now = len(client.get_orders(GetOrdersRequest(limit=500)))
    print(f"orders in flight: {open_now} open limit orders (about 100 more filling meanwhile)")

    timings: dict[str, list[float]] = {
        "get_account": [],
        "get_order": [],
        "get_orders": [],
        "submit_order": [],
        "replace_order": [],
        "cancel_order": [],
        "get_clock": [],
    }

    def timed(name: str, fn: Any, *args: Any) -> Any:
        t0 = time.perf_counter()
        result = fn(*args)
        timings[name].append(time.perf_counter() - t0)
        return result

    for i in range(REST_SAMPLES // 7):
        timed("get_account", client.get_account)
        timed("get_order", client.get_order_by_id, in_flight[i % len(in_flight)].id)
        timed("get_orders", client.get_orders, GetOrdersRequest(limit=100))
        symbol = symbols[i % len(symbols)]
        q = quotes[symbol]
        req = LimitOrderRequest(
            symbol=symbol,
            qty=1,
            side=OrderSide.BUY,
            time_in_force=TimeInForce.DAY,
            limit_price=round(q.bid_price * 0.5, 2),
        )
        o = timed("submit_order", client.submit_order, req)
        new = timed(
            "replace_order",
            client.replace_order_by_id,
            o.id,
            ReplaceOrderRequest(limit_price=round(q.bid_price * 0.49, 2)),
        )
        timed("cancel_order", client.cancel_order_by_id, new.id)
        timed("get_clock", client.get_clock)
    everything = [t for ts in timings.values() for t in ts]
    verdict("REST median with 100 orders in flight", statistics.median(everything), REST_TARGET_S)
    print(f"REST, all calls:        {ms(everything)}")
    for name, ts in timings.items():
        print(f"  {name:20s}  {ms(ts)}")

    # Fill latency: marketable orders (fill at once) plus the resting ones filling meanwhile.
    state = admin(origin, "state")
    for i in range(FILL_SAMPLES):
        req = MarketOrderRequest(
            symbol=symbols[i % len(symbols)], qty=1, side=OrderSide.BUY, time_in_force="day"
        )
        client.submit_order(req)
        time.sleep(0.005)
    time.sleep(1.0)
    anchor_wall, anchor_sim, speed = state["anchor_wall"], state["anchor_sim"], state["speed"]
    lags = []
    for arrived, update in collector.fills():
        filled_wall = anchor_wall + (update.timestamp.timestamp() - anchor_sim) / speed
        lags.append(arrived - filled_wall)
    print(f"trade update after fill: {ms(lags)}")
    verdict("trade update after fill (median)", statistics.median(lags), UPDATE_TARGET_S)
    collector.stream.stop()
    admin(origin, "drop_websockets", {})  # ends the client's 5 s receive wait at once
    collector.thread.join(10)


class Walker:
    """Walk-the-book through alpaca-py in virtual time, as the daemon walks: every order of
    a phase at once, one quote request and one order listing per step."""

    def __init__(self, settings: dict[str, str]) -> None:
        key, secret = settings["ALPACA_API_KEY"], settings["ALPACA_SECRET_KEY"]
        self.origin = settings["ALPACA_TRADING_URL"]
        self.trading = TradingClient(key, secret, url_override=self.origin)
        self.data = StockHistoricalDataClient(key, secret, url_override=self.origin)
        self.session = requests.Session()
        self.requests = 0

    def advance(self, seconds: float) -> float:
        """Move the clock; returns its new time (epoch seconds)."""
        self.requests += 1
        url = f"{self.origin}/_sim/clock"
        answer = self.session.post(url, json={"advance_seconds": seconds}, timeout=30)
        answer.raise_for_status()
        return float(datetime.fromisoformat(answer.json()["now"]).timestamp())

    def prices(self, symbols: list[str], fraction: float) -> dict[str, float]:
        self.requests += 1
        request = StockLatestQuoteRequest(symbol_or_symbols=symbols)
        quotes = self.data.get_stock_latest_quote(request)
        return {
            s: round(q.bid_price + (q.ask_price - q.bid_price) * fraction, 2)
            for s, q in quotes.items()
        }

    def call(self, fn: Any, *args: Any) -> Any:
        self.requests += 1
        return fn(*args)

    def walk(self, wanted: dict[str, int]) -> None:
        """Buy `wanted` (symbol -> shares): limits at 75 %, replaced with the remaining
        quantity at 85 % and 95 % of the spread, then market orders for the rest."""
        symbols = sorted(wanted)
        prices = self.prices(symbols, WALK_FRACTIONS[0])
        live = {
            s: self.call(self.trading.submit_order, buy_limit(s, wanted[s], prices[s]))
            for s in symbols
        }
        done = dict.fromkeys(symbols, 0.0)  # filled by orders already replaced
        for fraction in (*WALK_FRACTIONS[1:], None):
            self.advance(WALK_STEP_S)
            listing = GetOrdersRequest(status="all", symbols=list(live), limit=500)
            by_id = {str(o.id): o for o in self.call(self.trading.get_orders, listing)}
            state = {s: by_id[str(order.id)] for s, order in live.items()}
            for s, order in state.items():
                if order.status in ("filled", "rejected"):  # rejected: the old one filled
                    del live[s]
            if not live:
                return
            if fraction is None:
                self.finish(live, wanted, done, state)
                return
            prices = self.prices(list(live), fraction)
            for s, order in list(live.items()):
                filled = done[s] + float(state[s].filled_qty)
                remaining = int(wanted[s] - filled)
                if prices[s] == float(state[s].limit_price) and remaining == float(state[s].qty):
                    continue  # a one-tick spread: the next step's price is the same
                done[s] = filled
                request = ReplaceOrderRequest(qty=remaining, limit_price=prices[s])
                live[s] = self.call(self.trading.replace_order_by_id, order.id, request)

    def finish(
        self, live: dict[str, Any], wanted: dict[str, int], done: dict[str, float], state: Any
    ) -> None:
        for order in live.values():
            self.call(self.trading.cancel_order_by_id, order.id)
        self.advance(1)
        for s, order in live.items():
            filled = float(self.call(self.trading.get_order_by_id, order.id).filled_qty)
            remaining = int(wanted[s] - done[s] - filled)
            if remaining > 0:
                market = MarketOrderRequest(
                    symbol=s, qty=remaining, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
                )
                self.call(self.trading.submit_order, market)
        self.advance(1)


def buy_limit(symbol: str, qty: int, price: float) -> LimitOrderRequest:
    return LimitOrderRequest(
        symbol=symbol, qty=qty, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, limit_price=price
    )


def bench_virtual_day(settings: dict[str, str]) -> None:
    """100 walks in WALK_BATCHES phases spread over one session, in virtual time."""
    walker = Walker(settings)
    admin(walker.origin, "clock", {"now": SESSION_OPEN, "virtual": True})
    admin(walker.origin, "config", {"partial_fill_probability": 0.3})
    symbols = [f"W{a}{b}" for a, b in itertools.product(string.ascii_uppercase, repeat=2)][:WALKS]
    size = WALKS // WALK_BATCHES
    opens = datetime.fromisoformat(SESSION_OPEN).timestamp()
    t0 = time.perf_counter()
    for batch in range(WALK_BATCHES):
        phase = symbols[batch * size : (batch + 1) * size]
        walker.walk({s: 10 + i % 40 for i, s in enumerate(phase)})
        now = walker.advance(0)
        start = opens + (batch + 1) * SESSION_S / WALK_BATCHES
        if start > now:  # the next phase starts later in the session
            walker.advance(start - now)
    walker.advance(60)  # past the close: expiries and the day's fees
    elapsed = time.perf_counter() - t0
    state = admin(walker.origin, "state")
    held = sum(Decimal(q) for q in state["positions"].values())
    print(
        f"virtual day: {WALKS} walks in {WALK_BATCHES} phases, {walker.requests} requests, "
        f"clock at {state['now']}, {len(state['positions'])} positions, {held} shares "
        f"(wanted {sum(10 + i % 40 for i in range(size)) * WALK_BATCHES}), {elapsed:.2f} s"
    )
    verdict("a trading day of 100 walks in virtual time", elapsed, VIRTUAL_DAY_TARGET_S)


def fetch_all_pages(origin: str, headers: dict[str, str], params: dict[str, str]) -> int:
    """Every page of /v2/stocks/bars over plain HTTP (no JSON parsing): the serving cost."""
    session = requests.Session()
    total, token = 0, ""
    while True:
        page = {**params, "page_token": token} if token else params
        body = session.get(f"{origin}/v2/stocks/bars", params=page, headers=headers).content
        total += len(body)
        tail = body[-80:].decode().rsplit('"next_page_token":', 1)[1].rstrip("}")
        if tail == "null":
            return total
        token = tail.strip('"')


def bench_bars(settings: dict[str, str], parse_models: bool) -> None:
    key, secret = settings["ALPACA_API_KEY"], settings["ALPACA_SECRET_KEY"]
    origin = settings["ALPACA_DATA_URL"]
    tickers = [f"{a}{b}{c}" for a, b, c in itertools.product("KLMNOPQRST", repeat=3)]
    tickers = tickers[:BAR_TICKERS]
    end = datetime.fromisoformat(NOW)
    start = end - timedelta(days=365 * BAR_YEARS + 5)
    headers = {"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": secret}
    params = {
        "symbols": ",".join(tickers),
        "timeframe": "1Day",
        "start": start.isoformat(),
        "end": end.isoformat(),
        "adjustment": "all",
        "limit": "10000",
    }
    for label in ("cold: histories generated on demand", "warm: cached"):
        t0 = time.perf_counter()
        size = fetch_all_pages(origin, headers, params)
        elapsed = time.perf_counter() - t0
        print(f"bars served over HTTP, {label:36s} {size / 1e6:7.1f} MB  {elapsed:5.2f} s")
        verdict(f"bars served ({label.split(':')[0]})", elapsed, BARS_TARGET_S)
    request = StockBarsRequest(
        symbol_or_symbols=tickers,
        timeframe=TimeFrame.Day,
        start=start,
        end=end,
        adjustment=Adjustment.ALL,
    )
    raw_client = StockHistoricalDataClient(key, secret, url_override=origin, raw_data=True)
    t0 = time.perf_counter()
    raw = raw_client.get_stock_bars(request)
    elapsed = time.perf_counter() - t0
    count = sum(len(v) for v in raw.values())
    print(
        f"bars through alpaca-py (raw_data=True, warm): {len(raw)} tickers, {count} bars, "
        f"{elapsed:5.2f} s"
    )
    verdict("bars through alpaca-py, end to end", elapsed, BARS_TARGET_S)
    del raw
    gc.collect()
    bars_in_processes(settings, tickers, start, end, CLIENT_PROCESSES)
    if parse_models:
        client = StockHistoricalDataClient(key, secret, url_override=origin)
        t0 = time.perf_counter()
        barset = client.get_stock_bars(request)
        elapsed = time.perf_counter() - t0
        count = sum(len(v) for v in barset.data.values())
        print(f"bars through alpaca-py (Bar models, warm): {count} bars, {elapsed:5.2f} s")


def fetch_bars_raw(args: tuple[dict[str, str], list[str], datetime, datetime]) -> int:
    """One client process's share: its tickers through alpaca-py (raw_data=True)."""
    settings, tickers, start, end = args
    client = StockHistoricalDataClient(
        settings["ALPACA_API_KEY"],
        settings["ALPACA_SECRET_KEY"],
        url_override=settings["ALPACA_DATA_URL"],
        raw_data=True,
    )
    request = StockBarsRequest(
        symbol_or_symbols=tickers,
        timeframe=TimeFrame.Day,
        start=start,
        end=end,
        adjustment=Adjustment.ALL,
    )
    return sum(len(v) for v in client.get_stock_bars(request).values())


def bars_in_processes(
    settings: dict[str, str], tickers: list[str], start: datetime, end: datetime, n: int
) -> None:
    """The JSON decoding is client-bound, so split the tickers over n client processes."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(n) as pool:
        pool.map(fetch_bars_raw, [(settings, tickers[:1], start, start)] * n)  # warm imports
        shares = [(settings, tickers[i::n], start, end) for i in range(n)]
        t0 = time.perf_counter()
        count = sum(pool.map(fetch_bars_raw, shares))
        elapsed = time.perf_counter() - t0
    print(f"bars through alpaca-py in {n} client processes: {count} bars, {elapsed:5.2f} s")
    verdict(f"bars through alpaca-py, {n} client processes", elapsed, BARS_TARGET_S)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", action="store_true", help="also parse into Bar models")
    parser.add_argument("--only-virtual", action="store_true", help="only the virtual day")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    logging.getLogger("alpaca").setLevel(logging.ERROR)  # the planned disconnects at the end
    # Each target against its own fresh simulator, so one part's state cannot slow another.
    parser_parts = (
        bench_trading,
        bench_virtual_day,
        functools.partial(bench_bars, parse_models=args.models),
    )
    for part in parser_parts if not args.only_virtual else (bench_virtual_day,):
        proc, settings = start_sim(FILL_WAIT_SCALE)
        try:
            part(settings)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)


if __name__ == "__main__":
    main()
