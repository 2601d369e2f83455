"""What `alchemiser data refresh|show|export` do; cli.py only parses and delegates."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser import db
from alchemiser.errors import KEYS_HELP, AlpacaKeysMissing, AlpacaKeysRejected, AlpacaUnreachable
from alchemiser.logging import progress_bar
from alchemiser.marketdata.alpaca import DataClient
from alchemiser.marketdata.frame import historical_frame, write_parquet
from alchemiser.marketdata.refresh import RefreshReport, last_completed_session, refresh_bars
from alchemiser.marketdata.store import last_bars, load_coverage
from alchemiser.settings import Settings
from alchemiser.tickers import read_strategy, strategy_files

# Exit status when some tickers could not be refreshed.
EXIT_PARTIAL = 1
SHOW_DEFAULT_BARS = 10


def strategy_tickers(settings: Settings) -> dict[str, tuple[str, ...]]:
    """Tickers named by each configured strategy's file (StrategyFileError if one is bad)."""
    return {s.id: read_strategy(s.file).tickers for s in settings.strategies}


def resolve_tickers(
    settings: Settings, tickers: Sequence[str], strategies: bool, files: Sequence[Path] = ()
) -> list[str]:
    """TICKERS, plus the configured strategies' (`--strategies`) and the files' (`--for`)."""
    chosen = {t.upper() for t in tickers}
    if strategies:
        chosen |= {t for ts in strategy_tickers(settings).values() for t in ts}
    for path in strategy_files(files):
        chosen |= set(read_strategy(path).tickers)
    return sorted(chosen)


def require_keys(settings: Settings) -> None:
    """AlpacaKeysMissing before any request, rather than a 401 per request."""
    alpaca = settings.alpaca
    if not alpaca.api_key.get_secret_value() or not alpaca.secret_key.get_secret_value():
        raise AlpacaKeysMissing(f"no Alpaca keys: {KEYS_HELP}")


def raise_if_stopped(report: RefreshReport, settings: Settings) -> None:
    """The one failure that stopped a refresh, as the error a person can act on."""
    stopped = report.stopped
    if stopped is None:
        return
    if stopped.auth:
        raise AlpacaKeysRejected(f"Alpaca rejected the keys (HTTP {stopped.status}): {KEYS_HELP}")
    where = settings.alpaca.data_url or "https://data.alpaca.markets"
    raise AlpacaUnreachable(
        f"cannot reach Alpaca's data API at {where} after"
        f" {settings.marketdata.max_retries + 1} attempts: {stopped}"
    )


def run_refresh(
    settings: Settings,
    tickers: Sequence[str],
    through: date | None,
    progressbar: Callable[[int], AbstractContextManager[Any]],
) -> RefreshReport:
    """Refresh with a progress bar; `through` defaults to the last completed session."""
    end = through or last_completed_session()

    async def go(engine: AsyncEngine) -> RefreshReport:
        client = DataClient(settings.alpaca, settings.marketdata)
        with progressbar(len(tickers)) as bar:
            return await refresh_bars(
                engine,
                client,
                tickers,
                through=end,
                config=settings.marketdata,
                progress=bar.update,
            )

    require_keys(settings)
    report: RefreshReport = db.run(go, db.database_url(settings), migrate=True)
    raise_if_stopped(report, settings)
    return report


# Report order and wording of each outcome.
ACTION_WORDS = {
    "loaded": "loaded",
    "topped_up": "topped up",
    "healed": "reloaded after a split or dividend",
    "failed": "failed",
}


def describe_refresh(report: RefreshReport) -> list[str]:
    """`bars through D: 3 tickers loaded, 3 topped up`, then one line per failure."""
    counts = {action: 0 for action in ACTION_WORDS}
    for result in report.results.values():
        counts[result.action] += 1
    shown = [(n, ACTION_WORDS[a]) for a, n in counts.items() if n]
    parts = [
        f"{n} {'ticker ' if n == 1 else 'tickers '}{words}" if i == 0 else f"{n} {words}"
        for i, (n, words) in enumerate(shown)
    ]
    lines = [f"bars through {report.through}: {', '.join(parts) or 'nothing to do'}"]
    lines += [f"  {error}" for error in report.failed.values()]
    return lines


def show(settings: Settings, ticker: str, count: int) -> list[str]:
    """Coverage and the newest bars of one ticker, as lines of text."""
    ticker = ticker.upper()

    async def go(engine: AsyncEngine) -> tuple[Any, list[dict[str, Any]]]:
        coverage = (await load_coverage(engine, [ticker])).get(ticker)
        return coverage, await last_bars(engine, ticker, count)

    coverage, bars = db.run(go, db.database_url(settings), migrate=True)
    if coverage is None:
        return [f"{ticker}: no bars stored (run `alchemiser data refresh {ticker}`)"]
    lines = [
        f"{ticker}: {coverage.bar_count} bars from {coverage.first_date} to {coverage.last_date}"
        f" (asked from {coverage.requested_from})",
        f"  refreshed {coverage.refreshed_at:%Y-%m-%d %H:%M:%S %Z},"
        f" full history loaded {coverage.full_fetch_at:%Y-%m-%d %H:%M:%S %Z}",
        f"  {'date':<10}  {'open':>12}  {'high':>12}  {'low':>12}  {'close':>12}  {'volume':>14}",
    ]
    lines += [
        f"  {b['date']}  {b['open']:>12.4f}  {b['high']:>12.4f}  {b['low']:>12.4f}"
        f"  {b['close']:>12.4f}  {b['volume']:>14.0f}"
        for b in bars
    ]
    return lines


def export(settings: Settings, as_of: date, path: Path, tickers: Sequence[str]) -> int:
    """Write the price frame through `as_of` (all stored tickers by default); return rows."""

    async def go(engine: AsyncEngine) -> int:
        wanted = list(tickers) or list(await load_coverage(engine))
        frame = await historical_frame(engine, wanted, as_of)
        write_parquet(frame, path)
        return frame.height

    rows: int = db.run(go, db.database_url(settings), migrate=True)
    return rows


def progressbar(length: int) -> AbstractContextManager[Any]:
    return progress_bar(length, "refreshing bars")
