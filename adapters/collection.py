"""Collecting cyclic garbage rarely while a rebuild runs.

A rebuild allocates millions of short-lived containers (records, changes, rows)
that reference counting frees anyway. At CPython's default thresholds the
cyclic collector ran hundreds of times a second and kept re-scanning the
long-lived heap: a third of a rebuild's time. With the young generation
collected every 50,000 allocations instead of 700, reading and projecting the
log went from 23.6k/26.7k to 43.7k/45.9k events/s (``bench.content``, A/B in
turns), the same as with the collector off.

Only while a rebuild runs: a served process keeps CPython's thresholds, since
there rarer sweeps would let reference cycles that hold large objects (an
exception's traceback holding a request body) pile up, and nothing measured
there gained from it. The thresholds are the process's, so they are raised by
the first rebuild that starts and put back by the last one that ends.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

BULK_THRESHOLDS = (50_000, 20, 20)


class _Raised:
    depth = 0
    saved: tuple[int, int, int] | None = None


@contextmanager
def collecting_rarely() -> Iterator[None]:
    if _Raised.depth == 0:
        _Raised.saved = gc.get_threshold()
        gc.set_threshold(*BULK_THRESHOLDS)
    _Raised.depth += 1
    try:
        yield
    finally:
        _Raised.depth -= 1
        if _Raised.depth == 0 and _Raised.saved is not None:
            gc.set_threshold(*_Raised.saved)
            _Raised.saved = None
