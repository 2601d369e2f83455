"""The aiohttp application: Alpaca's routes, the admin API, and the async `SimServer`."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

from aiohttp import web

from alchemiser.sim.config import SimConfig
from alchemiser.sim.core import Simulator
from alchemiser.sim.data_api import DataApi
from alchemiser.sim.errors import (
    CODE_INTERNAL,
    CODE_NOT_FOUND,
    CODE_RATE_LIMIT,
    CODE_UNAUTHORIZED,
    SimError,
    bad_request,
)
from alchemiser.sim.faults import HttpFault
from alchemiser.sim.trading_api import TradingApi
from alchemiser.sim.wire import parse_date, parse_decimal, parse_time

ENGINE_TICK_S = 0.05
TRADE_STREAM_PATH = "/stream"
DATA_STREAM_PATH = "/v2/iex"
ADMIN_PREFIX = "/_sim/"
KEY_HEADER = "APCA-API-KEY-ID"
SECRET_HEADER = "APCA-API-SECRET-KEY"
WEBSOCKET_PATHS = frozenset({TRADE_STREAM_PATH, DATA_STREAM_PATH})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = logging.getLogger(__name__)


def error_response(err: SimError) -> web.Response:
    return web.json_response(err.body(), status=err.status, headers=err.headers)


async def inflict(request: web.Request, fault: HttpFault) -> web.StreamResponse:
    """A reset closes the connection without an answer; a hang answers (504) much later."""
    if fault.action == "reset":
        if request.transport is not None:
            request.transport.abort()
        raise SimError(500, CODE_INTERNAL, "connection reset by simulator")  # never sent
    if fault.action == "hang":
        await asyncio.sleep(fault.hang_s)
        raise SimError(504, CODE_INTERNAL, "gateway timeout")
    if fault.status == 429:
        raise SimError(429, CODE_RATE_LIMIT, "too many requests.")
    raise SimError(fault.status, CODE_INTERNAL, "internal error")


async def _late(handler: Handler, request: web.Request, seconds: float) -> web.StreamResponse:
    await asyncio.sleep(seconds)
    return await handler(request)


def build_app(sim: Simulator) -> web.Application:
    @web.middleware
    async def alpaca_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except SimError as err:
            return error_response(err)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = CODE_NOT_FOUND if exc.status == 404 else exc.status * 100000
            return web.json_response({"code": code, "message": exc.reason}, status=exc.status)

    @web.middleware
    async def auth_and_faults(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        if path.startswith(ADMIN_PREFIX) or path in WEBSOCKET_PATHS:
            return await handler(request)
        keys = (request.headers.get(KEY_HEADER), request.headers.get(SECRET_HEADER))
        if keys != (sim.config.api_key, sim.config.secret_key):
            raise SimError(401, CODE_UNAUTHORIZED, "request is not authorized")
        faults = sim.broker.faults
        if faults.latency_s > 0:
            await asyncio.sleep(faults.latency_s)
        bucket = faults.rate_limit
        if bucket is not None and not bucket.take():
            raise SimError(429, CODE_RATE_LIMIT, "too many requests.", headers=bucket.headers())
        fault = faults.take(request.method, path)
        if fault is None:
            return await handler(request)
        if fault.action == "delay":  # handled late, even when the client has given up
            await request.read()  # kept by aiohttp for the handler
            return await asyncio.shield(_late(handler, request, fault.hang_s))
        if fault.after:
            await handler(request)  # its side effects happen; only the answer is lost
        return await inflict(request, fault)

    app = web.Application(middlewares=[alpaca_errors, auth_and_faults])
    app.add_routes(TradingApi(sim.broker).routes())
    app.add_routes(DataApi(sim.clock, sim.market, sim.next_trade_id).routes())
    app.add_routes(
        [
            web.get(TRADE_STREAM_PATH, sim.hub.trade_stream),
            web.get(DATA_STREAM_PATH, sim.hub.data_stream),
        ]
    )
    app.add_routes(AdminApi(sim).routes())
    return app


class AdminApi:
    """`/_sim/...`: JSON in, JSON out; not part of Alpaca, so no auth headers are needed."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim

    def routes(self) -> list[web.RouteDef]:
        p = ADMIN_PREFIX
        return [
            web.get(p + "state", self._wrap(lambda b: self.sim.state())),
            web.post(p + "clock", self._wrap(self._clock)),
            web.post(p + "fund", self._wrap(self._fund)),
            web.post(p + "price", self._wrap(self._price)),
            web.post(p + "reset", self._wrap(self._reset)),
            web.post(p + "asset", self._wrap(self._asset)),
            web.post(p + "unknown", self._wrap(self._unknown)),
            web.post(p + "corporate_action", self._wrap(self._action)),
            web.post(p + "faults", self._wrap(self._faults)),
            web.delete(p + "faults", self._wrap(lambda b: self.sim.clear_faults())),
            web.post(p + "drop_websockets", self._drop),
            web.post(p + "stream_down", self._stream_down),
            web.post(p + "stream_silent", self._wrap(lambda b: self.sim.stream_silent())),
            web.post(p + "stream_fault", self._wrap(self._stream_fault)),
            web.post(p + "config", self._wrap(lambda b: self.sim.configure(**b))),
            web.post(p + "fill", self._wrap(self._fill)),
            web.post(p + "halt", self._wrap(self._halt)),
            web.post(p + "quote", self._wrap(self._quote)),
        ]

    def _wrap(self, op: Callable[[dict[str, Any]], dict[str, Any]]) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            body: dict[str, Any] = {}
            if request.can_read_body:
                try:
                    body = json.loads(await request.text())
                except json.JSONDecodeError:
                    raise bad_request("admin body must be JSON") from None
            return web.json_response(op(body), dumps=_dumps)

        return handler

    async def _drop(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(await self.sim.drop_websockets())

    async def _stream_down(self, request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.text() or "{}")
        return web.json_response(await self.sim.stream_down(float(body["seconds"])))

    def _stream_fault(self, b: dict[str, Any]) -> dict[str, Any]:
        delay = b.get("delay_ms")
        return self.sim.stream_fault(
            str(b["action"]), int(b.get("count", 1)), float(delay) if delay is not None else None
        )

    def _clock(self, b: dict[str, Any]) -> dict[str, Any]:
        speed = b.get("speed")
        virtual = b.get("virtual")
        return self.sim.set_clock(
            now=parse_time(b.get("now"), "now"),
            speed=float(speed) if speed is not None else None,
            advance=float(b.get("advance_seconds") or 0),
            virtual=bool(virtual) if virtual is not None else None,
        )

    def _fund(self, b: dict[str, Any]) -> dict[str, Any]:
        amount = parse_decimal(b.get("amount"), "amount")
        if amount is None:
            raise bad_request("amount is required")
        return self.sim.fund(amount)

    def _price(self, b: dict[str, Any]) -> dict[str, Any]:
        spread = b.get("spread_bps")
        return self.sim.set_price(
            str(b["symbol"]),
            parse_decimal(b.get("price"), "price"),
            float(spread) if spread is not None else None,
        )

    def _reset(self, b: dict[str, Any]) -> dict[str, Any]:
        seed = b.get("seed")
        return self.sim.reset(
            parse_decimal(b.get("cash"), "cash"), int(seed) if seed is not None else None
        )

    def _asset(self, b: dict[str, Any]) -> dict[str, Any]:
        return self.sim.set_asset(str(b["symbol"]), b.get("fractionable"), b.get("tradable"))

    def _unknown(self, b: dict[str, Any]) -> dict[str, Any]:
        return self.sim.set_unknown(str(b["symbol"]), bool(b.get("unknown", True)))

    def _action(self, b: dict[str, Any]) -> dict[str, Any]:
        day = parse_date(b.get("date"), "date")
        if day is None:
            raise bad_request("date is required")
        return self.sim.corporate_action(
            str(b["symbol"]),
            day,
            float(b.get("split_ratio", 1.0)),
            float(b.get("dividend", 0.0)),
        )

    def _faults(self, b: dict[str, Any]) -> dict[str, Any]:
        return self.sim.set_faults(
            status=b.get("status"),
            count=b.get("count"),
            latency_ms=b.get("latency_ms"),
            reject_orders=b.get("reject_orders"),
            reject_reason=b.get("reject_reason"),
            action=str(b.get("action", "status")),
            method=b.get("method"),
            path=b.get("path"),
            after=bool(b.get("after", False)),
            hang_ms=b.get("hang_ms"),
            rate_limit_per_minute=b.get("rate_limit_per_minute"),
        )

    def _fill(self, b: dict[str, Any]) -> dict[str, Any]:
        return self.sim.fill(
            order_id=b.get("order_id"),
            client_order_id=b.get("client_order_id"),
            qty=parse_decimal(b.get("qty"), "qty"),
            price=parse_decimal(b.get("price"), "price"),
        )

    def _quote(self, b: dict[str, Any]) -> dict[str, Any]:
        return self.sim.set_quote(
            str(b["symbol"]),
            bid=parse_decimal(b.get("bid"), "bid"),
            ask=parse_decimal(b.get("ask"), "ask"),
            bid_size=int(b.get("bid_size", 1)),
            ask_size=int(b.get("ask_size", 1)),
            stale_seconds=float(b.get("stale_seconds", 0)),
        )

    def _halt(self, b: dict[str, Any]) -> dict[str, Any]:
        return self.sim.halt(str(b["symbol"]), bool(b.get("halted", True)))


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=str)


