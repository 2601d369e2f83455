"""A local Alpaca: REST, websockets and a market model, for tests and demos.

The daemon never imports this package; it talks to the simulator only through
alpaca-py, over HTTP and websockets, exactly as it talks to Alpaca.

In-process use:
    with SimThread(seed=1, now=datetime(...)) as sim:   # own thread + loop
        TradingClient(sim.api_key, sim.secret_key, url_override=sim.trading_url)
    async with SimServer(seed=1) as server: ...           # inside a running loop
"""

from alchemiser.sim.config import SimConfig
from alchemiser.sim.runner import SimThread, run_sim_in_thread
from alchemiser.sim.server import SimServer

__all__ = ["SimConfig", "SimServer", "SimThread", "run_sim_in_thread"]
