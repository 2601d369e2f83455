"""Market-data REST under /v2/stocks: daily bars, latest quotes and trades, snapshots."""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from aiohttp import web

from alchemiser.market_calendar import NEW_YORK
from alchemiser.sim.barjson import ADJUSTMENTS, BarFormatter
from alchemiser.sim.clock import SimClock
from alchemiser.sim.errors import bad_request
from alchemiser.sim.market import MarketModel, Quote
from alchemiser.sim.wire import iso_z, parse_time, quote_body, symbols_param, trade_body

DEFAULT_LIMIT = 1000
MAX_LIMIT = 10000
DAILY_TIMEFRAMES = frozenset({"1Day", "1D", "1day"})


class DataApi:
    def __init__(
        self, clock: SimClock, market: MarketModel, next_trade_id: Callable[[], int]
    ) -> None:
        self.clock = clock
        self.market = market
        self.next_trade_id = next_trade_id
        self.bars_json = BarFormatter(market)

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v2/stocks/bars", self.bars),
            web.get("/v2/stocks/quotes/latest", self.latest_quotes),
            web.get("/v2/stocks/trades/latest", self.latest_trades),
            web.get("/v2/stocks/snapshots", self.snapshots),
        ]

    def _known(self, symbols: list[str]) -> list[str]:
        return [s for s in symbols if s not in self.market.unknown]

    # --- bars --------------------------------------------------------------------------

    async def bars(self, request: web.Request) -> web.Response:
        q = request.query
        if q.get("timeframe", "1Day") not in DAILY_TIMEFRAMES:
            raise bad_request("the simulator serves daily bars only (timeframe=1Day)")
        adjustment = q.get("adjustment", "raw")
        if adjustment not in ADJUSTMENTS:
            raise bad_request(f"invalid adjustment: {adjustment}")
        symbols = sorted(set(self._known(symbols_param(q.get("symbols")))))
        limit = int(q.get("limit") or DEFAULT_LIMIT)
        if not 1 <= limit <= MAX_LIMIT:
            raise bad_request(f"invalid limit: exceeded the maximum allowed ({MAX_LIMIT})")
        lo, hi = self._index_range(q.get("start"), q.get("end"))
        body = self._bars_page(
            symbols,
            lo=lo,
            hi=hi,
            adjustment=adjustment,
            descending=q.get("sort", "asc") == "desc",
            limit=limit,
            page_token=q.get("page_token"),
        )
        return web.Response(body=body, content_type="application/json")

    def _bars_page(
        self,
        symbols: list[str],
        *,
        lo: int,
        hi: int,
        adjustment: str,
        descending: bool,
        limit: int,
        page_token: str | None,
    ) -> bytes:
        """Every symbol has a bar for every session in [lo, hi), so paging is arithmetic."""
        per_symbol = hi - lo
        pos, offset = _decode_token(page_token)
        pieces: list[bytes] = []
        remaining = limit
        while pos < len(symbols) and remaining > 0 and per_symbol > 0:
            take = min(remaining, per_symbol - offset)
            records = self.bars_json.records(symbols[pos], hi, adjustment)
            if descending:
                chunk = records.json(hi - offset - take, hi - offset, descending=True)
            else:
                chunk = records.json(lo + offset, lo + offset + take)
            pieces.append(b'"' + symbols[pos].encode() + b'":[' + chunk + b"]")
            remaining -= take
            offset += take
            if offset == per_symbol:
                pos, offset = pos + 1, 0
        more = per_symbol > 0 and pos < len(symbols)
        token = b'"' + _encode_token(pos, offset).encode() + b'"' if more else b"null"
        return b'{"bars":{' + b",".join(pieces) + b'},"next_page_token":' + token + b"}"

    def _index_range(self, start_text: str | None, end_text: str | None) -> tuple[int, int]:
        """Model indices [lo, hi) of completed sessions whose bar time lies in [start, end]."""
        now = self.clock.now()
        start = parse_time(start_text, "start") or datetime.combine(
            now.astimezone(NEW_YORK).date(), datetime.min.time(), NEW_YORK
        )
        end = parse_time(end_text, "end") or now
        start_et = start.astimezone(NEW_YORK)
        first_day = start_et.date()
        if start_et.time() != datetime.min.time():
            first_day += timedelta(days=1)  # that day's bar (stamped at midnight) is before start
        lo = max(self.market.index_of_day(first_day), 0)
        last_day = end.astimezone(NEW_YORK).date()
        hi = self.market.index_of_day(last_day + timedelta(days=1))
        completed = self.market.session_index(now.timestamp())  # sessions closed by now
        return lo, max(min(hi, completed), lo)

    # --- latest and snapshots ---------------------------------------------------------------

    async def latest_quotes(self, request: web.Request) -> web.Response:
        epoch = self.clock.epoch()
        symbols = self._known(symbols_param(request.query.get("symbols")))
        quotes = {s: quote_json(self.market.quote(s, epoch), epoch) for s in symbols}
        return web.json_response({"quotes": quotes})

    async def latest_trades(self, request: web.Request) -> web.Response:
        epoch = self.clock.epoch()
        symbols = self._known(symbols_param(request.query.get("symbols")))
        trades = {s: self._trade_json(self.market.quote(s, epoch).last, epoch) for s in symbols}
        return web.json_response({"trades": trades})

    async def snapshots(self, request: web.Request) -> web.Response:
        symbols = self._known(symbols_param(request.query.get("symbols")))
        return web.json_response({s: self._snapshot(s) for s in symbols})

    def _trade_json(self, price: Decimal, epoch: float) -> dict[str, Any]:
        return {"t": iso_z(epoch), **trade_body(price, self.next_trade_id())}

    def _snapshot(self, symbol: str) -> dict[str, Any]:
        market = self.market
        epoch = self.clock.epoch()
        quote = market.quote(symbol, epoch)
        today = market.session_index(epoch)
        prev = max(today - 1, 0)
        last = float(quote.last)
        in_session = market.session_bounds(today)[0] <= epoch
        day_open = market.raw_price(symbol, "open", today) if in_session else last
        daily = _bar(
            market.bar_time(today), day_open, max(day_open, last), min(day_open, last), last
        )
        prev_daily = _bar(
            market.bar_time(prev),
            *(market.raw_price(symbol, f, prev) for f in ("open", "high", "low", "close")),
        )
        minute = _bar(iso_z(epoch - epoch % 60) or "", last, last, last, last)
        return {
            "latestTrade": self._trade_json(quote.last, epoch),
            "latestQuote": quote_json(quote, epoch),
            "minuteBar": minute,
            "dailyBar": daily,
            "prevDailyBar": prev_daily,
        }


def quote_json(quote: Quote, epoch: float) -> dict[str, Any]:
    return {"t": iso_z(epoch if quote.stamp is None else quote.stamp), **quote_body(quote)}


def _bar(t: str, o: float, h: float, lo: float, c: float) -> dict[str, Any]:
    return {"t": t, "o": o, "h": h, "l": lo, "c": c, "v": 0, "n": 0, "vw": c}


def _encode_token(symbol_pos: int, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{symbol_pos}:{offset}".encode()).decode()


def _decode_token(token: str | None) -> tuple[int, int]:
    if not token:
        return 0, 0
    try:
        pos, offset = base64.urlsafe_b64decode(token.encode()).decode().split(":")
        return int(pos), int(offset)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("invalid page_token") from None
