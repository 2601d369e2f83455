"""Benchmark of execution: 100 net orders walked at once, through the production path.

Target (issue 11): 100 net orders walked concurrently with 0.2 s steps finish in
under 3 s of wall time, with the event loop never blocked for more than 50 ms.

The path is the real one: a run's saved plan of 100 buys in a real PostgreSQL
ledger, phase 2 of `execution.phases.execute` (remaining work, buys capped to
cash, one walk per order), each order recorded before it is sent, the alpaca-py
REST client and trade-update stream against `alchemiser sim` in its own process.
Limits inside the spread rest (the simulator's fill wait is minutes), so every walk
takes all three limit steps and then the market order: the slowest path. The
simulator has no rate limit here and the adapter's 190-a-minute window is widened:
this measures our code, not Alpaca's limit (under it, walks only get slower).

Run: `.venv/bin/python benchmarks/bench_execution.py` (TEST_DATABASE_URL selects a
server; without it an embedded PostgreSQL is started).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from pydantic import SecretStr
from simproc import database_server, start_sim
from sqlalchemy import event

from alchemiser import db
from alchemiser.books import ledger
from alchemiser.books.planner import Intent
from alchemiser.execution.booking import Booker
from alchemiser.execution.broker import Broker
from alchemiser.execution.phases import Desk, execute
from alchemiser.execution.quotes import QuoteBoard, latest_quote
from alchemiser.execution.ratelimit import SlidingWindowLimiter
from alchemiser.execution.stream import TradeEvent, TradeStream
from alchemiser.execution.walk import WalkConfig, WalkRouter
from alchemiser.logging import configure_logging
from alchemiser.marketdata.alpaca import DataClient
from alchemiser.settings import AlpacaConfig, ExecutionConfig, MarketDataConfig, StrategyConfig

NOW = "2026-11-18T11:00:00-05:00"
ORDERS = 100
STEP_S = 0.2
TARGET_S = 3.0
LAG_TARGET_MS = 50.0
LAG_PROBE_S = 0.01
TICKERS = [f"B{i:03d}" for i in range(ORDERS)]


async def loop_lag(stop: asyncio.Event, worst: list[float]) -> None:
    """The longest the loop was late to wake a 10 ms sleeper: how long it was blocked."""
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        before = loop.time()
        await asyncio.sleep(LAG_PROBE_S)
        worst[0] = max(worst[0], loop.time() - before - LAG_PROBE_S)


def count_database_work(engine: object) -> dict[str, int]:
    """Transactions and statements sent from now on (what the walks cost the ledger)."""
    counts = {"transactions": 0, "statements": 0}
    sync = engine.sync_engine  # type: ignore[attr-defined]

    def begin(*_: object) -> None:
        counts["transactions"] += 1

    def statement(*_: object) -> None:
        counts["statements"] += 1

    event.listen(sync, "begin", begin)
    event.listen(sync, "before_cursor_execute", statement)
    return counts


def mid(bid: Decimal, ask: Decimal) -> Decimal:
    return ((bid + ask) / 2).quantize(Decimal("0.01"))


async def plan(engine: object, data: DataClient) -> int:
    quotes = await asyncio.gather(*(latest_quote(data, t) for t in TICKERS))
    async with engine.begin() as conn:  # type: ignore[attr-defined]
        await ledger.open_account(conn, Decimal(100_000_000), {})
        book = StrategyConfig(
            id="bench", file=Path("bench.clj"), allocation=Decimal(0), capital=Decimal(10**7)
        )
        await ledger.sync_strategies(conn, [book], Decimal(100_000_000))
        run = await ledger.start_run(conn, date(2026, 11, 18), "bench")
        intents = [
            Intent(
                "bench",
                t,
                "buy",
                Decimal(10),
                ((q.bid + q.ask) / 2).quantize(Decimal("0.01")),
                "bench",
            )
            for t, q in zip(TICKERS, quotes, strict=True)
        ]
        await ledger.record_plan(conn, run.id, intents, "bench")
    return run.id


async def bench(settings: dict[str, str], database_url: str) -> None:
    alpaca = AlpacaConfig(
        api_key=SecretStr(settings["ALPACA_API_KEY"]),
        secret_key=SecretStr(settings["ALPACA_SECRET_KEY"]),
        trading_url=settings["ALPACA_TRADING_URL"],
        data_url=settings["ALPACA_DATA_URL"],
        stream_url=settings["ALPACA_STREAM_URL"],
    )
    name = f"alchemiser_bench_{uuid.uuid4().hex[:8]}"
    engine = db.create_engine(await db.create_database(database_url, name))
    broker = Broker(
        alpaca,
        ExecutionConfig(order_timeout_seconds=5.0),
        limiter=SlidingWindowLimiter(100_000, 60.0),
    )
    data = DataClient(alpaca, MarketDataConfig(concurrency=8))
    router = WalkRouter()
    booker = Booker(engine)

    async def on_event(event: TradeEvent) -> None:
        await booker.event(event)
        await router.on_event(event)

    async def on_connected() -> None:
        await booker.catch_up(broker, datetime(2026, 11, 18, tzinfo=UTC))

    stream = TradeStream(alpaca, on_event, on_connected)
    try:
        await db.upgrade(engine)
        run_id = await plan(engine, data)
        stream.start()
        await stream.connected.wait()
        offset = datetime.fromisoformat(NOW) - datetime.now(UTC)
        desk = Desk(
            engine=engine,
            booker=booker,
            broker=broker,
            router=router,
            quote=QuoteBoard(data).quote,
            config=WalkConfig(
                (Decimal("0.75"), Decimal("0.85"), Decimal("0.95")),
                STEP_S,
                confirm_timeout_seconds=2.0,
                quote_max_age=timedelta(minutes=5),
            ),
            now=lambda: datetime.now(UTC) + offset,
            fractionable=frozenset(TICKERS),
            buy_headroom=Decimal("0.005"),
        )
        counts = count_database_work(engine)
        stop, worst = asyncio.Event(), [0.0]
        probe = asyncio.create_task(loop_lag(stop, worst))
        await asyncio.sleep(0)  # the probe is asleep before execute starts: it sees its start
        started, cpu, loop_cpu = time.perf_counter(), time.process_time(), time.thread_time()
        result = await execute(desk, run_id)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        loop_cpu = time.thread_time() - loop_cpu
        stop.set()
        await probe
        outcomes = [o.result.outcome for o in result.buys]
        filled = sum(o == "filled" for o in outcomes)
        print(f"walks: {len(outcomes)} buys, {filled} filled, 3 limit steps + market each")
        print(
            f"wall time: {elapsed:.2f} s (target < {TARGET_S} s); CPU of this process "
            f"{cpu:.2f} s, of its event loop's thread {loop_cpu:.2f} s"
        )
        print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"ledger: {counts['transactions']} transactions, {counts['statements']} statements")
        print(f"worst event-loop lag: {worst[0] * 1000:.1f} ms (target < {LAG_TARGET_MS} ms)")
        ok = filled == ORDERS and elapsed < TARGET_S and worst[0] * 1000 < LAG_TARGET_MS
        print("PASS" if ok else "FAIL")
    finally:
        await stream.stop()
        broker.close()
        await engine.dispose()
        await db.drop_database(database_url, name)


def main() -> None:
    configure_logging("warning", "console", stream=sys.stderr)
    server = database_server()
    proc, settings = start_sim("--seed", "1", "--now", NOW, "--cash", "100000000")
    try:
        asyncio.run(bench(settings, server))
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
