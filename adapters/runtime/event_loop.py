"""The event loop every long-running inkstream process runs on.

uvloop where it is installed (a faster event loop: measured 10-20 % more
``GET /v1/auth/me`` per second of one process), else asyncio's own. The
benches run the app through the same function, so what they measure is the
loop users serve on. (A rebuild also collects cyclic garbage less often while
it runs: ``adapters/collection.py``.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main_coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main_coroutine)
    return uvloop.run(main_coroutine)
