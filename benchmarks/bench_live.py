"""Benchmark of the live evaluation of the corpus for one date, parsing included once.

Target (issue 14): under 5 s. Measured two ways, on generated prices (random walks
for every ticker the corpus names, over the daemon's default 20 years of bars):

1. as the daily run does it: the run's evaluation workers (`run.evaluation`, one
   process per core, at most 4) start, parse their share of the files, receive the
   prices and evaluate; wall time from their start to the last outcome;
2. on one core in this process (`POLARS_MAX_THREADS=1`): parse every file, load
   the prices, evaluate every strategy; CPU time.

Run: `.venv/bin/python benchmarks/bench_live.py`
"""

from __future__ import annotations

import os

os.environ["POLARS_MAX_THREADS"] = "1"  # for this process's own (one-core) part

import asyncio
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl

from alchemiser.dsl import PriceHistory, StrategySyntaxError, evaluate, parse_strategy
from alchemiser.dsl.synthetic import random_walk_prices
from alchemiser.marketdata.freshness import DataCheck
from alchemiser.marketdata.refresh import RefreshReport
from alchemiser.marketdata.run import RunData
from alchemiser.run.evaluation import strategy_workers
from alchemiser.settings import StrategyConfig

del os.environ["POLARS_MAX_THREADS"]  # the workers run as in the daemon

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus" / "clj"
AS_OF = date(2024, 6, 28)
SESSIONS = 5040  # `marketdata.history_years` = 20
TARGET = 5.0


def verdict(seconds: float) -> str:
    return f"(< {TARGET:g} s: {'ok' if seconds < TARGET else 'MISSED'})"


async def as_the_run_does(configs: list[StrategyConfig], frame: pl.DataFrame) -> None:
    start = time.perf_counter()
    async with strategy_workers(configs) as workers:
        parsed = await workers.parse()
        parse_wall = time.perf_counter() - start
        checks = {sid: DataCheck(sid) for sid in parsed.strategies}
        data = RunData(AS_OF, "live", AS_OF, RefreshReport(AS_OF), {}, checks, frame)
        outcomes = await workers.evaluate(data)
        wall = time.perf_counter() - start
        evaluated = sum(1 for o in outcomes.values() if o.error is None)
        print(
            f"as the run does it, {len(workers.workers)} worker processes: "
            f"start and parse {parse_wall:.2f} s, evaluated {evaluated} by "
            f"{wall:.2f} s wall {verdict(wall)}"
        )


def on_one_core(texts: dict[Path, str], frame: pl.DataFrame) -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    cpu = time.process_time()
    strategies = []
    for path, text in texts.items():
        try:
            strategies.append(parse_strategy(text, path.name))
        except StrategySyntaxError:
            continue
    parse_cpu = time.process_time() - cpu
    history = PriceHistory(frame)
    load_cpu = time.process_time() - cpu - parse_cpu
    for strategy in strategies:
        evaluate(strategy, history, AS_OF)
    total = time.process_time() - cpu
    print(
        f"one core: parse {parse_cpu:.2f} s, load prices {load_cpu:.2f} s, evaluate "
        f"{total - parse_cpu - load_cpu:.2f} s: {total:.2f} s CPU {verdict(total)}"
    )


def main() -> None:
    if not CORPUS.is_dir():
        sys.exit(f"the corpus is not at {CORPUS}")
    files = sorted(CORPUS.glob("*.clj"))
    texts = {p: p.read_text(encoding="utf-8") for p in files}
    parse_strategy('(asset "SPY")', "warm-up")  # build the grammar once
    tickers = set()
    for path, text in texts.items():
        try:
            tickers.update(parse_strategy(text, path.name).tickers)
        except StrategySyntaxError:
            continue
    frame = random_walk_prices(tickers, AS_OF, SESSIONS, seed=1)
    configs = [
        StrategyConfig(id=p.stem.replace("__", "-"), file=p, allocation=Decimal(0)) for p in files
    ]
    print(
        f"corpus: {len(files)} files, {sum(map(len, texts.values())) / 1e6:.1f} MB; prices: "
        f"{len(tickers)} tickers x {SESSIONS} sessions; {os.cpu_count()} cores"
    )
    asyncio.run(as_the_run_does(configs, frame))
    on_one_core(texts, frame)


if __name__ == "__main__":
    main()
