"""Alpaca market data through alpaca-py, made safe for an asyncio daemon.

alpaca-py's `StockHistoricalDataClient` is synchronous, sends requests without a
timeout and retries 429s with a blocking sleep (wire doc §6). So each call runs in
a worker thread, its session gets a timeout, the client's own retries are switched
off, and we retry 429s, 5xx and network errors here with capped exponential
backoff. One client per concurrent request: a `requests.Session` is not
thread-safe. Responses are taken raw (dicts), which is several times faster than
alpaca-py's pydantic models on decades of bars.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, Literal, TypeVar, cast

import requests
from alpaca.common.exceptions import APIError
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest, StockSnapshotRequest
from alpaca.data.timeframe import TimeFrame

from alchemiser.clientpool import ClientPool
from alchemiser.logging import get_logger
from alchemiser.market_calendar import NEW_YORK
from alchemiser.settings import AlpacaConfig, MarketDataConfig

log = get_logger(__name__)

T = TypeVar("T")
# One bar ready for the store: (ticker, date, open, high, low, close, volume).
BarRow = tuple[str, date, float, float, float, float, float]
# Too-many-requests and server-side failures are worth another try; other 4xx are not.
RETRY_STATUS = frozenset({408, 429})
SERVER_ERROR = 500
# Whole seconds: the request carries `end` as RFC 3339, and the bar of day D is stamped at D 00:00.
END_OF_DAY = time(23, 59, 59)


# Answers that no other request would get differently: the keys are wrong.
AUTH_STATUS = frozenset({401, 403})


class DataApiError(Exception):
    """The data API failed for good (after retries, or with a non-retryable answer).

    `fatal` when every other request would fail the same way (rejected keys, or
    no connection after the retries), so a refresh stops instead of repeating it.
    """

    def __init__(self, message: str, *, status: int | None = None, fatal: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.fatal = fatal

    @property
    def auth(self) -> bool:
        return self.status in AUTH_STATUS


@dataclass(frozen=True, slots=True)
class LivePrice:
    """Today's price of one ticker: the latest trade, or the quote mid without one."""

    ticker: str
    price: Decimal
    source: Literal["trade", "quote_mid"]
    at: datetime


def make_client(alpaca: AlpacaConfig, config: MarketDataConfig) -> StockHistoricalDataClient:
    """A raw-data client with a request timeout and without alpaca-py's blocking retries."""
    client = StockHistoricalDataClient(
        alpaca.api_key.get_secret_value() or None,
        alpaca.secret_key.get_secret_value() or None,
        raw_data=True,
        url_override=alpaca.data_url,
    )
    client._retry = 0  # we retry ourselves, without blocking the thread pool
    session = client._session
    session.request = functools.partial(session.request, timeout=config.request_timeout_seconds)  # type: ignore[method-assign]
    return client


class DataClient:
    """Async facade over a small pool of alpaca-py clients."""

    def __init__(
        self,
        alpaca: AlpacaConfig,
        config: MarketDataConfig,
        factory: Callable[[], StockHistoricalDataClient] | None = None,
    ) -> None:
        self.feed = DataFeed(alpaca.feed)
        self.config = config
        self._clients = ClientPool(
            factory or (lambda: make_client(alpaca, config)), config.concurrency
        )

    async def daily_bars(
        self, symbols: Sequence[str], start: date, end: date
    ) -> dict[str, list[dict[str, Any]]]:
        """Adjusted daily bars of `symbols` for sessions start..end (inclusive), all pages."""
        request = StockBarsRequest(
            symbol_or_symbols=list(symbols),
            timeframe=TimeFrame.Day,
            start=datetime.combine(start, time.min, NEW_YORK),
            end=datetime.combine(end, END_OF_DAY, NEW_YORK),
            adjustment=Adjustment.ALL,
            feed=self.feed,
        )
        result = await self._call(
            lambda c: c.get_stock_bars(request), f"bars for {_describe(symbols)}"
        )
        return cast(dict[str, list[dict[str, Any]]], result)

    async def snapshots(self, symbols: Sequence[str]) -> dict[str, dict[str, Any]]:
        request = StockSnapshotRequest(symbol_or_symbols=list(symbols), feed=self.feed)
        result = await self._call(
            lambda c: c.get_stock_snapshot(request), f"snapshots for {_describe(symbols)}"
        )
        return cast(dict[str, dict[str, Any]], result)

    async def _call(self, fn: Callable[[StockHistoricalDataClient], T], what: str) -> T:
        attempts = self.config.max_retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return await self._clients.call(fn)
            except (APIError, requests.RequestException, ValueError) as exc:
                # ValueError: alpaca-py's answer to a body it cannot read (not retried).
                reason = _reason(exc)
                if not _retryable(exc) or attempt == attempts:
                    raise _failure(exc, f"{what}: {reason}") from exc
            delay = self._backoff(attempt)
            log.warning("data api retry", what=what, reason=reason, attempt=attempt, delay=delay)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _backoff(self, attempt: int) -> float:
        base = self.config.retry_backoff_seconds * 2 ** (attempt - 1)
        return float(min(base, self.config.retry_backoff_max_seconds))


