"""The kill switch, kept in the database so every process sees it at once.

`halt('*')` stops every new order (the walks check before each one, the run's gate
refuses); `halt(strategy_id)` holds one book as it is: it is not planned until
`resume`. What was filled stays booked; nothing is cancelled by the switch itself.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from alchemiser.books.models import TradingHalt

EVERYTHING = "*"


async def halt(conn: AsyncConnection, scope: str = EVERYTHING, reason: str | None = None) -> None:
    await conn.execute(
        insert(TradingHalt)
        .values(scope=scope, reason=reason)
        .on_conflict_do_update(index_elements=[TradingHalt.scope], set_={"reason": reason})
    )


async def resume(conn: AsyncConnection, scope: str = EVERYTHING) -> bool:
    """Lift a halt; False when there was none."""
    result = await conn.execute(delete(TradingHalt).where(TradingHalt.scope == scope))
    return bool(result.rowcount)


async def halts(conn: AsyncConnection) -> dict[str, str | None]:
    """Every halt in force: scope → reason."""
    rows = await conn.execute(select(TradingHalt.scope, TradingHalt.reason))
    return {scope: reason for scope, reason in rows}
