"""The run's evaluation step: parse every configured strategy, evaluate them concurrently.

    async with strategy_workers(settings.strategies) as workers:
        parsed = await workers.parse()          # summaries (options, tickers), errors
        ...                                     # fetch the prices the tickers need
        outcomes = await workers.evaluate(data) # one Outcome per configured strategy

Parsing and evaluating are CPU-bound and hold the interpreter, so they run in worker
processes (`strategy_worker`, spoken to over pipes), one per core: the event loop
(trade stream, health endpoints) never waits on them, the cores share the work, and
the syntax trees and indicator caches go back to the system with the workers when
the step ends, so the daemon idles small between runs. Each worker keeps what it
parsed; the run writes the prices once and sends each worker the same buffer.

A strategy that does not parse, whose data failed its check, or whose evaluation
fails is recorded with its error (file:line:column where the language gives one) and
skipped; the others trade. A worker that dies fails its own strategies the same way.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from alchemiser.logging import get_logger
from alchemiser.marketdata.run import RunData
from alchemiser.run import strategy_worker
from alchemiser.run.strategy_worker import Outcome, Summary
from alchemiser.settings import StrategyConfig

__all__ = ["Outcome", "Parsed", "StrategyWorkers", "Summary", "parse_strategies"]

log = get_logger(__name__)

# More workers than this would hold as many copies of the prices for little gain.
MAX_WORKERS = 4
# An idle worker exits as soon as its stdin closes; a busy one (a cancelled run) is killed.
STOP_SECONDS = 2.0
WRITE_SLICE = 1 << 20


@dataclass(frozen=True)
class Parsed:
    strategies: dict[str, Summary]
    errors: dict[str, str]


class WorkerFailed(Exception):
    """A worker process ended without answering."""


class _Worker:
    """One worker process and its pipes; one request at a time."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            strategy_worker.__name__,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(process)

    async def call(self, job: str, *args: object) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        request = await asyncio.to_thread(strategy_worker.frame, (job, args))
        try:
            # In slices: the pipe takes each as it drains, so no second copy is buffered.
            with memoryview(request) as view:
                for start in range(0, len(view), WRITE_SLICE):
                    self.process.stdin.write(view[start : start + WRITE_SLICE])
                    await self.process.stdin.drain()
            size = int.from_bytes(await self.process.stdout.readexactly(8), "big")
            answer = await self.process.stdout.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            code = await self.process.wait()
            raise WorkerFailed(f"the worker process ended (exit code {code})") from exc
        return await asyncio.to_thread(pickle.loads, answer)

    async def stop(self) -> None:
        """Close its stdin (it exits at once when idle); kill it if it does not."""
        if self.process.returncode is not None:
            return
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), STOP_SECONDS)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


class StrategyWorkers:
    """The run's worker processes; a strategy is evaluated by the worker that parsed
    it, and the strategies are shared out by file size."""

    def __init__(self, configs: Sequence[StrategyConfig], workers: list[_Worker]) -> None:
        self.configs = list(configs)
        self.workers = workers
        self.shares = _share_out(self.configs, len(workers))
        self.parsed = Parsed({}, {})

    @classmethod
    async def start(cls, configs: Sequence[StrategyConfig]) -> StrategyWorkers:
        count = max(1, min(_cores(), MAX_WORKERS, len(configs)))
        started = await asyncio.gather(
            *(_Worker.start() for _ in range(count)), return_exceptions=True
        )
        workers = [w for w in started if isinstance(w, _Worker)]
        if len(workers) < count:  # none is left behind
            await asyncio.gather(*(w.stop() for w in workers))
            failed = next(e for e in started if isinstance(e, BaseException))
            raise WorkerFailed(f"an evaluation worker did not start: {failed}") from failed
        return cls(configs, workers)

    async def parse(self) -> Parsed:
        files = [[(c.id, str(c.file)) for c in share] for share in self.shares]
        results = await self._on_each("parse", [(f,) for f in files])
        strategies: dict[str, Summary] = {}
        errors: dict[str, str] = {}
        for share, result in zip(self.shares, results, strict=True):
            for config in share:
                got = result.get(config.id) if isinstance(result, dict) else None
                got = got if got is not None else _failed(result)
                if isinstance(got, Summary):
                    strategies[config.id] = got
                else:
                    errors[config.id] = str(got)
                    log.error("strategy skipped", strategy=config.id, error=errors[config.id])
        self.parsed = Parsed(strategies, errors)
        return self.parsed

    async def evaluate(self, data: RunData) -> dict[str, Outcome]:
        """Every configured strategy's outcome, in the configuration's order: evaluated
        where it parsed and its data passed its check, otherwise why not."""
        outcomes = {sid: Outcome(error=e) for sid, e in self.parsed.errors.items()}
        wanted: list[list[str]] = []
        for share in self.shares:
            wanted.append([])
            for config in share:
                if config.id not in self.parsed.strategies:
                    continue
                check = data.checks.get(config.id)
                if check is None or not check.ok:
                    problems = "; ".join(check.problems) if check else "no data check"
                    outcomes[config.id] = Outcome(error=f"data: {problems}")
                else:
                    wanted[-1].append(config.id)
        closes = await asyncio.to_thread(strategy_worker.closes_buffer, data.frame)
        results = await self._on_each(
            "evaluate", [(closes if sids else b"", data.evaluation_date, sids) for sids in wanted]
        )
        for sids, result in zip(wanted, results, strict=True):
            for sid in sids:
                got = result.get(sid) if isinstance(result, dict) else None
                outcomes[sid] = got if isinstance(got, Outcome) else Outcome(error=_failed(result))
                if outcomes[sid].error:
                    log.error("strategy failed", strategy=sid, error=outcomes[sid].error)
        return {c.id: outcomes[c.id] for c in self.configs}

    async def _on_each(self, job: str, args: list[tuple[object, ...]]) -> list[Any]:
        """`job(*args[k])` in worker k, all at once; a worker's failure is its result."""
        calls = [w.call(job, *a) for w, a in zip(self.workers, args, strict=True)]
        return list(await asyncio.gather(*calls, return_exceptions=True))

    async def stop(self) -> None:
        await asyncio.gather(*(w.stop() for w in self.workers))


@asynccontextmanager
async def strategy_workers(configs: Sequence[StrategyConfig]) -> AsyncIterator[StrategyWorkers]:
    workers = await StrategyWorkers.start(configs)
    try:
        yield workers
    finally:
        await asyncio.shield(workers.stop())


async def parse_strategies(configs: Sequence[StrategyConfig]) -> Parsed:
    """Parse only (the daemon's overnight bar refresh needs the tickers)."""
    async with strategy_workers(configs) as workers:
        return await workers.parse()


def _failed(result: object) -> str:
    why = result if isinstance(result, BaseException) else "it gave no answer for this strategy"
    return f"the evaluation worker failed: {why}"


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _share_out(configs: Sequence[StrategyConfig], count: int) -> list[list[StrategyConfig]]:
    """Largest file first to the least loaded worker: parsing and evaluating cost
    about in proportion to a strategy's size."""
    shares: list[list[StrategyConfig]] = [[] for _ in range(count)]
    loads = [0] * count
    for config in sorted(configs, key=_size, reverse=True):
        k = loads.index(min(loads))
        shares[k].append(config)
        loads[k] += _size(config)
    return shares


def _size(config: StrategyConfig) -> int:
    try:
        return config.file.stat().st_size
    except OSError:
        return 0  # parsing reports it
