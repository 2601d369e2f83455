"""`SimServer` inside a running event loop, the way the daemon's own tests will use it:
REST through `asyncio.to_thread`, the trade stream as a task on the same loop."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.models import TradeUpdate
from alpaca.trading.requests import MarketOrderRequest
from alpaca.trading.stream import TradingStream

from alchemiser.sim import SimServer
from tests.sim.conftest import BASE_NOW, WAIT_S, fast_client


async def test_sim_server_in_the_running_loop() -> None:
    async with SimServer(seed=2, now=BASE_NOW, fill_wait_scale=0.001) as server:
        client = fast_client(
            TradingClient(server.api_key, server.secret_key, url_override=server.trading_url)
        )
        stream = TradingStream(server.api_key, server.secret_key, url_override=server.stream_url)
        fills: asyncio.Queue[TradeUpdate] = asyncio.Queue()

        async def on_update(update: TradeUpdate) -> None:
            if update.event == "fill":
                fills.put_nowait(update)

        stream.subscribe_trade_updates(on_update)
        task = asyncio.create_task(stream._run_forever())
        try:
            await asyncio.wait_for(server.sim.hub.wait_for_trade_listeners(), WAIT_S)
            request = MarketOrderRequest(
                symbol="SPY", qty=3, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
            )
            order = await asyncio.to_thread(client.submit_order, request)
            fill = await asyncio.wait_for(fills.get(), WAIT_S)
            assert fill.order.id == order.id
            assert Decimal(str(fill.position_qty)) == 3
            assert server.sim.broker.positions["SPY"].qty == 3
        finally:
            await stream.stop_ws()
            await server.sim.hub.drop_all()  # ends the client's 5 s receive wait at once
            await task
