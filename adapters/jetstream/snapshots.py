"""Aggregate snapshots in a JetStream KV bucket (``KV_INK_SNAPSHOTS`` in streams.yaml).

Implements ``commands.ports.SnapshotStore``. A snapshot is a shortcut, so
nothing here may fail a load or a command: a missing, unreadable or
unreachable snapshot is None, and a write that does not land is dropped.

* Keys are ``<code>.<aggregate type>.<id>``. ``code`` is a hash of the domain
  package's source and the ``eventsourcing`` library's version, because a
  snapshot is only right for the code that folded it: after an upgrade the
  old snapshots are simply not found (and age out with the bucket's
  ``max_age``), and processes of two versions during a rolling upgrade keep
  snapshots of their own instead of misreading each other's.
* One message per key (history 1). Writes happen in the background, at most
  ``in_flight`` at once (more are dropped), each bounded by ``timeout``; a
  snapshot bigger than a NATS message is not written.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.metadata
from pathlib import Path

import orjson
import structlog
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js.errors import APIError, NotFoundError

import domain
from domain.ids import is_id
from domain.snapshot import Taken

log = structlog.get_logger(__name__)

BUCKET = "INK_SNAPSHOTS"
_HEADROOM = 1024  # the PUB line and headers around a snapshot's bytes


def code_fingerprint() -> str:
    """16 hex digits naming the code that folds aggregates: the domain's source and eventsourcing's version."""
    digest = hashlib.sha256(importlib.metadata.version("eventsourcing").encode())
    for path in sorted(Path(domain.__file__).parent.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class JetStreamSnapshots:
    def __init__(
        self, nc: Client, code: str, *, bucket: str = BUCKET, timeout: float = 2.0, in_flight: int = 16
    ) -> None:
        self._nc = nc
        self._js = nc.jetstream(timeout=timeout)
        self._stream = f"KV_{bucket}"
        self._prefix = f"$KV.{bucket}.{code}"
        self._timeout = timeout
        self._in_flight = in_flight
        self._writing: set[asyncio.Task[None]] = set()
        self.written = 0
        self.dropped = 0

    def _subject(self, aggregate_type: str, aggregate_id: str) -> str:
        return f"{self._prefix}.{aggregate_type}.{aggregate_id}"

    async def get(self, aggregate_type: str, aggregate_id: str) -> Taken | None:
        if not is_id(aggregate_id):  # never a raw request token in a subject
            return None
        try:
            msg = await self._js.get_msg(self._stream, subject=self._subject(aggregate_type, aggregate_id), direct=True)
        except NotFoundError:
            return None
        except (NatsError, APIError, asyncio.TimeoutError, OSError) as exc:
            log.info("snapshot.unreadable", aggregate_type=aggregate_type, reason=repr(exc))
            return None
        data = msg.data or b""
        try:
            return Taken.from_json(orjson.loads(data), size=len(data))
        except orjson.JSONDecodeError:
            return None

    def keep(self, aggregate_type: str, aggregate_id: str, taken: Taken) -> None:
        if not is_id(aggregate_id) or len(self._writing) >= self._in_flight:
            self.dropped += 1
            return
        try:
            payload = orjson.dumps(taken.to_json())
        except TypeError:  # what orjson cannot write (an integer wider than 64 bits, a lone surrogate)
            self.dropped += 1
            return
        if len(payload) + _HEADROOM > self._nc.max_payload:
            self.dropped += 1
            return
        task = asyncio.get_running_loop().create_task(self._write(self._subject(aggregate_type, aggregate_id), payload))
        self._writing.add(task)
        task.add_done_callback(self._writing.discard)

    async def _write(self, subject: str, payload: bytes) -> None:
        try:
            await self._js.publish(subject, payload, timeout=self._timeout)
            self.written += 1
        except (NatsError, APIError, asyncio.TimeoutError, OSError) as exc:
            self.dropped += 1
            log.info("snapshot.not_written", reason=repr(exc))

    async def close(self) -> None:
        """Let the writes under way finish (briefly), then stop the rest."""
        if self._writing:
            _, late = await asyncio.wait(set(self._writing), timeout=self._timeout)
            for task in late:
                task.cancel()
            if late:
                await asyncio.gather(*late, return_exceptions=True)
