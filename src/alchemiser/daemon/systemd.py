"""systemd's notify protocol (sd_notify): READY=1, WATCHDOG=1, STOPPING=1.

Each message is one datagram to the unix socket named by `NOTIFY_SOCKET` (a leading
`@` is Linux's abstract namespace). Where it is not set (docker, a terminal) nothing
is sent. WATCHDOG=1 is sent by a task on the daemon's own event loop, so a hung loop
stops pinging and systemd (`WatchdogSec=`) restarts the service.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Mapping

from alchemiser.logging import get_logger

log = get_logger(__name__)

# systemd asks for a ping at least every WATCHDOG_USEC; we ping twice as often.
PINGS_PER_PERIOD = 2


class Notifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        address = environ.get("NOTIFY_SOCKET", "")
        self.address = "\0" + address[1:] if address.startswith("@") else address
        usec = environ.get("WATCHDOG_USEC", "")
        self.watchdog_seconds = int(usec) / 1e6 / PINGS_PER_PERIOD if usec.isdigit() else None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, message: str) -> None:
        """Send one notification; a failure is logged, never raised (systemd may be gone)."""
        if not self.address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)  # a full queue must never block the event loop
                sock.connect(self.address)
                sock.sendall(message.encode())
        except OSError as exc:
            log.warning("systemd notification failed", message=message, reason=str(exc))

    async def watchdog(self) -> None:
        """Ping from the event loop, forever (cancel to stop); nothing without a watchdog."""
        if not self.address or self.watchdog_seconds is None:
            return
        while True:
            self.send("WATCHDOG=1")
            await asyncio.sleep(self.watchdog_seconds)
