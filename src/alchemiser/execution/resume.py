"""Before a run trades, it settles what earlier runs sent: nothing is sent twice.

Every order the ledger recorded without a final status (the process stopped, or
lost track of it) is looked up at the broker by client order id. One the broker
never received (the process died between recording and sending) is marked
rejected; one still working is cancelled and its final progress booked, so the
run's remaining work is computed from what really filled. An order that will not
settle is reported, and the run does not trade.

Working orders are cancelled rather than adopted by the new walks: the run's
reconciliation gate compares the books with the account next, and an order left
working can fill between the two reads and fail the gate for nothing. Nothing is
lost by it: the walk that resumes re-quotes and replaces at its next step anyway
(a replace loses the queue place too), so a cancelled order costs one round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from alchemiser.books.kinds import FINAL_RANK, ORDER_STATUS_RANK
from alchemiser.books.models import BrokerOrder
from alchemiser.books.retry import transact
from alchemiser.execution.booking import Booker
from alchemiser.execution.broker import Broker, OrderSnapshot
from alchemiser.execution.errors import OrderNotChangeable
from alchemiser.logging import get_logger

log = get_logger(__name__)

NEVER_SENT = "never reached the broker (the process stopped before sending it)"
# How many of the broker's request timeouts after recording an order it is called unsent
# when the broker does not have it (a request the broker received is handled by then).
UNSENT_AFTER_TIMEOUTS = 3
SETTLE_POLLS = 50
SETTLE_POLL_SECONDS = 0.1
FINAL = tuple(status for status, rank in ORDER_STATUS_RANK.items() if rank >= FINAL_RANK)


async def settle_sent_orders(booker: Booker, broker: Broker) -> list[str]:
    """Settle every unfinished order in the ledger; the client order ids still working."""

    async def read(conn: AsyncConnection) -> list[tuple[str, float]]:
        age = func.extract("epoch", func.now() - BrokerOrder.submitted_at)
        rows = await conn.execute(
            select(BrokerOrder.client_order_id, age)
            .where(BrokerOrder.status.not_in(FINAL))
            .order_by(BrokerOrder.id)
        )
        return [(coid, float(seconds)) for coid, seconds in rows]

    still_working = []
    # A stopped run's submit can still be on the wire, and create its order after the
    # lookup below: an order is called unsent only when nothing is on the way...
    quiet = await broker.quiet(broker.timeout * 2)
    # ...and a POST whose answer timed out may still be handled by the broker a little
    # later: an order recorded more recently than this is looked for again once older.
    unsent_after = broker.timeout * UNSENT_AFTER_TIMEOUTS
    unfinished = await transact(booker.engine, read)
    read_at = time.monotonic()
    for client_order_id, age in unfinished:
        found = await broker.find_order(client_order_id)
        young = unsent_after - age - (time.monotonic() - read_at)
        if found is None and quiet and young > 0:
            await asyncio.sleep(young)
            found = await broker.find_order(client_order_id)
        if found is None:
            if quiet:
                booker.rejected(client_order_id, NEVER_SENT)
            else:  # it may yet arrive: settled by the next attempt
                still_working.append(client_order_id)
            continue
        if found.is_open:
            with contextlib.suppress(OrderNotChangeable):
                await broker.cancel(found.id)
            found = await _settled(broker, found)
        await booker.progress(found)
        if found.is_open:
            still_working.append(client_order_id)
    await booker.flush()
    if unfinished:
        log.info("earlier orders settled", orders=len(unfinished), working=len(still_working))
    return still_working


async def _settled(broker: Broker, order: OrderSnapshot) -> OrderSnapshot:
    for _ in range(SETTLE_POLLS):
        order = await broker.order(order.id)
        if not order.is_open:
            return order
        await asyncio.sleep(SETTLE_POLL_SECONDS)
    return order
