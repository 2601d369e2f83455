"""Benchmark of the strategy language against issue 3's targets, on one core.

    .venv/bin/python benchmarks/bench_dsl.py

1. parse the whole corpus (target < 8 s) and its 3.3 MB file (target < 1.5 s);
2. evaluate every corpus strategy for one date after parsing (target < 5 s);
3. evaluate the 17 largest strategies on each of 250 consecutive trading days
   (target < 30 s).
Prices are generated (random walks for every ticker the corpus names).
"""

from __future__ import annotations

import os

# One core: pin the process and keep polars to one thread (before importing it).
os.environ["POLARS_MAX_THREADS"] = "1"
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

import time
from datetime import date
from pathlib import Path

from alchemiser.dsl import (
    PriceHistory,
    Strategy,
    StrategySyntaxError,
    evaluate,
    parse_strategy,
)
from alchemiser.dsl.synthetic import random_walk_prices

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus" / "clj"
BIGGEST = "ftl_starburst_gen2__4b35af20.clj"
AS_OF = date(2024, 6, 28)
HISTORY_DAYS = 2000
BACKTEST_DAYS = 250
LARGEST = 17
TARGETS = {"corpus": 8.0, "biggest": 1.5, "one_date": 5.0, "backtest": 30.0}


class Clock:
    """Wall time and this process's CPU time. On a busy shared machine the CPU
    time is the one-core cost; the wall time includes waiting for a core."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def report(self, label: str, target: float) -> None:
        wall, cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu
        verdict = "ok" if cpu < target else "MISSED"
        print(f"{label:<66} cpu {cpu:6.2f} s  wall {wall:6.2f} s  (< {target:g} s: {verdict})")


def main() -> None:
    files = sorted(CORPUS.glob("*.clj"))
    texts = {p.name: p.read_text(encoding="utf-8") for p in files}
    total_mb = sum(len(t.encode()) for t in texts.values()) / 1e6
    print(f"corpus: {len(files)} files, {total_mb:.1f} MB; one core, POLARS_MAX_THREADS=1")

    parse_strategy('(asset "SPY")', "warm-up")  # build the grammar once
    strategies: dict[str, Strategy] = {}
    clock = Clock()
    for name, text in texts.items():
        try:
            strategies[name] = parse_strategy(text, name)
        except StrategySyntaxError as exc:
            print(f"  rejected as expected: {exc}")
    clock.report("parse the whole corpus", TARGETS["corpus"])

    clock = Clock()
    parse_strategy(texts[BIGGEST], BIGGEST)
    size = len(texts[BIGGEST].encode()) / 1e6
    clock.report(f"parse {BIGGEST} ({size:.1f} MB)", TARGETS["biggest"])

    tickers = {t for s in strategies.values() for t in s.tickers}
    frame = random_walk_prices(tickers, AS_OF, HISTORY_DAYS, seed=1)
    print(f"prices: {len(tickers)} tickers x {HISTORY_DAYS} days = {frame.height} rows")

    clock = Clock()
    history = PriceHistory(frame)
    for strategy in strategies.values():
        evaluate(strategy, history, AS_OF)
    clock.report(
        f"evaluate all {len(strategies)} strategies on {AS_OF} (incl. loading prices)",
        TARGETS["one_date"],
    )

    largest = sorted(strategies, key=lambda n: len(texts[n]), reverse=True)[:LARGEST]
    clock = Clock()
    history = PriceHistory(frame)  # fresh: no cached indicators or node results
    days = history.calendar[-BACKTEST_DAYS:]
    for name in largest:
        for day in days:
            evaluate(strategies[name], history, day)
    clock.report(
        f"evaluate the {LARGEST} largest on {BACKTEST_DAYS} trading days", TARGETS["backtest"]
    )


if __name__ == "__main__":
    main()
