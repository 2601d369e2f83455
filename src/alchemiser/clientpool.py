"""A few alpaca-py clients shared by concurrent calls, each call on a worker thread.

alpaca-py's REST clients are synchronous and a `requests.Session` is not
thread-safe, so each concurrent call borrows its own client and runs on a thread
off the event loop. A client whose call was abandoned (cancelled, or timed out
while its thread may still be using it) is replaced, never lent again.

An abandoned call can still reach the server after its caller gave up (a POST slow
on the wire); `quiet()` waits for every call's thread to return, so that what is
asked of the server next sees the effects of everything already sent.
"""

from __future__ import annotations

import asyncio
import contextlib
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
        self._running = 0  # calls whose thread has not returned, abandoned ones included
        self._quiet = asyncio.Event()
        self._quiet.set()

    async def quiet(self) -> None:
        """Until every call's thread has returned, including calls given up on."""
        await self._quiet.wait()

    async def call(self, fn: Callable[[C], T]) -> T:
        """`fn(client)` on a worker thread; `timeout` backs up the client's own."""
        client = await self._clients.get()
        loop = asyncio.get_running_loop()

        def tracked(c: C) -> T:
            try:
                return fn(c)
            finally:
                with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                    loop.call_soon_threadsafe(self._returned)

        self._running += 1
        self._quiet.clear()
        try:
            future = loop.run_in_executor(self._executor, tracked, client)
        except BaseException:
            self._returned()
            raise
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

    def _returned(self) -> None:
        self._running -= 1
        if self._running == 0:
            self._quiet.set()
