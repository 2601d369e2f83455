"""The health server, on the daemon's own event loop (aiohttp, like the simulator).

`/healthz`: the loop answers. `/readyz`: the database, the broker and the trade
stream are up and the books last agreed with the broker not too long ago (503 with
the reasons otherwise). `/status`: JSON for people and scripts. `/metrics`:
Prometheus text. Nothing here reads or shows a secret.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy import text

import alchemiser
from alchemiser.daemon.metrics import CONTENT_TYPE, Metrics
from alchemiser.daemon.status import read_snapshot

if TYPE_CHECKING:
    from alchemiser.daemon.app import Daemon

DATABASE_TIMEOUT_SECONDS = 2.0
# The broker counts as up while its clock was read within this many checks.
BROKER_MISSED_CHECKS = 3
SERVICE_UNAVAILABLE = 503


def health_app(daemon: Daemon) -> web.Application:
    app = web.Application()
    metrics = Metrics()

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(_: web.Request) -> web.Response:
        problems = await readiness(daemon)
        status = SERVICE_UNAVAILABLE if problems else 200
        return web.json_response({"ready": not problems, "problems": problems}, status=status)

    async def status(_: web.Request) -> web.Response:
        return web.json_response(await status_body(daemon), dumps=_dumps)

    async def metrics_page(_: web.Request) -> web.Response:
        body = metrics.render(
            await read_snapshot(daemon.engine),
            stream_connected=_stream_up(daemon),
            reconciled=daemon.reconciled is not None and daemon.reconciled.ok,
        )
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/status", status)
    app.router.add_get("/metrics", metrics_page)
    return app


async def readiness(daemon: Daemon) -> list[str]:
    """Why the daemon is not ready to trade (empty: ready)."""
    problems = []
    try:
        async with daemon.engine.connect() as conn:
            await asyncio.wait_for(conn.execute(text("SELECT 1")), DATABASE_TIMEOUT_SECONDS)
    except Exception as exc:
        problems.append(f"database: {type(exc).__name__}")
    settings = daemon.settings.daemon
    seen = daemon.broker_seen_at
    stale = seen is None or time.monotonic() - seen > BROKER_MISSED_CHECKS * settings.check_seconds
    # A run's own requests delay the clock read (one rate limit); a run that loses the
    # broker fails, and the checks say so after it.
    if daemon.broker_problem is not None or (stale and not daemon.running()):
        problems.append(f"broker: clock not read lately ({daemon.broker_problem or 'no answer'})")
    if not _stream_up(daemon):
        problems.append("trade stream: not connected")
    result, at = daemon.reconciled, daemon.reconciled_at
    if result is None or at is None:
        problems.append("books: not reconciled yet")
    elif not result.ok:
        wrong = ", ".join(d.symbol or "cash" for d in result.differences if d.beyond_tolerance)
        problems.append(f"books: the books and the broker disagree ({wrong})")
    elif time.monotonic() - at > settings.reconcile_max_age_seconds:
        problems.append(f"books: last reconciled {time.monotonic() - at:.0f} s ago")
    return problems


async def status_body(daemon: Daemon) -> dict[str, Any]:
    snapshot = await read_snapshot(daemon.engine)
    services = daemon.services
    last_run = snapshot.last_run
    if last_run is not None:
        last_run = last_run | {"strategies": snapshot.strategies, "orders": snapshot.orders}
    return {
        "version": alchemiser.__version__,
        "broker_time": services.now() if services is not None else None,
        "running": daemon.running(),
        "next_run": daemon.next_run,
        # What this process did about each trading day (a run's status, missed, refused).
        "days": {str(day): outcome for day, outcome in daemon.days.items()},
        "last_run": last_run,
        "last_successful_run": snapshot.last_success,
        "bars_refreshed_through": daemon.bars_through,
        "books": [
            {
                "strategy": b.strategy_id,
                "state": b.state,
                "allocation": b.allocation,
                "cash": b.cash,
                "value": b.value,
                "pnl": b.pnl,
                "share": b.share,
                "drift": b.drift,
            }
            for b in snapshot.books
        ],
        "halted": snapshot.halted,
        "reconciled": None if daemon.reconciled is None else daemon.reconciled.ok,
        "trade_stream_connected": _stream_up(daemon),
    }


def _stream_up(daemon: Daemon) -> bool:
    stream = daemon.services.stream if daemon.services is not None else None
    return stream is not None and stream.connected.is_set()


def _dumps(body: Any) -> str:
    return json.dumps(body, default=_plain)


def _plain(value: Any) -> Any:
    """Money exact (as a string), times and days in ISO 8601."""
    if isinstance(value, Decimal):
        return f"{value.normalize():f}"  # 70000, not 7E+4
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")
