"""An evaluation worker process: `python -m alchemiser.run.strategy_worker`.

It parses its share of the strategies, keeps them, then evaluates them on the run's
prices. Requests and answers are pickled frames (an 8-byte length, then the pickle)
on its stdin and stdout; it exits when stdin closes, so it does not outlive the run
(if the run is killed mid-evaluation, the worker ends with that evaluation). This
module is the worker's whole world and imports only the language and polars, so a
worker starts in about a second.
"""

from __future__ import annotations

import io
import os
import pickle
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl

from alchemiser.dsl import PriceHistory, Strategy, StrategyError, evaluate, parse_strategy
from alchemiser.dsl.ast import Options


@dataclass(frozen=True)
class Summary:
    """What the run needs of a parsed strategy outside the worker."""

    options: Options
    tickers: tuple[str, ...]


@dataclass
class Outcome:
    """One strategy's evaluation: its weights and decision trace, or why it has none."""

    weights: dict[str, float] = field(default_factory=dict)
    trace: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


# The strategies this worker parsed, by strategy id: kept for `evaluate_kept`.
_kept: dict[str, Strategy] = {}


def parse_files(files: list[tuple[str, str]]) -> dict[str, Summary | str]:
    """Parse each (strategy id, path): its summary, or the error (file:line:column)."""
    out: dict[str, Summary | str] = {}
    for sid, path in files:
        try:
            strategy = parse_strategy(Path(path).read_text(encoding="utf-8"), path)
        except (StrategyError, OSError) as exc:
            out[sid] = str(exc)
            continue
        except UnicodeDecodeError as exc:
            out[sid] = f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"
            continue
        except Exception as exc:  # a fault of ours: this strategy fails closed, not the worker
            out[sid] = f"{path}: internal error: {type(exc).__name__}: {exc}"
            continue
        _kept[sid] = strategy
        out[sid] = Summary(strategy.options, strategy.tickers)
    return out


def closes_buffer(frame: pl.DataFrame) -> bytes:
    """The run's closes as one LZ4-compressed Arrow IPC buffer: written once for all
    the workers, a third of a pickle's size, and read back faster than one."""
    buffer = io.BytesIO()
    frame.select("symbol", "date", "close").write_ipc(buffer, compression="lz4")
    return buffer.getvalue()


def evaluate_kept(closes: bytes, as_of: date, sids: list[str]) -> dict[str, Outcome]:
    """Evaluate the kept strategies `sids` on one shared price history (indicator
    series computed once for all of them)."""
    out: dict[str, Outcome] = {}
    if not sids:
        return out
    prices = PriceHistory(pl.read_ipc(io.BytesIO(closes)))
    for sid in sids:
        try:
            result = evaluate(_kept[sid], prices, as_of)
        except StrategyError as exc:
            out[sid] = Outcome(error=str(exc))
        except Exception as exc:  # a fault of ours: this strategy fails closed, not the run
            out[sid] = Outcome(error=f"internal error: {type(exc).__name__}: {exc}")
        else:
            out[sid] = Outcome(dict(result.weights), list(result.trace))
    return out


JOBS: dict[str, Callable[..., Any]] = {"parse": parse_files, "evaluate": evaluate_kept}


def read_frame(stream: BinaryIO) -> Any:
    """The next pickled frame, or None at the end of the stream (a request cut short
    when the run was cancelled ends it too)."""
    head = stream.read(8)
    if len(head) < 8:
        return None
    size = int.from_bytes(head, "big")
    payload = stream.read(size)
    return pickle.loads(payload) if len(payload) == size else None


def frame(value: Any) -> bytearray:
    """The length, then the pickle, in one buffer (no copy of a large pickle)."""
    out = bytearray(8)
    pickle.dump(value, _Appender(out), protocol=pickle.HIGHEST_PROTOCOL)
    out[:8] = (len(out) - 8).to_bytes(8, "big")
    return out


class _Appender:
    def __init__(self, buffer: bytearray) -> None:
        self.write = buffer.extend


def main() -> None:
    # Ctrl-C reaches the whole process group: the parent handles it and closes our stdin.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Answers get a private copy of stdout; anything else printing to fd 1 (a library's
    # warning) goes to stderr instead of into the answers.
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    while (request := read_frame(sys.stdin.buffer)) is not None:
        name, args = request
        answers.write(frame(JOBS[name](*args)))
        answers.flush()


if __name__ == "__main__":
    # Run the module under its own name, so that what it pickles (Summary, Outcome)
    # unpickles in the parent as alchemiser.run.strategy_worker's classes.
    import importlib

    importlib.import_module("alchemiser.run.strategy_worker").main()