class SimServer:
    """The simulator on the current event loop: `await start()`, use the URLs, `await stop()`."""

    def __init__(self, config: SimConfig | None = None, **overrides: Any) -> None:
        self.config = replace(config or SimConfig(), **overrides)
        if not isinstance(self.config.cash, Decimal):
            self.config.cash = Decimal(str(self.config.cash))
        self.sim = Simulator(self.config)
        self.port = self.config.port
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._runner = web.AppRunner(build_app(self.sim), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self._tasks = [
            asyncio.create_task(self._engine_loop()),
            asyncio.create_task(self._quote_loop()),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.sim.hub.drop_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SimServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _engine_loop(self) -> None:
        while True:
            try:
                if not self.sim.timeline.virtual:  # virtual time moves only when advanced
                    self.sim.broker.on_tick()
            except Exception:  # a bug in one tick must not stop the clock
                log.exception("simulator tick failed")
            await asyncio.sleep(ENGINE_TICK_S)

    async def _quote_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.quote_interval)
            if not self.sim.timeline.virtual:  # virtual time: pushed on each advance
                await self.sim.hub.push_quotes()

    # --- where to point the clients --------------------------------------------------

    @property
    def origin(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    @property
    def trading_url(self) -> str:
        return self.origin

    @property
    def data_url(self) -> str:
        return self.origin

    @property
    def stream_url(self) -> str:
        return f"ws://{self.config.host}:{self.port}{TRADE_STREAM_PATH}"

    @property
    def data_stream_url(self) -> str:
        return f"ws://{self.config.host}:{self.port}{DATA_STREAM_PATH}"

    @property
    def api_key(self) -> str:
        return self.config.api_key

    @property
    def secret_key(self) -> str:
        return self.config.secret_key

    def env(self) -> dict[str, str]:
        """The ALPACA_* settings that point the daemon at this simulator."""
        return {
            "ALPACA_TRADING_URL": self.trading_url,
            "ALPACA_DATA_URL": self.data_url,
            "ALPACA_STREAM_URL": self.stream_url,
            "ALPACA_DATA_STREAM_URL": self.data_stream_url,
            "ALPACA_API_KEY": self.api_key,
            "ALPACA_SECRET_KEY": self.secret_key,
        }
