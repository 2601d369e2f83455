"""Benchmark of `trade-now`: from the start of the daily run to its first order.

Target (issue 11): for the 78 valid strategies of the shared corpus
(../shared/corpus/clj), with warm bars, the first order is sent in under 15 s.

The path is the production one (`run.daily.daily_run` with `run.services`): the
gate (clock, account adoption, catch-up, reconciliation), the bar top-up and live
prices, every strategy evaluated concurrently off the loop, every book planned and
the plan saved, the crosses booked, the first sell or buy recorded and sent. Bars
are loaded once before the clock starts (warm, as on any day after the first).
The simulator runs as `alchemiser sim` in its own process.

Run: `.venv/bin/python benchmarks/bench_run.py` (TEST_DATABASE_URL selects a
PostgreSQL server; without it an embedded one is started).
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

from pydantic import SecretStr
from simproc import database_server, start_sim

from alchemiser import db
from alchemiser.dsl import StrategyError, parse_strategy
from alchemiser.execution.broker import OrderRequest, OrderSnapshot
from alchemiser.logging import configure_logging
from alchemiser.marketdata.run import prepare_run_data
from alchemiser.run.daily import daily_run
from alchemiser.run.services import open_services
from alchemiser.settings import (
    AlpacaConfig,
    ExecutionConfig,
    MarketDataConfig,
    Settings,
    StrategyConfig,
)

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus" / "clj"
NOW = "2026-11-18T15:30:00-05:00"
TARGET_S = 15.0
HISTORY_YEARS = 5


def valid_strategies() -> list[StrategyConfig]:
    configs = []
    for path in sorted(CORPUS.glob("*.clj")):
        try:
            parse_strategy(path.read_text(encoding="utf-8"), str(path))
        except StrategyError:
            continue
        sid = path.stem.replace("__", "-").lower()
        configs.append(
            StrategyConfig(id=sid, file=path, allocation=Decimal(0), capital=Decimal(10_000))
        )
    return configs


async def bench(env: dict[str, str], server_url: str) -> None:
    name = f"alchemiser_bench_{uuid.uuid4().hex[:8]}"
    url = await db.create_database(server_url, name)
    strategies = valid_strategies()
    settings = Settings(
        database_url=SecretStr(url),
        strategies=tuple(strategies),
        alpaca=AlpacaConfig(
            api_key=SecretStr(env["ALPACA_API_KEY"]),
            secret_key=SecretStr(env["ALPACA_SECRET_KEY"]),
            trading_url=env["ALPACA_TRADING_URL"],
            data_url=env["ALPACA_DATA_URL"],
            stream_url=env["ALPACA_STREAM_URL"],
        ),
        marketdata=MarketDataConfig(history_years=HISTORY_YEARS),
        execution=ExecutionConfig(step_interval_seconds=1.0),
    )
    engine = db.create_engine(url)
    try:
        await db.upgrade(engine)
        async with open_services(settings, engine) as services:
            warm = time.perf_counter()
            tickers = {
                s.id: sorted(parse_strategy(s.file.read_text(), str(s.file)).tickers)
                for s in strategies
            }
            as_of = services.now().date()
            await prepare_run_data(engine, services.data, tickers, as_of, settings)
            everything = {t for ts in tickers.values() for t in ts}
            print(
                f"{len(strategies)} valid strategies, {len(everything)} tickers; "
                f"bars warmed in {time.perf_counter() - warm:.1f} s"
            )
            submit = services.broker.submit
            first: list[tuple[float, str]] = []

            async def timed(order: OrderRequest) -> OrderSnapshot:
                if not first:
                    first.append((time.perf_counter(), order.client_order_id))
                return await submit(order)

            services.broker.submit = timed  # type: ignore[method-assign]
            started, cpu = time.perf_counter(), time.process_time()
            report = await daily_run(settings, services)
            if not first:
                print(f"the run sent no order ({report.status})")
                return
            at, client_order_id = first[0]
            elapsed = at - started
            verdict = "PASS" if elapsed < TARGET_S else "FAIL"
            print(
                f"trade-now to the first order ({client_order_id}): {elapsed:.2f} s wall "
                f"(target < {TARGET_S} s) {verdict}"
            )
            steps = ", ".join(f"{k} {v:.1f} s" for k, v in report.timings.items())
            print(f"the run's steps, from its start: {steps}")
            skipped = sum(1 for o in report.outcomes.values() if o.error)
            print(
                f"the whole run: {report.status}, {time.perf_counter() - started:.1f} s, "
                f"{time.process_time() - cpu:.1f} s CPU; {skipped} strategies skipped"
            )
    finally:
        await engine.dispose()
        await db.drop_database(server_url, name)


def main() -> None:
    if not CORPUS.is_dir():
        sys.exit(f"the corpus is not at {CORPUS}")
    configure_logging("warning", "console", stream=sys.stderr)
    server = database_server()
    proc, env = start_sim("--seed", "3", "--now", NOW, "--cash", "10000000")
    try:
        asyncio.run(bench(env, server))
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
