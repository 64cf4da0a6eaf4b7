"""Aggregate snapshots in a JetStream KV bucket (``KV_INK_SNAPSHOTS`` in streams.yaml).

Implements ``commands.ports.SnapshotStore``. A snapshot is a shortcut, so
nothing here may fail a load or a command: a missing, unreadable or
unreachable snapshot is None, and a write that does not land is dropped.

* Keys are ``<code>.<aggregate type>.<id>`` for an aggregate's latest
  snapshot, and ``<code>.<aggregate type>.<id>.r<n>`` for its rung ``n`` (the
  snapshot at version ``n`` times the repository's ``rung_events``). ``code`` is a hash of the source
  of what folds an aggregate (the domain package, and the adapter modules
  that turn a message into a ``Recorded``) and the ``eventsourcing``
  library's version, because a snapshot is only right for the code that
  folded it: after an upgrade the old snapshots are simply not found (and age
  out with the bucket's ``max_age``), and processes of two versions during a
  rolling upgrade keep snapshots of their own instead of misreading each
  other's. Without that source (an install of compiled files only) there is
  no hash, and no snapshots.
* A read waits at most ``read_timeout`` (a quarter of a second): a load can
  always fold the log instead. After a read that failed or timed out, reads
  rest for ``rest_seconds``, so that a slow or lost bucket costs one wait, not
  one per load.
* One message per key (history 1). Writes happen in the background, at most
  ``in_flight`` latest snapshots and as many rungs at once (more are dropped;
  rungs never take a latest snapshot's room), each bounded by ``timeout``; a
  snapshot bigger than a NATS message is not written, and none after ``close``.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
import time
from pathlib import Path

import orjson
import structlog
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js.errors import APIError, NotFoundError

import domain
from adapters.jetstream import decoding, event_store
from domain.ids import is_id
from domain.snapshot import Taken

log = structlog.get_logger(__name__)

BUCKET = "INK_SNAPSHOTS"


_FOLDING = [decoding.__file__, event_store.__file__]  # besides the domain package: message → ``Recorded``


def code_fingerprint() -> str | None:
    """16 hex digits naming the code that folds aggregates, or None when its source is not there."""
    sources = sorted(Path(domain.__file__).parent.glob("*.py")) + [Path(f) for f in _FOLDING if f]
    if len(sources) <= len(_FOLDING) or not all(p.suffix == ".py" and p.is_file() for p in sources):
        return None
    digest = hashlib.sha256(importlib.metadata.version("eventsourcing").encode())
    for path in sources:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class JetStreamSnapshots:
    def __init__(
        self, nc: Client, code: str, *, bucket: str = BUCKET, timeout: float = 2.0, read_timeout: float = 0.25,
        rest_seconds: float = 5.0, in_flight: int = 16,
    ) -> None:
        self._nc = nc
        self._js = nc.jetstream(timeout=read_timeout)  # reads; a write passes its own ``timeout``
        self._stream = f"KV_{bucket}"
        self._prefix = f"$KV.{bucket}.{code}"
        self._timeout = timeout
        self._rest_seconds = rest_seconds
        self._resting_until = 0.0
        self._in_flight = in_flight
        self._writing: set[asyncio.Task[None]] = set()
        self._writing_rungs: set[asyncio.Task[None]] = set()
        self._closed = False
        self.written = 0
        self.dropped = 0

    def _subject(self, aggregate_type: str, aggregate_id: str, rung: int = 0) -> str:
        key = f"{self._prefix}.{aggregate_type}.{aggregate_id}"
        return f"{key}.r{rung}" if rung else key

    async def get(self, aggregate_type: str, aggregate_id: str, rung: int = 0) -> Taken | None:
        if not is_id(aggregate_id) or time.monotonic() < self._resting_until:  # never a raw token in a subject
            return None
        try:
            msg = await self._js.get_msg(self._stream, subject=self._subject(aggregate_type, aggregate_id, rung),
                                            direct=True)  # fmt: skip
        except NotFoundError:
            return None
        except (NatsError, APIError, asyncio.TimeoutError, OSError) as exc:
            self._resting_until = time.monotonic() + self._rest_seconds
            log.info("snapshot.unreadable", aggregate_type=aggregate_type, reason=repr(exc),
                     resting_seconds=self._rest_seconds)  # fmt: skip
            return None
        data = msg.data or b""
        try:
            return Taken.from_json(orjson.loads(data), size=len(data))
        except orjson.JSONDecodeError:
            return None

    def keep(self, aggregate_type: str, aggregate_id: str, taken: Taken, rung: int = 0,
             max_bytes: int | None = None) -> bool:
        writing = self._writing_rungs if rung else self._writing  # rungs never crowd out latest snapshots
        if self._closed or not is_id(aggregate_id) or len(writing) >= self._in_flight:
            self.dropped += 1
            return False
        try:
            payload = orjson.dumps(taken.to_json())
        except TypeError:  # what orjson cannot write (an integer wider than 64 bits, a lone surrogate)
            self.dropped += 1
            return False
        if len(payload) > self._nc.max_payload:  # published without headers: the payload is all it counts
            self.dropped += 1
            return False
        if max_bytes is not None and len(payload) > max_bytes:
            return False  # not worth its room (a rung heavier than the events it spans): not a drop
        task = asyncio.get_running_loop().create_task(
            self._write(self._subject(aggregate_type, aggregate_id, rung), payload))
        writing.add(task)
        task.add_done_callback(writing.discard)
        return True

    async def _write(self, subject: str, payload: bytes) -> None:
        try:
            await self._js.publish(subject, payload, timeout=self._timeout)
            self.written += 1
        except (NatsError, APIError, asyncio.TimeoutError, OSError) as exc:
            self.dropped += 1
            log.info("snapshot.not_written", reason=repr(exc))

    async def flush(self) -> None:
        """Wait for the writes under way (each is bounded by ``timeout``)."""
        while self._writing or self._writing_rungs:
            await asyncio.wait(self._writing | self._writing_rungs)

    async def close(self) -> None:
        """Let the writes under way finish (briefly), then stop the rest; write no more."""
        self._closed = True
        under_way = self._writing | self._writing_rungs
        if under_way:
            _, late = await asyncio.wait(under_way, timeout=self._timeout)
            for task in late:
                task.cancel()
            if late:
                await asyncio.gather(*late, return_exceptions=True)
