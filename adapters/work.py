"""What a request made this process do, counted where the work happens, so that whoever asked can be
charged for it (``adapters.http.middleware``: the work limit).

Requests cost very different amounts. ``GET /v1/blobs/{id}?as_of=`` deep in a long history folds up to
a rung's span of events (about 30 ms of CPU); a plain ``GET`` costs a few hundred microseconds. A limit
per request lets one account keep a core busy with the expensive kind at its request rate; a limit on
the work itself does not. The events read from the log are the measure: folding them is what such a
request spends its time on, and the event store sees every one of them.

The counter is a context variable because the work happens far below the HTTP layer (in the event
store, under the repository and the command handlers); each request runs in its own context, which
the tasks it starts inherit. Work done outside a metered request (projectors, the job runner, the
trigger dispatcher, live connections) is counted nowhere.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

import structlog

log = structlog.get_logger("inkstream.work")

Bill = Callable[[str, int], Awaitable[None]]
"""Charges a user (by id) for work done on their behalf outside their requests: ``Limiters.bill_requests``
(jobs their blob changes triggered) or ``Limiters.bill_written`` (bytes written to the log for them)."""


@dataclass(slots=True)
class Work:
    events: int = 0
    """Events read from the log on the request's behalf."""
    worker_ms: float = 0.0
    """CPU milliseconds worker processes spent on the request's user code and schemas (the JavaScript
    sandbox, schema validation): shared by every user of the process, and one account's slow schema or
    transform could otherwise keep them busy at its request rate."""


_CURRENT: ContextVar[Work | None] = ContextVar("inkstream_work", default=None)


def events_read(count: int) -> None:
    """Count ``count`` events read for the request being served, if one is metered."""
    work = _CURRENT.get()
    if work is not None:
        work.events += count


def worker_time(ms: float) -> None:
    """Count ``ms`` of a worker process's CPU for the request being served, if one is metered."""
    work = _CURRENT.get()
    if work is not None:
        work.worker_ms += ms


@contextmanager
def metered() -> Iterator[Work]:
    """Count the work done in this block (and in the tasks it starts) into the ``Work`` it yields."""
    work = Work()
    token = _CURRENT.set(work)
    try:
        yield work
    finally:
        _CURRENT.reset(token)


@contextmanager
def unmetered() -> Iterator[None]:
    """Count nothing done in this block (and in the tasks it starts) to the request being served: for
    work the system does on its own account while serving it (``commands.repository.Repository``: the
    fold that replaces a missing snapshot)."""
    token = _CURRENT.set(None)
    try:
        yield
    finally:
        _CURRENT.reset(token)


async def billed(bill: Bill | None, user_id: str, amount: int, what: str) -> None:
    """``bill`` the user, if there is one to bill and anything to charge; a charge that does not land
    (the shared counters unreachable past the limiter's own fallback) is logged, never raised: the work
    it stands for is done and recorded."""
    if bill is None or amount <= 0:
        return
    try:
        await bill(user_id, amount)
    except Exception as exc:  # noqa: BLE001
        log.warning("work.bill_lost", what=what, user_id=user_id, amount=amount, error=str(exc) or type(exc).__name__)
