"""Counts and marks that every API process sees: the shared state of rate and login limits.

* ``JetStreamCounters``: one counter per key on the counter stream ``INK_LIMITS``
  (``allow_msg_counter``, ADR-49). ``add`` publishes ``Nats-Incr`` and the
  ack carries the subject's new total, so increment and read are one atomic
  step on the stream leader: of N concurrent adds each sees a different
  total. Adds to one key that arrive while one is in flight go out together
  as one increment, and each caller gets the total it would have seen alone
  (its own place in the batch): a hot key costs one round trip per batch, not
  per request. Measured on this machine: 31k increments/s single node; on
  the three-node loopback cluster 1.8k/s one at a time, 11-13k/s concurrent.
  (KV compare-and-set under contention managed 849/s.)
* ``JetStreamMarks``: "this key was seen lately", one subject per key on
  ``INK_KNOWN_ADDRESSES`` (the latest message kept, gone after the stream's
  ``max_age``): the addresses an account logged in from.

Keys arrive here already hashed by their callers; nothing here knows what
they count.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import orjson
from nats.aio.client import Client
from nats.js.errors import NotFoundError

INCR = "Nats-Incr"


@dataclass
class _Queued:
    deltas: list[int] = field(default_factory=list)
    futures: list[asyncio.Future[int]] = field(default_factory=list)
    deadline: asyncio.TimerHandle | None = None
    """Fails the batch's callers still waiting ``timeout`` after its first add: one timer per batch,
    not one per caller (a timer per take was about 5 % of a cached GET's CPU)."""


class JetStreamCounters:
    """Implements ``adapters.http.ratelimit.Counters``."""

    def __init__(self, nc: Client, *, stream: str = "INK_LIMITS", prefix: str = "inklimit", timeout: float = 0.5) -> None:
        self._nc = nc
        self._js = nc.jetstream(timeout=timeout)
        self._stream = stream
        self._prefix = prefix
        self._timeout = timeout
        self._queued: dict[str, _Queued] = {}
        self._flushing: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def _subject(self, key: str) -> str:
        return f"{self._prefix}.{key}"

    async def add(self, key: str, delta: int) -> int:
        """Add ``delta`` to the counter ``key``; its total right after this add. Raises ``TimeoutError``
        when no total came within ``timeout`` of its batch's first add (the add may still land)."""
        if not self._nc.is_connected:  # an add now would only wait in the client's buffer
            raise ConnectionError("NATS is not connected")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        queued = self._queued.get(key)
        if queued is None:
            queued = self._queued[key] = _Queued()
            queued.deadline = loop.call_later(self._timeout, _expire, queued.futures)
        queued.deltas.append(delta)
        queued.futures.append(future)
        if key not in self._flushing:
            self._flushing.add(key)
            task = asyncio.create_task(self._flush(key))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await future

    async def _flush(self, key: str) -> None:
        try:
            while (queued := self._queued.pop(key, None)) is not None:
                total = sum(queued.deltas)
                try:
                    ack = await self._js.publish(self._subject(key), b"", headers={INCR: f"{total:+d}"},
                                                 timeout=self._timeout)
                    value = int(ack.val or 0)
                except BaseException as exc:  # noqa: BLE001 - every caller of the batch gets the failure
                    _settled(queued)
                    for future in queued.futures:
                        if not future.done():
                            future.set_exception(exc if isinstance(exc, Exception) else ConnectionError(str(exc)))
                    if not isinstance(exc, Exception):
                        raise
                    continue
                _settled(queued)
                running = value - total  # the total before this batch; each caller in turn after its own delta
                for delta, future in zip(queued.deltas, queued.futures):
                    running += delta
                    if not future.done():
                        future.set_result(running)
        finally:
            self._flushing.discard(key)

    async def get(self, key: str) -> int:
        """The counter's total (0 for one never added to, or gone with its window)."""
        try:
            msg = await self._js.get_last_msg(self._stream, self._subject(key), direct=True)
        except NotFoundError:
            return 0
        return int(orjson.loads(msg.data or b"{}").get("val", "0"))


def _expire(futures: list[asyncio.Future[int]]) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(TimeoutError("the counter did not answer in time"))


def _settled(queued: _Queued) -> None:
    if queued.deadline is not None:
        queued.deadline.cancel()
        queued.deadline = None


class JetStreamMarks:
    """Implements ``adapters.http.login_guard.Marks``: keys seen within the stream's ``max_age``."""

    def __init__(self, nc: Client, *, stream: str = "INK_KNOWN_ADDRESSES", prefix: str = "inkknown",
                 timeout: float = 0.5) -> None:  # fmt: skip
        self._js = nc.jetstream(timeout=timeout)
        self._stream = stream
        self._prefix = prefix
        self._timeout = timeout

    async def mark(self, key: str) -> None:
        await self._js.publish(f"{self._prefix}.{key}", b"", timeout=self._timeout)

    async def seen(self, key: str) -> bool:
        try:
            await self._js.get_last_msg(self._stream, f"{self._prefix}.{key}", direct=True)
        except NotFoundError:
            return False
        return True
