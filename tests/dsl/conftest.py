"""Shared helpers for the strategy-language tests."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from alchemiser.dsl import Strategy, parse_strategy
from alchemiser.dsl._deep import run_deep
from alchemiser.dsl.errors import StrategySyntaxError

# Start the big-stack worker (which raises the recursion limit once) before any
# test runs, so hypothesis does not see the limit change during a test.
run_deep(int)

REPO = Path(__file__).resolve().parents[2]
# The corpus of real Composer exports lives beside the repository (CI checks it
# out there); it is never copied in. Without it, the tests that read it skip.
CORPUS = REPO.parent / "shared" / "corpus" / "clj"
NO_CORPUS = f"the shared corpus is absent ({CORPUS.resolve()}); CI runs these tests"
BROKEN = "drv_drn_mean_reversion__123cc347.clj"
START = date(2020, 1, 1)


def corpus_files() -> list[Path]:
    """The corpus's .clj files; skips the calling test when the corpus is absent."""
    if not CORPUS.is_dir():
        pytest.skip(NO_CORPUS)
    return sorted(CORPUS.glob("*.clj"))


def frame(series: dict[str, list[float]], start: date = START) -> pl.DataFrame:
    """A price frame: one row per ticker and consecutive calendar day, from `start`."""
    rows = [
        {"symbol": t, "date": start + timedelta(days=k), "close": float(c)}
        for t, closes in series.items()
        for k, c in enumerate(closes)
    ]
    return pl.DataFrame(rows, schema={"symbol": pl.String, "date": pl.Date, "close": pl.Float64})


def day(k: int) -> date:
    """The date of row k in `frame`."""
    return START + timedelta(days=k)


@pytest.fixture(scope="session")
def parsed_corpus() -> dict[str, Strategy | StrategySyntaxError]:
    """Every corpus file parsed once for the whole run (parsing 26 MB takes seconds)."""
    out: dict[str, Strategy | StrategySyntaxError] = {}
    for path in corpus_files():
        try:
            out[path.name] = parse_strategy(path.read_text(encoding="utf-8"), path.name)
        except StrategySyntaxError as exc:
            out[path.name] = exc
    return out
