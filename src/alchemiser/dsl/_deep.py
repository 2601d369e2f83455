"""Run tree walks on a worker thread with a large stack.

The parser builds trees without recursion, but the evaluator and the printer
walk them recursively; real files nest 288 levels and the language must handle
1,000. One long-lived worker thread with a big stack and a raised recursion
limit does those walks; calls made on that thread run directly.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

DEEP_STACK_BYTES = 512 * 1024 * 1024
DEEP_RECURSION_LIMIT = 60_000
_THREAD_PREFIX = "dsl-deep"

_lock = threading.Lock()
_executors: list[ThreadPoolExecutor] = []


def _worker() -> ThreadPoolExecutor:
    with _lock:
        if not _executors:
            # The limit is per interpreter; it is only raised, never lowered, so
            # concurrent callers never see it shrink under them.
            if sys.getrecursionlimit() < DEEP_RECURSION_LIMIT:
                sys.setrecursionlimit(DEEP_RECURSION_LIMIT)
            previous = threading.stack_size(DEEP_STACK_BYTES)
            try:
                executor = ThreadPoolExecutor(1, thread_name_prefix=_THREAD_PREFIX)
                executor.submit(int).result()  # start the thread while the size is set
            finally:
                threading.stack_size(previous)
            _executors.append(executor)
        return _executors[0]


def run_deep(fn: Callable[[], T]) -> T:
    """Call `fn` on the big-stack worker thread and return (or raise) its result."""
    if threading.current_thread().name.startswith(_THREAD_PREFIX):
        return fn()
    return _worker().submit(fn).result()
