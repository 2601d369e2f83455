"""Logging: JSON lines off a terminal, bound run/strategy context, secrets masked."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest

from alchemiser.logging import (
    bind_run,
    bind_strategy,
    configure_logging,
    get_logger,
    register_secrets,
)


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
