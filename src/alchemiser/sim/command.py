"""`alchemiser sim`: serve the simulator until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import sys

from alchemiser.sim.config import SimConfig
from alchemiser.sim.server import SimServer


def serve(config: SimConfig) -> None:
    """Start, print the ALPACA_* settings (one per line, for `export`), serve, stop cleanly."""
    asyncio.run(_serve(config))


async def _serve(config: SimConfig) -> None:
    server = SimServer(config)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        for name, value in server.env().items():
            sys.stdout.write(f"{name}={value}\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await server.stop()
