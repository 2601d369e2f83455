"""The run's evaluation step in worker processes: real processes, real strategies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from alchemiser.dsl import PriceHistory, evaluate, parse_strategy
from alchemiser.dsl.synthetic import random_walk_prices
from alchemiser.marketdata.freshness import DataCheck
from alchemiser.marketdata.refresh import RefreshReport
from alchemiser.marketdata.run import RunData
from alchemiser.run.evaluation import strategy_workers
from alchemiser.run.strategy_worker import frame
from alchemiser.settings import StrategyConfig

EXAMPLES = Path(__file__).resolve().parents[2] / "strategies"
AS_OF = date(2026, 11, 18)
BROKEN = '(defsymphony "broken" {}\n  (weight-equal [(asset "SPY") (asset)]))\n'


def configs(tmp_path: Path) -> list[StrategyConfig]:
    broken = tmp_path / "broken.clj"
    broken.write_text(BROKEN)
    files = [*sorted(EXAMPLES.glob("*.clj")), broken]
    return [StrategyConfig(id=f.stem, file=f, allocation=Decimal(0)) for f in files]


def run_data(frame_tickers: set[str], checks: dict[str, DataCheck]) -> RunData:
    frame = random_walk_prices(frame_tickers, AS_OF, 400, seed=7)
    return RunData(AS_OF, "live", AS_OF, RefreshReport(AS_OF), {}, checks, frame)


async def test_workers_give_each_strategy_what_the_evaluator_gives_and_name_failures(
    tmp_path: Path,
) -> None:
    all_configs = configs(tmp_path)
    async with strategy_workers(all_configs) as workers:
        parsed = await workers.parse()
        assert set(parsed.errors) == {"broken"}
        assert "broken.clj:2:" in parsed.errors["broken"]
        tickers = {t for s in parsed.strategies.values() for t in s.tickers}
        checks = {sid: DataCheck(sid) for sid in parsed.strategies}
        checks["spy_trend"] = DataCheck("spy_trend", ("SPY: no bar on 2026-11-17",))
        data = run_data(tickers, checks)
        outcomes = await workers.evaluate(data)
    assert list(outcomes) == [c.id for c in all_configs]  # the configuration's order
    assert outcomes["broken"].error == parsed.errors["broken"]
    assert outcomes["spy_trend"].error == "data: SPY: no bar on 2026-11-17"
    prices = PriceHistory(data.frame)
    for config in all_configs:
        if config.id in ("broken", "spy_trend"):
            continue
        expected = evaluate(
            parse_strategy(config.file.read_text(), str(config.file)), prices, AS_OF
        )
        assert outcomes[config.id].error is None
        assert outcomes[config.id].weights == expected.weights
        assert outcomes[config.id].trace == expected.trace


async def test_a_dead_worker_fails_its_own_strategies_and_the_others_are_evaluated(
    tmp_path: Path,
) -> None:
    all_configs = configs(tmp_path)[:-1]
    async with strategy_workers(all_configs) as workers:
        if len(workers.workers) < 2:
            pytest.skip("one core: one worker, so no other worker to carry on")
        parsed = await workers.parse()
        tickers = {t for s in parsed.strategies.values() for t in s.tickers}
        data = run_data(tickers, {sid: DataCheck(sid) for sid in parsed.strategies})
        os.kill(workers.workers[0].process.pid, signal.SIGKILL)
        outcomes = await workers.evaluate(data)
    failed = {sid for sid, o in outcomes.items() if o.error}
    assert failed and failed != set(outcomes)
    for sid in failed:
        assert (outcomes[sid].error or "").startswith("the evaluation worker failed: ")


async def test_the_workers_are_gone_after_the_step(tmp_path: Path) -> None:
    async with strategy_workers(configs(tmp_path)) as workers:
        await workers.parse()
        assert all(w.process.returncode is None for w in workers.workers)
    assert all(w.process.returncode == 0 for w in workers.workers)  # exited, not killed


def test_a_request_cut_short_by_a_cancelled_run_ends_the_worker_quietly() -> None:
    request = frame(("parse", ([("spy", str(EXAMPLES / "spy_trend.clj"))],)))
    worker = subprocess.run(
        [sys.executable, "-m", "alchemiser.run.strategy_worker"],
        input=request[: len(request) // 2],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert (worker.returncode, worker.stdout, worker.stderr) == (0, b"", b"")


async def test_a_file_that_is_not_utf8_fails_only_itself(tmp_path: Path) -> None:
    latin = tmp_path / "latin.clj"
    latin.write_bytes(b'(defsymphony "caf\xe9" {} (asset "SPY"))\n')
    examples = configs(tmp_path)[:-1]
    odd = StrategyConfig(id="latin", file=latin, allocation=Decimal(0))
    async with strategy_workers([*examples, odd]) as workers:
        parsed = await workers.parse()
    assert set(parsed.errors) == {"latin"}
    why = "not UTF-8 text (invalid continuation byte at byte 17)"
    assert parsed.errors["latin"] == f"{latin}: {why}"
    assert set(parsed.strategies) == {c.id for c in examples}
