"""Honouring a cancellation that a library swallowed on the way.

Background loops (the shared log reader, the projectors, the live router, the
job runner, the positions watches) run until their task is cancelled. On
Python 3.11 a cancellation can be lost before it reaches them: ``asyncio.wait_for``
returns the result instead of raising when the cancellation arrives as its
future completes (nats-py waits for every request that way), and nats-py's
``publish``/``drain`` catch ``CancelledError`` and carry on. The task is then
still marked as cancelling (``Task.cancelling()``), but no ``CancelledError``
will come again: a ``while True`` loop, or a retry loop that catches
``Exception``, would go on for ever, and whoever waits for the task (a
shutdown, the event loop's final ``_cancel_all_tasks``) would wait for ever.
Such loops call ``raise_if_cancelling`` on every turn.
"""

from __future__ import annotations

import asyncio


def cancelling() -> bool:
    """Whether the current task has a cancellation pending that nobody withdrew (``uncancel``)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def raise_if_cancelling() -> None:
    """Raise ``CancelledError`` when the current task was asked to stop, even if the request was swallowed."""
    if cancelling():
        raise asyncio.CancelledError
