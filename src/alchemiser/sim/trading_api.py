"""Trading REST under /v2: account, positions, orders, clock, calendar, assets."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from aiohttp import web

from alchemiser.sim.broker import Broker
from alchemiser.sim.errors import bad_request, not_found
from alchemiser.sim.market import KNOWN_PROFILES
from alchemiser.sim.orders import Order
from alchemiser.sim.views import account_json, asset_json, clock_json, order_json, position_json
from alchemiser.sim.wire import asset_id, parse_date, parse_decimal, parse_time

DEFAULT_ORDER_LIMIT = 50
MAX_ORDER_LIMIT = 500
MULTI_STATUS = 207


class TradingApi:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.created = datetime.now().astimezone()

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/v2/account", self.account),
            web.get("/v2/account/activities", self.activities),
            web.get("/v2/account/activities/{activity_type}", self.activities),
            web.get("/v2/positions", self.positions),
            web.delete("/v2/positions", self.close_all_positions),
            web.get("/v2/positions/{symbol}", self.position),
            web.delete("/v2/positions/{symbol}", self.close_position),
            web.post("/v2/orders", self.submit),
            web.get("/v2/orders", self.list_orders),
            web.delete("/v2/orders", self.cancel_all),
            web.get("/v2/orders:by_client_order_id", self.order_by_client_id),
            web.get("/v2/orders/{order_id}", self.order),
            web.patch("/v2/orders/{order_id}", self.replace),
            web.delete("/v2/orders/{order_id}", self.cancel),
            web.get("/v2/clock", self.clock),
            web.get("/v2/calendar", self.calendar),
            web.get("/v2/assets", self.assets),
            web.get("/v2/assets/{symbol}", self.asset),
        ]

    async def account(self, request: web.Request) -> web.Response:
        return web.json_response(account_json(self.broker, self.created))

    async def activities(self, request: web.Request) -> web.Response:
        params = dict(request.query)
        if "activity_type" in request.match_info:
            params["activity_types"] = request.match_info["activity_type"]
        return web.json_response(self.broker.activities.query(params))

    async def positions(self, request: web.Request) -> web.Response:
        b = self.broker
        return web.json_response([position_json(b, p) for p in b.positions.values()])

    async def position(self, request: web.Request) -> web.Response:
        held = self.broker.positions.get(self._symbol(request))
        if held is None:
            raise not_found("position does not exist")
        return web.json_response(position_json(self.broker, held))

    async def close_position(self, request: web.Request) -> web.Response:
        q = request.query
        order = self.broker.close_position(
            self._symbol(request),
            parse_decimal(q.get("qty"), "qty"),
            parse_decimal(q.get("percentage"), "percentage"),
        )
        return web.json_response(order_json(order))

    async def close_all_positions(self, request: web.Request) -> web.Response:
        if request.query.get("cancel_orders", "").lower() == "true":
            self.broker.cancel_all()
        results = []
        for symbol in list(self.broker.positions):
            order = self.broker.close_position(symbol, None, None)
            results.append({"symbol": symbol, "status": 200, "body": order_json(order)})
        return web.json_response(results, status=MULTI_STATUS)

    def _symbol(self, request: web.Request) -> str:
        """A symbol or an asset id in the path."""
        key = request.match_info["symbol"]
        for symbol in self.broker.positions:
            if asset_id(symbol) == key:
                return symbol
        return key.upper()

    async def submit(self, request: web.Request) -> web.Response:
        order = self.broker.submit(await _json_body(request))
        return web.json_response(order_json(order))

    async def list_orders(self, request: web.Request) -> web.Response:
        q = request.query
        status = q.get("status", "open")
        limit = min(int(q.get("limit") or DEFAULT_ORDER_LIMIT), MAX_ORDER_LIMIT)
        after, until = parse_time(q.get("after"), "after"), parse_time(q.get("until"), "until")
        symbols = {s.strip().upper() for s in q.get("symbols", "").split(",") if s.strip()}
        side = q.get("side")

        def keep(o: Order) -> bool:
            if status == "open" and not o.is_open:
                return False
            if status == "closed" and o.is_open:
                return False
            if symbols and o.symbol not in symbols:
                return False
            if side and o.side != side:
                return False
            if after and o.submitted_at <= after.timestamp():
                return False
            return not (until and o.submitted_at >= until.timestamp())

        orders = self.broker.open_orders if status == "open" else self.broker.orders
        chosen = [o for o in orders.values() if keep(o)]
        chosen.sort(key=lambda o: o.submitted_at, reverse=q.get("direction", "desc") == "desc")
        return web.json_response([order_json(o) for o in chosen[:limit]])

    async def order(self, request: web.Request) -> web.Response:
        return web.json_response(order_json(self.broker.get(request.match_info["order_id"])))

    async def order_by_client_id(self, request: web.Request) -> web.Response:
        cid = request.query.get("client_order_id", "")
        return web.json_response(order_json(self.broker.get_by_client_id(cid)))

    async def replace(self, request: web.Request) -> web.Response:
        order_id = request.match_info["order_id"]
        new = self.broker.replace(order_id, await _json_body(request))
        return web.json_response(order_json(new))

    async def cancel(self, request: web.Request) -> web.Response:
        self.broker.cancel(request.match_info["order_id"])
        return web.Response(status=204)

    async def cancel_all(self, request: web.Request) -> web.Response:
        canceled = self.broker.cancel_all()
        body = [{"id": o.id, "status": 200, "body": order_json(o)} for o in canceled]
        return web.json_response(body, status=MULTI_STATUS)

    async def clock(self, request: web.Request) -> web.Response:
        return web.json_response(clock_json(self.broker))

    async def calendar(self, request: web.Request) -> web.Response:
        cal = self.broker.market.calendar
        start = parse_date(request.query.get("start"), "start") or cal.first_day
        end = parse_date(request.query.get("end"), "end") or cal.last_day
        return web.json_response(
            [calendar_json(s.day, s.open, s.close) for s in cal.sessions_between(start, end)]
        )

    async def assets(self, request: web.Request) -> web.Response:
        b = self.broker
        known = set(KNOWN_PROFILES) | set(b.market.price_overrides)
        symbols = known | set(b.asset_flags) | set(b.positions)
        return web.json_response([asset_json(b, s) for s in sorted(symbols - b.market.unknown)])

    async def asset(self, request: web.Request) -> web.Response:
        symbol = self.broker.check_symbol(request.match_info["symbol"])
        return web.json_response(asset_json(self.broker, symbol))


def calendar_json(day: date, open_: datetime, close: datetime) -> dict[str, Any]:
    return {
        "date": day.isoformat(),
        "open": open_.strftime("%H:%M"),
        "close": close.strftime("%H:%M"),
        "session_open": "0400",
        "session_close": "2000",
        "settlement_date": day.isoformat(),
    }


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.text() or "{}")
    except json.JSONDecodeError:
        raise bad_request("request body format is invalid") from None
    if not isinstance(body, dict):
        raise bad_request("request body format is invalid")
    return body