def _failure(exc: Exception, message: str) -> DataApiError:
    status = exc.status_code if isinstance(exc, APIError) else None
    unreachable = isinstance(exc, requests.ConnectionError)
    return DataApiError(message, status=status, fatal=unreachable or status in AUTH_STATUS)


def _retryable(exc: Exception) -> bool:
    if isinstance(exc, APIError):
        status = exc.status_code
        return status is None or status in RETRY_STATUS or status >= SERVER_ERROR
    return isinstance(exc, requests.ConnectionError | requests.Timeout)


def _reason(exc: Exception) -> str:
    if isinstance(exc, APIError):
        try:
            message = exc.message
        except (ValueError, KeyError, TypeError):
            message = str(exc)[:200]
        return f"HTTP {exc.status_code}: {message}"
    # urllib3 wraps the cause in the whole URL and pool state; the cause is what matters.
    cause = re.search(r"\[Errno -?\d+\][^'\")]*|Read timed out|Name or service not known", str(exc))
    return f"{type(exc).__name__}: {cause.group(0) if cause else str(exc)[:200]}"


def _describe(symbols: Sequence[str]) -> str:
    shown = ",".join(symbols[:5])
    return shown if len(symbols) <= 5 else f"{shown},... ({len(symbols)} tickers)"


# --- raw JSON → store rows and live prices ------------------------------------------------


@functools.lru_cache(maxsize=65536)
def bar_date(stamp: str) -> date:
    """A daily bar's session date: Alpaca stamps it at midnight New York, in UTC."""
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(NEW_YORK).date()


def bar_rows(ticker: str, bars: list[dict[str, Any]], through: date) -> list[BarRow]:
    """Store rows of one ticker's raw bars, dropping any session after `through`.

    A session still in progress has a partial bar on real Alpaca; only completed
    sessions up to `through` belong in the store.
    """
    rows: list[BarRow] = []
    for b in bars:
        day = bar_date(b["t"])
        if day <= through:
            rows.append(
                (
                    ticker,
                    day,
                    float(b["o"]),
                    float(b["h"]),
                    float(b["l"]),
                    float(b["c"]),
                    float(b["v"]),
                )
            )
    return rows


def live_price(ticker: str, snapshot: dict[str, Any]) -> LivePrice | None:
    """The latest trade's price, else the quote mid; None when there is neither."""
    trade = snapshot.get("latestTrade") or {}
    if trade.get("p"):
        return LivePrice(ticker, Decimal(str(trade["p"])), "trade", _stamp(trade["t"]))
    quote = snapshot.get("latestQuote") or {}
    bid, ask = quote.get("bp") or 0, quote.get("ap") or 0
    if bid > 0 and ask > 0:
        mid = (Decimal(str(bid)) + Decimal(str(ask))) / 2
        return LivePrice(ticker, mid, "quote_mid", _stamp(quote["t"]))
    return None


def _stamp(text: str) -> datetime:
    """RFC 3339 → aware datetime; Alpaca may send nanoseconds, Python keeps microseconds."""
    if text.endswith("Z"):
        head, _, tail = text[:-1].partition(".")
        fraction = f".{tail[:6]}" if tail else ""
        return datetime.fromisoformat(head + fraction).replace(tzinfo=UTC)
    return datetime.fromisoformat(text).astimezone(UTC)
