"""A few alpaca-py clients shared by concurrent calls, each call on a worker thread.

alpaca-py's REST clients are synchronous and a `requests.Session` is not
thread-safe, so each concurrent call borrows its own client and runs on a thread
off the event loop. A client whose call was abandoned (cancelled, or timed out
while its thread may still be using it) is replaced, never lent again.

An abandoned call can still reach the server after its caller gave up (a POST slow
on the wire); `quiet()` waits for the threads of the calls made so far to return, so
that what is asked of the server next sees the effects of everything already sent.
A call given up on before a thread took it is never sent at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Generic, TypeVar, cast

C = TypeVar("C")
T = TypeVar("T")


class _Call:
    """One call's progress, shared by the loop and its thread: queued, then running, or
    dropped when its caller gave up before a thread took it (it never runs then)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state = "queued"
        self.ended = asyncio.Event()

    def start(self) -> bool:
        with self.lock:
            if self.state == "dropped":
                return False
            self.state = "running"
            return True

    def drop(self) -> bool:
        """True when it had not started: nothing of it reached the server."""
        with self.lock:
            if self.state == "queued":
                self.state = "dropped"
                return True
            return False


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
        self._calls: set[_Call] = set()  # started or queued, abandoned ones included

    async def quiet(self) -> None:
        """Until every call made before now has returned or was dropped unstarted,
        including calls whose callers gave up (later calls are not waited for)."""
        await asyncio.gather(*(call.ended.wait() for call in list(self._calls)))

    async def call(self, fn: Callable[[C], T]) -> T:
        """`fn(client)` on a worker thread; `timeout` backs up the client's own."""
        client = await self._clients.get()
        loop = asyncio.get_running_loop()
        call = _Call()

        def tracked(c: C) -> T | None:
            if not call.start():
                return None  # given up on while queued: never sent
            try:
                return fn(c)
            finally:
                with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits
                    loop.call_soon_threadsafe(self._ended, call)

        self._calls.add(call)
        try:
            future = loop.run_in_executor(self._executor, tracked, client)
        except BaseException:
            self._ended(call)
            raise
        try:
            result = await asyncio.wait_for(future, self._timeout)
        except (TimeoutError, asyncio.CancelledError):
            if call.drop():
                self._ended(call)
            self._clients.put_nowait(self._make())  # the thread may still use `client`
            raise
        except BaseException:
            self._clients.put_nowait(client)
            raise
        self._clients.put_nowait(client)
        return cast(T, result)

    def _ended(self, call: _Call) -> None:
        self._calls.discard(call)
        call.ended.set()
