"""The two websockets: trade updates at /stream (JSON) and market data at /v2/iex (msgpack)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import msgpack
from aiohttp import WSCloseCode, WSMsgType, web

from alchemiser.sim.clock import SimClock
from alchemiser.sim.faults import StreamFaults
from alchemiser.sim.market import MarketModel, Quote
from alchemiser.sim.orders import Order
from alchemiser.sim.views import order_json
from alchemiser.sim.wire import iso_z, quote_body, trade_body

HEARTBEAT_S = 20.0
DATA_CHANNELS = ("quotes", "trades")  # served; the others are acknowledged as empty
ACKED_CHANNELS = (
    "bars",
    "updatedBars",
    "dailyBars",
    "statuses",
    "lulds",
    "corrections",
    "cancelErrors",
)


class StreamHub:
    """Every open websocket, so updates can be fanned out and connections dropped at will."""

    def __init__(
        self,
        clock: SimClock,
        market: MarketModel,
        keys: tuple[str, str],
        next_trade_id: Callable[[], int],
    ) -> None:
        self.clock = clock
        self.market = market
        self.keys = keys
        self.next_trade_id = next_trade_id
        self.trade_listeners: set[Listener] = set()
        self.faults = StreamFaults()
        self.data_subscribers: dict[web.WebSocketResponse, dict[str, set[str]]] = {}
        self.auth_failures = 0
        self._pushes: set[asyncio.Task[None]] = set()
        self._listener_joined = asyncio.Event()
        self.sockets: set[web.WebSocketResponse] = set()

    def reset_faults(self) -> None:
        """Every stream fault ends (a silent connection speaks again; what it swallowed is lost)."""
        self.faults = StreamFaults()
        for listener in self.trade_listeners:
            listener.silent = False

    # --- trade updates -----------------------------------------------------------------

    def publish(self, event: str, order: Order, extra: dict[str, Any]) -> None:
        data: dict[str, Any] = {
            "event": event,
            "timestamp": iso_z(self.clock.epoch()),
            "order": order_json(order),
            **extra,
        }
        frame = json.dumps({"stream": "trade_updates", "data": data}).encode()
        self._broadcast(self.faults.route(frame, self._later))

    def _later(self, delay_s: float, frames: list[bytes]) -> None:
        asyncio.get_running_loop().call_later(delay_s, self._broadcast, frames)

    def _broadcast(self, frames: list[bytes]) -> None:
        for listener in self.trade_listeners:
            for frame in frames:
                if listener.silent:
                    self.faults.swallowed += 1
                else:
                    listener.queue.put_nowait(frame)

    def silence(self) -> int:
        for listener in self.trade_listeners:
            listener.silent = True
        return len(self.trade_listeners)

    async def drop_trade_sockets(self) -> int:
        sockets = [listener.ws for listener in self.trade_listeners]
        for ws in sockets:
            await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"dropped by simulator")
        return len(sockets)

    async def trade_stream(self, request: web.Request) -> web.StreamResponse:
        if self.faults.is_down():  # the handshake fails; alpaca-py backs off and retries
            return web.Response(status=503, text="stream down (simulator)")
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, autoping=False)
        await ws.prepare(request)
        self.sockets.add(ws)
        listener = Listener(ws)
        writer: asyncio.Task[None] | None = None
        authorized = False
        try:
            async for msg in ws:
                if msg.type == WSMsgType.PING:
                    if not listener.silent:  # half-open: pings go unanswered
                        await ws.pong(msg.data)
                    continue
                if msg.type == WSMsgType.PONG:
                    continue
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                if listener.silent:
                    continue
                action, data = _trade_stream_request(msg.data)
                if action == "authenticate":
                    authorized = (data.get("key_id"), data.get("secret_key")) == self.keys
                if action == "authenticate" or not authorized:
                    await ws.send_bytes(_auth_reply("authorized" if authorized else "unauthorized"))
                    if not authorized:  # bad keys, or anything before authenticating
                        self.auth_failures += 1
                        await ws.close(code=WSCloseCode.POLICY_VIOLATION)
                        break
                elif action == "listen":
                    streams = list(data.get("streams") or [])
                    ack = {"stream": "listening", "data": {"streams": streams}}
                    await ws.send_bytes(json.dumps(ack).encode())
                    if "trade_updates" in streams and writer is None:
                        self.trade_listeners.add(listener)
                        self._listener_joined.set()
                        writer = asyncio.create_task(_pump(listener))
        finally:
            self.trade_listeners.discard(listener)
            self.sockets.discard(ws)
            if writer is not None:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
        return ws

    async def wait_for_trade_listeners(self, count: int = 1) -> None:
        """Until `count` clients listen to trade updates (tests: before the first order)."""
        while len(self.trade_listeners) < count:
            self._listener_joined.clear()
            await self._listener_joined.wait()

    # --- market data -------------------------------------------------------------------

    async def data_stream(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S)
        await ws.prepare(request)
        self.sockets.add(ws)
        await ws.send_bytes(_pack([{"T": "success", "msg": "connected"}]))
        authed = False
        try:
            async for msg in ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                payload = msgpack.unpackb(msg.data) if msg.type == WSMsgType.BINARY else None
                if payload is None:
                    payload = json.loads(msg.data)
                action = payload.get("action")
                if action == "auth":
                    authed = (payload.get("key"), payload.get("secret")) == self.keys
                    reply = (
                        {"T": "success", "msg": "authenticated"}
                        if authed
                        else {"T": "error", "code": 402, "msg": "auth failed"}
                    )
                    await ws.send_bytes(_pack([reply]))
                elif not authed:
                    await ws.send_bytes(
                        _pack([{"T": "error", "code": 401, "msg": "not authenticated"}])
                    )
                elif action in ("subscribe", "unsubscribe"):
                    await self._subscription(ws, action, payload)
        finally:
            self.data_subscribers.pop(ws, None)
            self.sockets.discard(ws)
        return ws

    async def _subscription(
        self, ws: web.WebSocketResponse, action: str, payload: dict[str, Any]
    ) -> None:
        channels = self.data_subscribers.setdefault(ws, {c: set() for c in DATA_CHANNELS})
        asked = {c: {str(s).upper() for s in payload.get(c) or []} for c in DATA_CHANNELS}
        for channel, symbols in asked.items():
            if action == "subscribe":
                channels[channel] |= symbols
            else:
                channels[channel] -= symbols
        ack: dict[str, Any] = {"T": "subscription", **{c: [] for c in ACKED_CHANNELS}}
        ack.update({c: sorted(channels[c]) for c in DATA_CHANNELS})
        await ws.send_bytes(_pack([ack]))
        if action == "subscribe":
            await self._send_market(ws, asked)

    def push_quotes_soon(self) -> None:
        if self.data_subscribers:
            task = asyncio.get_running_loop().create_task(self.push_quotes())
            self._pushes.add(task)  # held until done (the loop keeps only weak references)
            task.add_done_callback(self._pushes.discard)

    async def push_quotes(self) -> None:
        """One round of quotes and trades to every data subscriber."""
        for ws, channels in list(self.data_subscribers.items()):
            if not ws.closed:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await self._send_market(ws, channels)

    async def _send_market(self, ws: web.WebSocketResponse, channels: dict[str, set[str]]) -> None:
        epoch = self.clock.epoch()
        unknown = self.market.unknown
        msgs = [
            quote_message(s, self.market.quote(s, epoch), epoch)
            for s in sorted(channels["quotes"] - unknown)
        ]
        for s in sorted(channels["trades"] - unknown):
            price = self.market.quote(s, epoch).last
            msgs.append(trade_message(s, price, epoch, self.next_trade_id()))
        if msgs:
            await ws.send_bytes(_pack(msgs))

    async def drop_all(self) -> int:
        """Close every websocket with 1011, as a server failure would."""
        sockets = list(self.sockets)
        for ws in sockets:
            await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"dropped by simulator")
        return len(sockets)


def quote_message(symbol: str, quote: Quote, epoch: float) -> dict[str, Any]:
    stamp = epoch if quote.stamp is None else quote.stamp
    return {"T": "q", "S": symbol, **quote_body(quote), "t": msgpack.Timestamp.from_unix(stamp)}


def trade_message(symbol: str, price: Decimal, epoch: float, trade_id: int) -> dict[str, Any]:
    return {
        "T": "t",
        "S": symbol,
        **trade_body(price, trade_id),
        "t": msgpack.Timestamp.from_unix(epoch),
    }


def _pack(messages: list[dict[str, Any]]) -> bytes:
    packed: bytes = msgpack.packb(messages)
    return packed


def _trade_stream_request(raw: str | bytes) -> tuple[str, dict[str, Any]]:
    """(action, data) of a client message; ("", {}) if it is not one."""
    try:
        message = json.loads(raw)
    except ValueError:
        return "", {}
    if not isinstance(message, dict):
        return "", {}
    data = message.get("data")
    return str(message.get("action") or ""), data if isinstance(data, dict) else {}


def _auth_reply(status: str) -> bytes:
    reply = {"stream": "authorization", "data": {"action": "authenticate", "status": status}}
    return json.dumps(reply).encode()


@dataclass(eq=False, slots=True)
class Listener:
    """One trade_updates connection; a silent one is half-open (see Simulator.stream_silent)."""

    ws: web.WebSocketResponse
    queue: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    silent: bool = False


async def _pump(listener: Listener) -> None:
    while True:
        frame = await listener.queue.get()
        if listener.ws.closed:
            return
        if not listener.silent:
            await listener.ws.send_bytes(frame)
