"""Quotes for the walks' next steps, from market-data snapshots.

A hundred walks re-quote at the same moments, so `QuoteBoard` gathers the requests
that arrive within a few milliseconds into one snapshot request for all their
symbols: one call instead of a hundred, well inside Alpaca's data rate limit.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from alchemiser.execution.pricing import Quote
from alchemiser.marketdata.alpaca import DataClient
from alchemiser.marketdata.alpaca import _stamp as parse_stamp

GATHER_SECONDS = 0.005


class NoQuote(Exception):
    """The data API has no quote for the symbol at all."""


async def latest_quote(data: DataClient, symbol: str) -> Quote:
    snapshot = (await data.snapshots([symbol])).get(symbol) or {}
    return quote_of(symbol, snapshot)


def quote_of(symbol: str, snapshot: dict[str, Any]) -> Quote:
    quote = snapshot.get("latestQuote")
    if not quote:
        raise NoQuote(f"no quote for {symbol}")
    trade = snapshot.get("latestTrade") or {}
    last = Decimal(str(trade["p"])) if trade.get("p") else None
    return Quote(
        bid=Decimal(str(quote.get("bp") or 0)),
        ask=Decimal(str(quote.get("ap") or 0)),
        at=parse_stamp(str(quote["t"])),
        last=last,
        last_at=parse_stamp(str(trade["t"])) if last is not None and trade.get("t") else None,
    )


class QuoteBoard:
    """`quote(symbol)` for many concurrent callers, batched into snapshot requests."""

    def __init__(self, data: DataClient, gather_seconds: float = GATHER_SECONDS) -> None:
        self.data = data
        self.gather_seconds = gather_seconds
        self._waiting: dict[str, list[asyncio.Future[Quote]]] = {}
        self._flush: asyncio.Task[None] | None = None

    async def quote(self, symbol: str) -> Quote:
        future: asyncio.Future[Quote] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(symbol, []).append(future)
        if self._flush is None:
            self._flush = asyncio.create_task(self._fetch_soon())
        return await future

    async def _fetch_soon(self) -> None:
        await asyncio.sleep(self.gather_seconds)
        waiting, self._waiting, self._flush = self._waiting, {}, None
        try:
            snapshots = await self.data.snapshots(sorted(waiting))
        except Exception as exc:
            for futures in waiting.values():
                for future in futures:
                    future.set_exception(exc)
            return
        for symbol, futures in waiting.items():
            try:
                quote = quote_of(symbol, snapshots.get(symbol) or {})
            except NoQuote as exc:
                for future in futures:
                    future.set_exception(exc)
                continue
            for future in futures:
                future.set_result(quote)
