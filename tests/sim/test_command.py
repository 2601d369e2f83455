"""`alchemiser sim` as a user runs it: prints the ALPACA_* lines, serves, stops on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys

from alpaca.trading.client import TradingClient

from tests.sim.conftest import fast_client

EXPECTED_KEYS = [
    "ALPACA_TRADING_URL",
    "ALPACA_DATA_URL",
    "ALPACA_STREAM_URL",
    "ALPACA_DATA_STREAM_URL",
    "ALPACA_API_KEY",
    "ALPACA_SECRET_KEY",
]
STOP_TIMEOUT_S = 20


def test_command_prints_settings_serves_and_stops_on_sigterm() -> None:
    command = [
        sys.executable,
        "-m",
        "alchemiser.cli",
        "sim",
        "--port",
        "0",
        "--seed",
        "3",
        "--now",
        "2026-11-20T15:30:00-05:00",
        "--cash",
        "25000",
    ]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in EXPECTED_KEYS]
        settings = dict(line.split("=", 1) for line in lines)
        assert list(settings) == EXPECTED_KEYS
        origin = settings["ALPACA_TRADING_URL"]
        assert origin.startswith("http://127.0.0.1:") and not origin.endswith("/")
        assert settings["ALPACA_STREAM_URL"] == origin.replace("http", "ws") + "/stream"
        assert settings["ALPACA_DATA_STREAM_URL"] == origin.replace("http", "ws") + "/v2/iex"
        client = fast_client(
            TradingClient(
                settings["ALPACA_API_KEY"], settings["ALPACA_SECRET_KEY"], url_override=origin
            )
        )
        assert client.get_account().cash == "25000"
        assert client.get_clock().is_open
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(STOP_TIMEOUT_S) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
