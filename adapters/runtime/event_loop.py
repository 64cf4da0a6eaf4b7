"""How every long-running inkstream process runs: its event loop and its garbage collector.

* uvloop where it is installed (a faster event loop: measured 10-20 % more
  ``GET /v1/auth/me`` per second of one process), else asyncio's own.
* The cyclic garbage collector runs its young generation every 50,000
  allocations instead of CPython's 700. A rebuild or a busy API allocates
  millions of short-lived containers (events, rows, requests) that reference
  counting frees anyway; at the default threshold the collector ran hundreds
  of times a second and kept re-scanning the long-lived heap, which cost a
  rebuild about a third of its speed (measured in one process, 60k events,
  three runs each: 23-25k events/s at the default, 33-37k at 50,000, the same
  as with the collector off; in ``bench.content``, reading and projecting
  the log 43-46k against 24-27k events/s, the rebuild 1.01-1.21 of the
  ``executemany`` baseline against 0.68-0.82). Cyclic garbage is still
  collected, only in larger, rarer sweeps.

The benches run the app through the same function, so what they measure is
what users run.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

GC_THRESHOLDS = (50_000, 20, 20)


def run(main_coroutine: Coroutine[Any, Any, T]) -> T:
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main_coroutine)
    return uvloop.run(main_coroutine)
