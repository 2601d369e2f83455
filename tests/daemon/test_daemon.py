"""`alchemiser run` as users run it: a child process against the simulator and PostgreSQL.

The simulator's clock drives the daemon (time comes from the broker). A crash is a
real SIGKILL; a stop is a real SIGTERM. What the daemon says is read from its
health server, what it did from the broker and the ledger.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from alchemiser import db
from alchemiser.market_calendar import NEW_YORK
from alchemiser.sim import SimThread
from tests.run.conftest import BOOKS
from tests.run.test_crash import kill_when, orders, write_config
from tests.sim.conftest import WAIT_S

DAY = datetime(2026, 11, 18, tzinfo=NEW_YORK).date()
HALF_A_MINUTE_BEFORE = datetime(2026, 11, 18, 15, 29, 30, tzinfo=NEW_YORK)
IN_THE_WINDOW = datetime(2026, 11, 18, 15, 30, 5, tzinfo=NEW_YORK)
SPEED = 5.0  # simulated seconds per second until the run: the half minute takes six
RUN_TIMEOUT_S = 120
GRACE_S = 1.0
BROKEN = '(defsymphony "broken" {:rebalance-frequency :daily}\n  (weight-equal [(asset "SPY")\n'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Daemon:
    """One `alchemiser run` child; its logs go to a file (a pipe could fill and block it)."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.port, self.log = port, log
        with log.open("a") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "alchemiser.cli", "run"],
                env=env,
                stdout=out,
                stderr=out,
                text=True,
            )

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def status(self) -> dict[str, Any]:
        code, body = self.get("/status")
        assert code == 200, body
        result: dict[str, Any] = json.loads(body)
        return result

    def wait_status(self, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"the daemon exited ({self.proc.returncode}):\n{self.tail()}")
            try:
                status = self.status()
            except (OSError, urllib.error.URLError):
                status = None  # not listening yet
            if status is not None and done(status):
                return status
            time.sleep(0.1)
        self.proc.kill()
        pytest.fail(f"/status never showed it: {status}\n{self.tail()}")

    def terminate(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(WAIT_S + GRACE_S)

    def tail(self) -> str:
        return self.log.read_text()[-4000:]

    def events(self) -> list[str]:
        lines = self.log.read_text().splitlines()
        return [json.loads(line)["event"] for line in lines if line.startswith("{")]


class NotifySocket:
    """What systemd would hear: every datagram on a unix socket, read on a thread."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self._open = True
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while self._open:
            try:
                self.messages.append(self.sock.recv(64).decode())
            except TimeoutError:
                continue

    def close(self) -> list[str]:
        self._open = False
        self._thread.join(5)
        self.sock.close()
        return self.messages


def daemon_env(sim: SimThread, db_url: str, config: Path, port: int) -> dict[str, str]:
    extra = "\n".join(
        [
            f"health_port = {port}",
            "[daemon]",
            "check_seconds = 0.2",
            f"grace_seconds = {GRACE_S}",
            config.read_text(),
        ]
    )
    config.write_text(extra)
    return {
        **os.environ,
        **sim.env(),
        "ALCHEMISER_DATABASE_URL": db_url,
        "ALCHEMISER_CONFIG": str(config),
        "ALCHEMISER_LOG_FORMAT": "json",
    }


def completed(status: dict[str, Any]) -> bool:
    run = status["last_run"]
    return run is not None and run["status"] == "completed" and not status["running"]


async def run_row(db_url: str) -> tuple[str, str | None]:
    engine = db.create_engine(db_url)
    try:
        async with engine.connect() as conn:
            row = (await conn.execute(text("SELECT status, error FROM runs"))).one()
            return row.status, row.error
    finally:
        await engine.dispose()


def assert_once(sim: SimThread) -> None:
    ids = [cid for cid, _, _ in orders(sim)]
    assert ids and max(Counter(ids).values()) == 1, "a client order id reached the broker twice"


@pytest.mark.slow
async def test_the_run_fires_on_time_survives_a_kill_and_a_stop_and_completes_once(
    sim: SimThread, db_url: str, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.clj"
    broken.write_text(BROKEN)
    config = write_config(tmp_path / "a.toml", BOOKS)
    config.write_text(
        config.read_text()
        + f'[[strategies]]\nid = "broken"\nfile = "{broken}"\nallocation = 0\ncapital = 5000\n'
    )
    port = free_port()
    notify = NotifySocket(tmp_path / "notify")
    env = daemon_env(sim, db_url, config, port)
    env |= {"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000"}
    log = tmp_path / "daemon.log"
    sim.set_clock(now=HALF_A_MINUTE_BEFORE, speed=SPEED)
    sim.configure(auto_fill=False)  # the buys rest: walks are working at the kill and the stop

    # 1. The run fires at 15:30 by the broker's clock; SIGKILL once a buy is at the broker.
    kill_when(Daemon(env, port, log).proc, sim, "buy")
    sent_at = sim.call(lambda s: min(o.submitted_at for o in s.broker.orders.values()))
    assert sent_at >= datetime(2026, 11, 18, 15, 30, tzinfo=NEW_YORK).timestamp()

    # 2. The next start resumes the run; SIGTERM mid-walk: no new order, the grace period,
    # then the walks' orders are cancelled and the run is recorded as interrupted.
    second = Daemon(env, port, log)
    sent = len(orders(sim))
    second.wait_status(lambda s: s["running"] and len(orders(sim)) > sent)
    assert second.terminate() == 0
    events = second.events()
    assert events.index("stopping") < events.index("run interrupted"), events
    statuses = {status for _, _, status in orders(sim)}
    assert "canceled" in statuses and not statuses & {"new", "pending_new", "accepted"}
    status, error = await run_row(db_url)
    assert status == "failed" and error is not None and error.startswith("interrupted"), error

    # 3. The next start completes the run: once, reconciled, ready, reported.
    sim.configure(auto_fill=True)
    third = Daemon(env, port, log)
    report = third.wait_status(completed)
    assert report["last_run"]["trading_day"] == str(DAY)
    assert_once(sim)
    assert not any(s in ("new", "pending_new", "accepted") for _, _, s in orders(sim))
    outcomes = {s["id"]: s for s in report["last_run"]["strategies"]}
    assert re.search(r"broken\.clj:\d+:\d+", outcomes["broken"]["error"]), outcomes["broken"]
    assert all(outcomes[sid]["ok"] for sid, _, _ in BOOKS)
    assert report["reconciled"] is True
    assert {b["strategy"] for b in report["books"]} >= {sid for sid, _, _ in BOOKS}
    assert report["next_run"].startswith("2026-11-19T15:30")
    code, body = third.get("/readyz")
    assert code == 200, body
    code, body = third.get("/metrics")
    families = {f.name: f for f in text_string_to_metric_families(body)}
    books = {s.labels.get("strategy") for s in families["alchemiser_book_value_dollars"].samples}
    assert {sid for sid, _, _ in BOOKS} <= books
    assert families["alchemiser_trade_stream_connected"].samples[0].value == 1
    assert families["alchemiser_last_successful_run_timestamp_seconds"].samples[0].value > 0
    for secret in (sim.api_key, sim.secret_key):
        assert secret not in body and secret not in json.dumps(report)
    assert third.terminate() == 0

    # systemd heard each start once ready, the watchdog from the loop, and both stops.
    heard = notify.close()
    assert heard.count("READY=1") == 3 and heard.count("STOPPING=1") == 2, heard
    assert "WATCHDOG=1" in heard and heard[-1] == "STOPPING=1", heard
