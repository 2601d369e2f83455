"""Benchmark of the backtest against issue 14's targets, on one core.

    .venv/bin/python benchmarks/bench_backtest.py

1. parse the corpus, then backtest its 78 valid strategies over ten years
   (2,520 sessions after their warm-up): the columnar evaluation and each book's
   simulation (target < 60 s, peak memory < 2 GB);
2. `evaluate` date by date on a sample of sessions, and the per-date walk it
   replaced (now the tests' oracle), in the same run: the time per strategy and
   session of each.
The live evaluation of the corpus for one date is `bench_live.py`'s.
Prices are generated (random walks for every ticker the corpus names).
"""

from __future__ import annotations

import os

# One core: pin the process and keep polars to one thread (before importing it).
os.environ["POLARS_MAX_THREADS"] = "1"
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

import resource
import sys
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

from alchemiser.backtest.command import backtest
from alchemiser.backtest.engine import Costs
from alchemiser.dsl import PriceHistory, Strategy, StrategySyntaxError, evaluate, parse_strategy
from alchemiser.dsl.synthetic import random_walk_prices

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the tests' oracle
from tests.dsl.oracle import evaluate as walk

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus" / "clj"
END = date(2024, 6, 28)
SESSIONS = 2520
WARMUP = 1000  # windows reach 600 sessions; group NAVs add theirs on top
WALK_SESSIONS = 40  # `evaluate`'s sample, date by date (it is far slower)
TARGETS = {"backtest": 60.0, "memory_gb": 2.0}


class Clock:
    """Wall time and this process's CPU time (on a shared machine, CPU is the one-core cost)."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def seconds(self) -> tuple[float, float]:
        return time.process_time() - self.cpu, time.perf_counter() - self.wall

    def report(self, label: str, target: float) -> float:
        cpu, wall = self.seconds()
        verdict = "ok" if cpu < target else "MISSED"
        print(f"{label:<66} cpu {cpu:6.2f} s  wall {wall:6.2f} s  (< {target:g} s: {verdict})")
        return cpu


def peak_memory_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB on Linux


def main() -> None:
    files = sorted(CORPUS.glob("*.clj"))
    texts = {p: p.read_text(encoding="utf-8") for p in files}
    parse_strategy('(asset "SPY")', "warm-up")  # build the grammar once
    strategies: dict[Path, Strategy] = {}
    for path, text in texts.items():
        try:
            strategies[path] = parse_strategy(text, path.name)
        except StrategySyntaxError:
            continue
    tickers = {t for s in strategies.values() for t in s.tickers}
    frame = random_walk_prices(tickers, END, SESSIONS + WARMUP, seed=1)
    print(
        f"corpus: {len(strategies)} valid strategies; prices: {len(tickers)} tickers x "
        f"{SESSIONS + WARMUP} sessions; one core, POLARS_MAX_THREADS=1"
    )

    clock = Clock()
    prices = PriceHistory(frame)
    days = range(len(prices.calendar) - SESSIONS, len(prices.calendar))
    results = backtest(list(strategies), prices, days, capital=Decimal(10_000), costs=Costs())
    cpu = clock.report(
        f"backtest {len(strategies)} strategies x {SESSIONS} sessions (incl. loading prices)",
        TARGETS["backtest"],
    )
    failed = [r for r in results if r.error is not None]
    for r in failed:
        print(f"  failed: {r.name}: {r.error}")
    memory = peak_memory_gb()
    verdict = "ok" if memory < TARGETS["memory_gb"] else "MISSED"
    print(f"{'peak memory (maxrss) after the backtest':<66} {memory:.2f} GB (< 2 GB: {verdict})")
    per_columnar = cpu / (len(strategies) * SESSIONS)

    for label, by_date in (("evaluate by date", evaluate), ("the per-date walk", walk)):
        clock = Clock()
        walked = PriceHistory(frame)  # fresh: no cached indicators or columns
        sample = walked.calendar[-WALK_SESSIONS - 1 :]
        for strategy in strategies.values():
            by_date(strategy, walked, sample[0])
        first_cpu, _ = clock.seconds()
        for day in sample[1:]:
            for strategy in strategies.values():
                by_date(strategy, walked, day)
        walk_cpu, _ = clock.seconds()
        per_walk = walk_cpu / (len(strategies) * len(sample))
        per_warm = (walk_cpu - first_cpu) / (len(strategies) * WALK_SESSIONS)
        print(
            f"per strategy and session: columnar {per_columnar * 1e3:.3f} ms; {label} "
            f"{per_walk * 1e3:.3f} ms over {len(sample)} sessions incl. loading prices "
            f"({per_walk / per_columnar:.0f}x), {per_warm * 1e3:.3f} ms after its first "
            f"session ({per_warm / per_columnar:.0f}x)"
        )


if __name__ == "__main__":
    main()
