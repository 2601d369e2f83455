"""A few alpaca-py clients shared by concurrent calls, each call on a worker thread.

alpaca-py's REST clients are synchronous and a `requests.Session` is not
thread-safe, so each concurrent call borrows its own client and runs on a thread
off the event loop. A client whose call was abandoned (cancelled, or timed out
while its thread may still be using it) is replaced, never lent again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Generic, TypeVar

C = TypeVar("C")
T = TypeVar("T")


class ClientPool(Generic[C]):
    def __init__(
        self,
        make: Callable[[], C],
        size: int,
        *,
        timeout: float | None = None,
        executor: Executor | None = None,
    ) -> None:
        self._make = make
        self._timeout = timeout
        self._executor = executor
        self._clients: asyncio.Queue[C] = asyncio.Queue()
        for _ in range(size):
            self._clients.put_nowait(make())

    async def call(self, fn: Callable[[C], T]) -> T:
        """`fn(client)` on a worker thread; `timeout` backs up the client's own."""
        client = await self._clients.get()
        future = asyncio.get_running_loop().run_in_executor(self._executor, fn, client)
        try:
            result = await asyncio.wait_for(future, self._timeout)
        except (TimeoutError, asyncio.CancelledError):
            self._clients.put_nowait(self._make())  # the thread may still use `client`
            raise
        except BaseException:
            self._clients.put_nowait(client)
            raise
        self._clients.put_nowait(client)
        return result
