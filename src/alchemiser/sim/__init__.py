"""A local Alpaca: REST, websockets and a market model, for tests and demos.

The daemon never imports this package; it talks to the simulator only through
alpaca-py, over HTTP and websockets, exactly as it talks to Alpaca.

Starting it
-----------
    alchemiser sim --port 8765 --seed 1 --now 2026-11-20T15:30:00-05:00   # prints ALPACA_*=...

    with SimThread(seed=1, now=datetime(...), fill_wait_scale=0.001) as sim:   # own thread+loop
        TradingClient(sim.api_key, sim.secret_key, url_override=sim.trading_url)
        sim.set_price("SPY", "500"); sim.set_faults(status=429, count=2); ...

    async with SimServer(seed=1) as server:        # inside a running loop
        server.sim.set_clock(...)                   # admin operations, called directly

`SimThread`'s admin helpers block and run on the simulator's loop; `SimServer.sim`
(a `Simulator`) has the same operations for code already on that loop.

Routes
------
Trading  /v2/account, /v2/account/activities[/{type}], /v2/positions[/{symbol}] (GET,
         DELETE), /v2/orders (POST, GET, DELETE), /v2/orders/{id} (GET, PATCH, DELETE),
         /v2/orders:by_client_order_id, /v2/clock, /v2/calendar, /v2/assets[/{symbol}]
Data     /v2/stocks/bars (1Day only), /v2/stocks/quotes/latest, /v2/stocks/trades/latest,
         /v2/stocks/snapshots
Streams  /stream (trade_updates, JSON), /v2/iex (quotes and trades, msgpack)
Admin    (JSON bodies, no auth; localhost only)
  GET    /_sim/state                  clock anchors, cash, positions, open orders, sockets
  POST   /_sim/clock                  {"now": iso, "speed": x, "advance_seconds": s}
  POST   /_sim/fund                   {"amount": "1000"}   (negative withdraws)
  POST   /_sim/price                  {"symbol", "price": "12.34" | null, "spread_bps": 5}
  POST   /_sim/reset                  {"cash": "100000"}   orders, positions, overrides, faults
  POST   /_sim/asset                  {"symbol", "fractionable": bool, "tradable": bool}
  POST   /_sim/unknown                {"symbol", "unknown": true}   no bars/quotes/asset
  POST   /_sim/corporate_action       {"symbol", "date", "split_ratio": 2, "dividend": 0.5}
  POST   /_sim/faults                 {"status": 429|500|502|503|504, "count": n,
                                       "latency_ms": ms, "reject_orders": n, "reject_reason"}
  DELETE /_sim/faults                 clear every fault
  POST   /_sim/drop_websockets        close every websocket with 1011
  POST   /_sim/config                 {"fill_wait_scale": x, "partial_fill_notional": "50000"}
"""

from alchemiser.sim.config import SimConfig
from alchemiser.sim.core import Simulator
from alchemiser.sim.runner import SimThread
from alchemiser.sim.server import SimServer

__all__ = ["SimConfig", "SimServer", "SimThread", "Simulator"]
