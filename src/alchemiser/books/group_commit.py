"""Group commit: many callers' small ledger writes in one transaction.

A hundred walks stepping at once each record an order before sending it; written
one transaction each, the statements' round trips (not Postgres) bound how fast
the walks can go. Here the first write goes at once, and whatever arrives while a
transaction is in flight is written together in the next one. A caller still
awaits its own write, so "recorded before sent" holds; `post` is for writes that
nobody waits on (an order's final status), and `flush` waits for them.

A batch that fails is written again item by item, so one bad item (or the kill
switch) fails only its own caller.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alchemiser.books.retry import transact
from alchemiser.logging import get_logger

log = get_logger(__name__)

T = TypeVar("T")
R = TypeVar("R")
WriteMany = Callable[[AsyncConnection, Sequence[T]], Awaitable[Sequence[R]]]


class PostedWriteFailed(Exception):
    """A write nobody waited on failed: what was read after it would be incomplete."""


class GroupCommit(Generic[T, R]):
    """`await submit(item)` → `write_many(conn, [..., item, ...])[i]`, committed."""

    def __init__(
        self,
        engine: AsyncEngine,
        write_many: WriteMany[T, R],
        name: str,
        *,
        on_failure: Callable[[T, BaseException], None] | None = None,
    ) -> None:
        self.engine = engine
        self._write_many = write_many
        self._name = name
        self._on_failure = on_failure
        self._failures = 0  # posted writes that failed since the last flush
        self._pending: list[tuple[T, asyncio.Future[R] | None]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._add(item, future)
        return await future

    def post(self, item: T) -> None:
        """Write without waiting; a failure is logged (`flush` waits for it)."""
        self._add(item, None)

    async def flush(self) -> None:
        """Wait until every posted write is done; raise if any failed since the last flush."""
        while self._writer is not None:
            await asyncio.shield(self._writer)
        failures, self._failures = self._failures, 0
        if failures:
            raise PostedWriteFailed(f"{failures} {self._name} write(s) failed (logged above)")

    def _failed(self, item: T, exc: BaseException) -> None:
        self._failures += 1
        if self._on_failure is not None:
            self._on_failure(item, exc)

    def _add(self, item: T, future: asyncio.Future[R] | None) -> None:
        self._pending.append((item, future))
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain(), name=f"group-commit-{self._name}")

    async def _drain(self) -> None:
        batch: list[tuple[T, asyncio.Future[R] | None]] = []
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._write(batch)
        except BaseException as exc:  # cancelled (shut down): no caller may wait forever
            for item, future in batch + self._pending:
                if future is None:
                    self._failed(item, exc)
                elif not future.done():
                    future.cancel()
            self._pending = []
            raise
        finally:
            self._writer = None

    async def _write(self, batch: list[tuple[T, asyncio.Future[R] | None]]) -> None:
        items = [item for item, _ in batch]
        try:
            results = await transact(self.engine, lambda conn: self._write_many(conn, items))
        except Exception as exc:
            if len(batch) > 1:  # find the item at fault: each alone
                for one in batch:
                    await self._write([one])
                return
            item, future = batch[0]
            if future is not None:
                if not future.done():
                    future.set_exception(exc)
                return
            log.error(
                "ledger write failed", writer=self._name, error=f"{type(exc).__name__}: {exc}"
            )
            self._failed(item, exc)
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future is not None and not future.done():
                future.set_result(result)
