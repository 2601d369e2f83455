"""Logging: JSON lines off a terminal, bound run/strategy context, secrets masked."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
import time

import pytest

from alchemiser.logging import (
    bind_run,
    bind_strategy,
    configure_logging,
    get_logger,
    register_secrets,
)

LINES = 2000


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line]


@pytest.fixture
def captured() -> io.StringIO:
    stream = io.StringIO()
    configure_logging("debug", "auto", stream=stream)
    return stream


def test_json_lines_when_not_a_terminal(captured: io.StringIO) -> None:
    get_logger("t").info("order placed", symbol="SPY", qty="1.5")
    (line,) = lines(captured)
    assert line["event"] == "order placed"
    assert line["symbol"] == "SPY"
    assert line["level"] == "info"
    assert "timestamp" in line


def test_console_output_on_a_terminal() -> None:
    stream = FakeTerminal()
    configure_logging("info", "auto", stream=stream)
    get_logger("t").info("hello console", n=3)
    text = stream.getvalue()
    assert "hello console" in text
    assert not text.lstrip().startswith("{")


async def test_run_and_strategy_ids_reach_every_line_of_concurrent_tasks(
    captured: io.StringIO,
) -> None:
    log = get_logger("t")

    async def evaluate(strategy: str) -> None:
        with bind_strategy(strategy):
            await asyncio.sleep(0)
            log.info("evaluated")

    with bind_run(42):
        log.info("run started")
        await asyncio.gather(evaluate("alpha"), evaluate("beta"))
    log.info("after the run")

    records = lines(captured)
    assert [r["event"] for r in records] == [
        "run started",
        "evaluated",
        "evaluated",
        "after the run",
    ]
    assert all(r["run_id"] == "42" for r in records[:3])
    assert sorted(str(r["strategy_id"]) for r in records[1:3]) == ["alpha", "beta"]
    assert "run_id" not in records[3]
    assert "strategy_id" not in records[0]


def test_registered_secrets_never_appear(captured: io.StringIO) -> None:
    key = "PKSECRETKEY9876"
    register_secrets([key])
    log = get_logger("t")
    log.info("connecting", headers={"APCA-API-KEY-ID": key})
    log.warning(f"auth failed for {key}")
    logging.getLogger("alpaca.common.rest").warning("request with key %s", key)
    try:
        raise RuntimeError(f"bad key {key}")
    except RuntimeError:
        log.exception("crashed")
    text = captured.getvalue()
    assert key not in text
    assert text.count("***") >= 4


def test_terminal_lines_are_in_new_york_time_and_json_lines_in_utc() -> None:
    import re
    from datetime import datetime

    terminal = FakeTerminal()
    configure_logging("info", "auto", stream=terminal)
    get_logger("t").info("on a terminal")
    stamp = re.search(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (EST|EDT)", terminal.getvalue())
    assert stamp is not None, terminal.getvalue()

    piped = io.StringIO()
    configure_logging("info", "auto", stream=piped)
    get_logger("t").info("in a pipe")
    (line,) = lines(piped)
    assert datetime.fromisoformat(str(line["timestamp"])).utcoffset() is not None
    assert str(line["timestamp"]).endswith("Z")


def test_log_lines_and_a_progress_bar_share_one_console() -> None:
    from alchemiser.logging import progress_bar

    terminal = FakeTerminal()
    configure_logging("info", "auto", stream=terminal)
    with progress_bar(3, "working") as bar:
        bar.update(1)
        get_logger("t").warning("halfway note")
        bar.update(2)
    text = terminal.getvalue()
    # The log line is whole on its own line, however the bar was redrawn around it.
    assert any("halfway note" in line and "working" not in line for line in text.splitlines()), text


def test_routine_library_lines_are_quiet_unless_debugging() -> None:
    stream = io.StringIO()
    configure_logging("info", "auto", stream=stream)
    logging.getLogger("alembic.runtime.plugins").info("setup plugin x")
    assert stream.getvalue() == ""
    configure_logging("debug", "auto", stream=stream)
    logging.getLogger("alembic.runtime.plugins").info("setup plugin x")
    assert "setup plugin x" in stream.getvalue()


class SlowStream(io.StringIO):
    """A stream whose writes let other threads run, as a pipe's or a terminal's do."""

    def write(self, text: str) -> int:
        time.sleep(0)
        return super().write(text)


def test_lines_from_two_threads_never_run_into_each_other() -> None:
    """Our lines (structlog) and a library's (stdlib, e.g. alpaca-py's stream thread) share
    one stream: each line must be written whole, or a JSON reader sees two on one line."""
    stream = SlowStream()
    configure_logging("info", "json", stream=stream)

    def library() -> None:
        for i in range(LINES):
            logging.getLogger("alpaca.trading.stream").info("library line %d", i)

    thread = threading.Thread(target=library)
    thread.start()
    for i in range(LINES):
        get_logger("ours").info("our line", n=i)
    thread.join()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 * LINES
    assert all(json.loads(line)["event"] for line in lines)
