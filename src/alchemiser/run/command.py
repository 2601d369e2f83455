"""`alchemiser trade-now [--dry-run]`: the daily run, once, now, with a summary to read."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser import db
from alchemiser.errors import KEYS_HELP, AlpacaKeysRejected, AlpacaUnreachable, UserError
from alchemiser.execution.errors import BrokerAuthError, TemporaryBrokerError
from alchemiser.run.daily import GateRefused, RunReport, daily_run
from alchemiser.run.services import open_services
from alchemiser.settings import Settings


class RunRefused(UserError):
    """The gate refused the run (market closed, another run, books disagree)."""


def trade_now(settings: Settings, *, dry_run: bool = False) -> RunReport:
    async def run(engine: AsyncEngine) -> RunReport:
        async with open_services(settings, engine) as services:
            return await daily_run(settings, services, dry_run=dry_run)

    try:
        report: RunReport = db.run(run, db.database_url(settings), migrate=True)
    except GateRefused as exc:
        raise RunRefused(f"nothing traded: {exc}") from None
    except BrokerAuthError as exc:
        raise AlpacaKeysRejected(f"Alpaca refused the keys ({exc.reason}): {KEYS_HELP}") from None
    except TemporaryBrokerError as exc:
        raise AlpacaUnreachable(f"Alpaca did not answer after retries: {exc}") from None
    return report


def summary(report: RunReport) -> Iterator[str]:
    resumed = ", resumed" if report.resumed else ""
    yield f"run {report.trading_day} (#{report.run_id}): {report.status}{resumed}"
    failed = {sid: o.error for sid, o in report.outcomes.items() if o.error}
    if report.outcomes:
        yield f"strategies: {len(report.outcomes) - len(failed)} evaluated, {len(failed)} skipped"
    for sid, outcome in sorted(report.outcomes.items()):
        if outcome.error:
            yield f"  {sid}: SKIPPED, {outcome.error}"
        else:
            weights = ", ".join(f"{t} {w:.1%}" for t, w in sorted(outcome.weights.items()))
            yield f"  {sid}: {weights or 'all cash'}"
    yield from _plan_lines(report)
    yield from _execution_lines(report)
    if report.reconciliation is not None:
        state = "agree" if report.reconciliation.ok else "DISAGREE"
        yield f"reconciliation: books and broker {state}"


def _plan_lines(report: RunReport) -> Iterator[str]:
    if report.netted is None:
        return
    netted = report.netted
    yield (
        f"plan: {len(report.intents)} intent(s); {len(netted.orders)} broker order(s), "
        f"{len(netted.crosses)} internal cross(es)"
    )
    for intent in report.intents:
        yield (
            f"  {intent.strategy_id}: {intent.side} {_qty(intent.quantity)} {intent.symbol}"
            f" ~{intent.quantity * intent.reference_price:,.2f} ({intent.reason})"
        )
    for order in netted.orders:
        quantity = _qty(order.quantity)
        yield f"  net: {order.side} {quantity} {order.symbol} @ ~{order.reference_price}"


def _execution_lines(report: RunReport) -> Iterator[str]:
    execution = report.execution
    if execution is None:
        return
    yield f"executed: {execution.crosses} cross(es), then sells, then buys"
    for outcome in (*execution.sells, *execution.buys):
        order, result = outcome.order, outcome.result
        why = f" ({result.reason})" if result.reason else ""
        yield (
            f"  {order.side} {_qty(order.quantity)} {order.symbol}: {result.outcome}, "
            f"filled {_qty(result.filled)}{why}"
        )


def _qty(quantity: Decimal) -> str:
    """A quantity without trailing zeros (308, not 308.000000000)."""
    return f"{quantity.normalize():f}"
