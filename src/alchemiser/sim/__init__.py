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
Admin    /_sim/... (JSON, no auth; localhost only): the clock and virtual time, resets and
         seeds, scripted fills, quotes, halts, faults. docs/simulator.md has the table.
"""

from alchemiser.sim.config import SimConfig
from alchemiser.sim.core import Simulator
from alchemiser.sim.runner import SimThread
from alchemiser.sim.server import SimServer

__all__ = ["SimConfig", "SimServer", "SimThread", "Simulator"]
