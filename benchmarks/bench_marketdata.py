"""Benchmark of the bar store: the simulator → alpaca-py → COPY into Postgres, and back out.

Targets (issue 5):
  * 20 years of daily bars for 1,000 tickers loaded into Postgres in < 90 s;
  * a one-day top-up of those tickers in < 10 s;
  * the price frame for 300 tickers × 5,000 days built in < 1 s.

The simulator runs as `alchemiser sim` in its own process (as users run it). The
database is a scratch one on TEST_DATABASE_URL's server (else 127.0.0.1:5432),
dropped afterwards. Run: `.venv/bin/python benchmarks/bench_marketdata.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import string
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date

import asyncpg
from sqlalchemy.engine import make_url

from alchemiser import db
from alchemiser.logging import configure_logging
from alchemiser.marketdata.alpaca import DataClient
from alchemiser.marketdata.frame import build_price_frame
from alchemiser.marketdata.prices import fetch_today_prices
from alchemiser.marketdata.refresh import refresh_bars
from alchemiser.settings import AlpacaConfig, MarketDataConfig

RUN_AT = "2026-11-18T15:30:00-05:00"
NEXT_RUN_AT = "2026-11-19T15:30:00-05:00"
THROUGH, NEXT_THROUGH, NEXT_AS_OF = date(2026, 11, 17), date(2026, 11, 18), date(2026, 11, 19)
TICKERS = 1000
FRAME_TICKERS = 300
YEARS = 20
TARGET_LOAD_S, TARGET_TOPUP_S, TARGET_FRAME_S = 90.0, 10.0, 1.0
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def tickers(n: int) -> list[str]:
    """Synthetic four-letter tickers (each gets its own seeded history)."""
    letters = string.ascii_uppercase
    return ["".join(p) for p in itertools.islice(itertools.product(letters, repeat=4), n)]


@contextmanager
def simulator() -> Iterator[dict[str, str]]:
    command = [sys.executable, "-m", "alchemiser.cli", "sim", "--port", "0", "--seed", "1"]
    command += ["--now", RUN_AT, "--speed", "0"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        yield dict(proc.stdout.readline().strip().split("=", 1) for _ in range(6))
    finally:
        proc.terminate()
        proc.wait(10)


def set_clock(data_url: str, now: str) -> None:
    body = json.dumps({"now": now, "speed": 0}).encode()
    request = urllib.request.Request(f"{data_url}/_sim/clock", body, method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10):
        pass


def dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def scratch_database() -> Iterator[str]:
    server = os.environ.get("TEST_DATABASE_URL", DEFAULT_SERVER)
    name = f"alchemiser_bench_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(dsn(server))
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def report(label: str, seconds: float, target: float, detail: str) -> bool:
    ok = seconds < target
    verdict = "OK" if ok else "MISSED"
    print(f"{label:<40} {seconds:7.2f} s  (target < {target:g} s)  {verdict}  {detail}")
    return ok


async def bench(url: str, env: dict[str, str], n: int, concurrency: int) -> bool:
    alpaca = AlpacaConfig.model_validate(
        {
            "api_key": env["ALPACA_API_KEY"],
            "secret_key": env["ALPACA_SECRET_KEY"],
            "data_url": env["ALPACA_DATA_URL"],
        }
    )
    config = MarketDataConfig(history_years=YEARS, concurrency=concurrency)
    engine = db.create_engine(url, pool_size=concurrency + 2)
    names = tickers(n)
    ok = True
    try:
        await db.upgrade(engine)
        client = DataClient(alpaca, config)

        started = time.perf_counter()
        full = await refresh_bars(engine, client, names, through=THROUGH, config=config)
        rows = sum(r.bars_written for r in full.results.values())
        ok &= full.ok and report(
            f"full load: {n} tickers x {YEARS} years",
            time.perf_counter() - started,
            TARGET_LOAD_S,
            f"{rows:,} bars, {len(full.failed)} failed",
        )

        set_clock(env["ALPACA_DATA_URL"], NEXT_RUN_AT)
        started = time.perf_counter()
        top = await refresh_bars(engine, client, names, through=NEXT_THROUGH, config=config)
        rows = sum(r.bars_written for r in top.results.values())
        ok &= top.ok and report(
            f"top-up: {n} tickers x 1 day",
            time.perf_counter() - started,
            TARGET_TOPUP_S,
            f"{rows:,} bars, {len(top.failed)} failed",
        )

        chosen = names[:FRAME_TICKERS]
        prices = await fetch_today_prices(client, chosen)
        started = time.perf_counter()
        frame = await build_price_frame(
            engine, chosen, NEXT_AS_OF, mode="live", today_prices=prices
        )
        days = frame.height / max(len(chosen), 1)
        ok &= report(
            f"price frame: {len(chosen)} tickers",
            time.perf_counter() - started,
            TARGET_FRAME_S,
            f"{frame.height:,} rows ({days:,.0f} days per ticker)",
        )
    finally:
        await engine.dispose()
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickers", type=int, default=TICKERS)
    parser.add_argument("--concurrency", type=int, default=MarketDataConfig().concurrency)
    args = parser.parse_args()
    configure_logging("warning", stream=sys.stderr)
    with simulator() as env, scratch_database() as url:
        ok = asyncio.run(bench(url, env, args.tickers, args.concurrency))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
