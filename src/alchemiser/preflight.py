"""`alchemiser check`: is everything ready for the daily run? One row per thing.

Read-only: it parses, connects and asks, but never migrates, refreshes or
trades, so it is safe to run at any time, against a live account too. Each
check's failure says what to do; the command exits 0 only when every row is ready.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from alchemiser.errors import KEYS_HELP, UserError
from alchemiser.settings import Settings

# Seconds to wait for the broker's answer before calling it unreachable.
BROKER_TIMEOUT_SECONDS = 15.0
TICKERS_SHOWN = 8


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ready: bool
    detail: str


@dataclass(frozen=True, slots=True)
class Broker:
    """What the broker said: its checks, and its clock (the session the data must reach)."""

    checks: list[Check]
    now: datetime | None


def run_checks(settings: Settings) -> list[Check]:
    """Every check, in the order a trader fixes things: files, broker, database, data."""
    from alchemiser.dsl import Strategy

    checks = [Check("configuration", True, _describe_config(settings))]
    strategies: dict[str, Strategy] = {}
    for config in settings.strategies:
        check, strategy = _strategy(config.id, config.file)
        checks.append(check)
        if strategy is not None:
            strategies[config.id] = strategy
    broker = _broker(settings)
    checks += broker.checks
    checks += _database_and_data(settings, strategies, broker.now or datetime.now(UTC))
    return checks


def _describe_config(settings: Settings) -> str:
    count = len(settings.strategies)
    total = sum((s.allocation for s in settings.strategies), start=0)
    return f"{count} strateg{'y' if count == 1 else 'ies'}, {total:.0%} of the account allocated"


def _strategy(strategy_id: str, path: Any) -> tuple[Check, Any]:
    from alchemiser.tickers import read_strategy

    name = f"strategy {strategy_id}"
    try:
        strategy = read_strategy(path)
    except UserError as exc:
        return Check(name, False, str(exc)), None
    n = len(strategy.tickers)
    shown = os.path.normpath(path)  # config/../strategies/x.clj -> strategies/x.clj
    return Check(name, True, f"{shown}: parses, {n} ticker{'s' if n != 1 else ''}"), strategy


def _broker(settings: Settings) -> Broker:
    """Keys, account status, paper or live, and the broker's clock."""
    alpaca = settings.alpaca
    mode = "paper" if alpaca.paper else "LIVE"
    if not alpaca.api_key.get_secret_value() or not alpaca.secret_key.get_secret_value():
        return Broker([Check("broker", False, f"no Alpaca keys: {KEYS_HELP}")], None)
    try:
        account, clock = _ask_broker(settings)
    except UserError as exc:
        return Broker([Check("broker", False, str(exc))], None)
    status = str(account.get("status"))
    blocked = bool(account.get("trading_blocked")) or bool(account.get("account_blocked"))
    ready = status == "ACTIVE" and not blocked
    detail = f"{mode} account at {alpaca.trading_base_url}, status {status}"
    detail += ", trading blocked" if blocked else f", equity {account.get('equity')}"
    now = datetime.fromisoformat(str(clock["timestamp"]).replace("Z", "+00:00"))
    return Broker([Check("broker", ready, detail)], now)


def _ask_broker(settings: Settings) -> tuple[dict[str, Any], dict[str, Any]]:
    import requests
    from alpaca.common.exceptions import APIError

    from alchemiser.errors import AlpacaKeysRejected, AlpacaUnreachable
    from alchemiser.execution.broker import make_trading_client

    client = make_trading_client(settings.alpaca, BROKER_TIMEOUT_SECONDS)
    where = settings.alpaca.trading_base_url
    try:
        account: Any = client.get_account()
        clock: Any = client.get_clock()
    except APIError as exc:
        if exc.status_code in (401, 403):
            raise AlpacaKeysRejected(
                f"Alpaca rejected the keys (HTTP {exc.status_code}): {KEYS_HELP}"
            ) from exc
        raise AlpacaUnreachable(f"{where} answered HTTP {exc.status_code}") from exc
    except requests.RequestException as exc:
        raise AlpacaUnreachable(f"cannot reach {where}: {type(exc).__name__}") from exc
    return dict(account), dict(clock)


def _database_and_data(
    settings: Settings, strategies: dict[str, Any], now: datetime
) -> list[Check]:
    """The database (reachable, schema current) and every needed ticker's newest bar."""
    from alchemiser import db
    from alchemiser.marketdata.refresh import last_completed_session

    try:
        url = db.database_url(settings)
        return asyncio.run(_in_database(url, strategies, last_completed_session(now)))
    except UserError as exc:
        return [Check("database", False, str(exc)), _data_unknown()]


async def _in_database(url: str, strategies: dict[str, Any], needed: date) -> list[Check]:
    from alchemiser import db

    engine = db.create_engine(url)
    try:
        await db.check_connection(engine)
        schema = await _schema(engine)
        data = await _data(engine, strategies, needed) if schema.ready else _data_unknown()
        return [schema, data]
    finally:
        await engine.dispose()


async def _schema(engine: Any) -> Check:
    from alchemiser import db

    at = set((await db.current(engine)).replace("(head)", "").split())
    heads = set(db.heads())
    where = engine.url.render_as_string(hide_password=True).replace("+asyncpg", "")
    if at == heads:
        return Check("database", True, f"{where}, schema current")
    return Check(
        "database",
        False,
        f"{where}: schema at {', '.join(sorted(at)) or 'nothing'}, this version needs"
        f" {', '.join(sorted(heads))}: run `alchemiser db upgrade`",
    )


async def _data(engine: Any, strategies: dict[str, Any], needed: date) -> Check:
    from alchemiser.marketdata.store import load_coverage

    tickers = sorted({t for s in strategies.values() for t in s.tickers})
    if not tickers:
        return Check("market data", True, "no strategy names a ticker")
    coverage = await load_coverage(engine, tickers)
    stale = {t: coverage[t].last_date if t in coverage else None for t in tickers}
    stale = {t: d for t, d in stale.items() if d is None or d < needed}
    if not stale:
        return Check("market data", True, f"{len(tickers)} tickers have bars through {needed}")
    return Check(
        "market data",
        False,
        f"{len(stale)} of {len(tickers)} tickers lack bars through {needed}: "
        + _list(stale)
        + ": run `alchemiser data refresh --strategies`",
    )


def _list(stale: dict[str, date | None]) -> str:
    shown = [f"{t} ({f'bars end {d}' if d else 'no bars'})" for t, d in stale.items()]
    more = len(shown) - TICKERS_SHOWN
    return ", ".join(shown[:TICKERS_SHOWN]) + (f" and {more} more" if more > 0 else "")


def _data_unknown() -> Check:
    return Check("market data", False, "not checked: the database is not ready")


def render(checks: Sequence[Check], echo: Callable[[str], None]) -> None:
    """A table: check, READY / NOT READY, and what to do."""
    width = max(len(c.name) for c in checks)
    for c in checks:
        echo(f"{c.name:<{width}}  {'ready    ' if c.ready else 'NOT READY'}  {c.detail}")
    waiting = sum(not c.ready for c in checks)
    echo("all ready" if not waiting else f"{waiting} not ready")
