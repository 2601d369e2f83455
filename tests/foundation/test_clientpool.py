"""ClientPool.quiet: what a stopped run waits for before asking the broker what it has."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from alchemiser.clientpool import ClientPool


async def test_a_call_given_up_on_while_queued_never_runs_and_does_not_hold_quiet() -> None:
    release, ran = threading.Event(), []
    with ThreadPoolExecutor(1) as one_thread:
        pool = ClientPool(object, 2, timeout=0.2, executor=one_thread)
        busy = asyncio.create_task(pool.call(lambda _: release.wait(5)))
        await asyncio.sleep(0.05)  # the only thread is taken
        with pytest.raises(TimeoutError):
            await pool.call(lambda _: ran.append("sent"))  # queued behind it, then given up
        with pytest.raises(TimeoutError):
            await busy  # its caller gives up too, while its thread still runs
        release.set()
        await asyncio.wait_for(pool.quiet(), 2)
        assert ran == []


async def test_quiet_waits_for_an_abandoned_call_but_not_for_calls_made_after_it() -> None:
    first, later = threading.Event(), threading.Event()
    with ThreadPoolExecutor(2) as threads:
        pool = ClientPool(object, 2, timeout=0.1, executor=threads)
        with pytest.raises(TimeoutError):
            await pool.call(lambda _: first.wait(5))  # abandoned, still on its thread
        waiting = asyncio.create_task(pool.quiet())
        await asyncio.sleep(0.1)
        assert not waiting.done()
        newer = asyncio.create_task(pool.call(lambda _: later.wait(5)))
        first.set()
        await asyncio.wait_for(waiting, 2)  # done, though the newer call still runs
        later.set()
        await newer
