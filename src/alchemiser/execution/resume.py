"""A resumed run first settles what it already sent: nothing is sent twice.

Each order the ledger recorded for the run is looked up at the broker by client
order id. One the broker never received (the process died between recording and
sending) is marked rejected; one still working is cancelled and its final
progress booked, so the run's remaining work is computed from what really filled.
"""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy.ext.asyncio import AsyncConnection

from alchemiser.books import ledger
from alchemiser.books.ledger import BrokerOrderRecord
from alchemiser.books.retry import transact
from alchemiser.execution.booking import Booker, LedgerLink, is_final
from alchemiser.execution.broker import Broker, OrderSnapshot
from alchemiser.execution.errors import OrderNotChangeable
from alchemiser.logging import get_logger

log = get_logger(__name__)

NEVER_SENT = "never reached the broker (the process stopped before sending it)"
SETTLE_POLLS = 50
SETTLE_POLL_SECONDS = 0.1


async def settle_sent_orders(booker: Booker, broker: Broker, run_id: int) -> int:
    """Book, cancel or close every unfinished order of the run; how many were unfinished."""

    async def read(conn: AsyncConnection) -> list[BrokerOrderRecord]:
        return await ledger.find_broker_orders(conn, run_id)

    link = LedgerLink(booker, run_id, ())
    unfinished = [o for o in await transact(booker.engine, read) if not is_final(o.status)]
    for order in unfinished:
        found = await broker.find_order(order.client_order_id)
        if found is None:
            await link.rejected(order.client_order_id, NEVER_SENT)
            continue
        if found.is_open:
            with contextlib.suppress(OrderNotChangeable):
                await broker.cancel(found.id)
            found = await _settled(broker, found)
        await link.progress(found)
    if unfinished:
        log.info("resumed run settled its orders", run_id=run_id, orders=len(unfinished))
    return len(unfinished)


async def _settled(broker: Broker, order: OrderSnapshot) -> OrderSnapshot:
    for _ in range(SETTLE_POLLS):
        order = await broker.order(order.id)
        if not order.is_open:
            return order
        await asyncio.sleep(SETTLE_POLL_SECONDS)
    return order  # still pending: its progress so far is booked; the stream books the rest
