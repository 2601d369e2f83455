"""Today's quote of one symbol for a walk's next step, from the market-data snapshot."""

from __future__ import annotations

from decimal import Decimal

from alchemiser.execution.pricing import Quote
from alchemiser.marketdata.alpaca import DataClient
from alchemiser.marketdata.alpaca import _stamp as parse_stamp


class NoQuote(Exception):
    """The data API has no quote for the symbol at all."""


async def latest_quote(data: DataClient, symbol: str) -> Quote:
    snapshot = (await data.snapshots([symbol])).get(symbol) or {}
    quote = snapshot.get("latestQuote")
    if not quote:
        raise NoQuote(f"no quote for {symbol}")
    return Quote(
        bid=Decimal(str(quote.get("bp") or 0)),
        ask=Decimal(str(quote.get("ap") or 0)),
        at=parse_stamp(str(quote["t"])),
    )
