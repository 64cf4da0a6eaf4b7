"""Ports: what command handlers need from the outside world, as Protocols.

Handlers never see nats, asyncpg or aiohttp; the composition root injects the
adapters that implement these.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from domain.errors import FieldError
from domain.recorded import NewEvent, Recorded
from domain.snapshot import Taken


@dataclass(frozen=True, slots=True)
class Appended:
    """Where an append landed; ``duplicate`` when the command id was already in
    the log (a retry), in which case ``position`` is the original event's."""

    position: int
    duplicate: bool = False
    size: int = 0
    """Bytes of the event's payload as stored (0 when unknown)."""


@dataclass(frozen=True, slots=True)
class Guard:
    """An append that lands only while another aggregate's last event is still at ``position``:
    what a creation checked of it (a blob's bucket, a bucket's parent) cannot change between
    the check and the append (the log refuses it with ``ConcurrencyError`` instead).

    The log can check one subject per append, and for a creation that one is free: a new
    aggregate with a made-up id (``domain.ids.new_id``) cannot exist yet, so the guard takes
    the place of the creation's own "no event yet" check. Hence only with
    ``expected_position`` 0 and a made-up id."""

    aggregate_type: str
    aggregate_id: str
    position: int


class LogCursor(Protocol):
    """A reader's place in the log."""

    async def next_batch(self, max_size: int, timeout: float | None) -> list[Recorded]:
        """Up to ``max_size`` next events in order, as soon as there is one;
        ``[]`` when none arrived within ``timeout`` seconds (None: wait)."""
        ...

    async def close(self) -> None: ...


class EventStore(Protocol):
    """The log.

    ``expected_position`` is the position of the aggregate's last event as the
    writer saw it (0: the aggregate must not exist yet). A mismatch raises
    ``domain.errors.ConcurrencyError``. ``command_id`` makes a retried append
    land once. ``guard``: see ``Guard`` (a creation only). Raises ``Unavailable`` when the log is unreachable (outcome
    unknown: retry with the same command id) and ``EventTooLarge`` when the
    event cannot be stored at all.
    """

    guards: bool
    """Whether ``append`` takes a ``guard`` (a store may not: see ``adapters.jetstream.event_store``)."""

    async def append(
        self,
        aggregate_type: str,
        aggregate_id: str,
        event: NewEvent,
        expected_position: int,
        command_id: str,
        guard: Guard | None = None,
    ) -> Appended: ...

    async def load(
        self, aggregate_type: str, aggregate_id: str, *, until_position: int | None = None, from_position: int = 1,
        limit: int | None = None, max_bytes: int | None = None,
    ) -> list[Recorded]:
        """The aggregate's events with positions from ``from_position`` (to ``until_position``), in order.

        Without ``limit`` and ``max_bytes``, all of them (read from the log in requests bounded in
        bytes). With them, a page: the first events, at most ``limit`` of them and at most
        ``max_bytes`` of event data (``Recorded.size``), except that the first event always comes
        whatever its size; the next page starts after the last event's position."""
        ...

    async def load_page(
        self, aggregate_type: str, aggregate_id: str, *, from_position: int = 1, until_position: int | None = None,
        max_bytes: int, limit: int | None = None,
    ) -> tuple[list[Recorded], bool]:
        """A page as ``load(max_bytes=..., limit=...)`` answers it, and whether more events may follow in
        the bounds (False only when the log said there are none): a fold reads page after page without
        asking once more for an empty one."""
        ...

    async def has_events_after(self, aggregate_type: str, aggregate_id: str, position: int) -> bool:
        """Whether the aggregate has an event after ``position`` (what a kept copy is checked by)."""
        ...

    async def last_before(self, aggregate_type: str, aggregate_id: str, position: int) -> Recorded | None:
        """The aggregate's last event at or before ``position`` (None: it has none there): the version
        a load at a past position ends at, so it can start from the snapshot just below it."""
        ...

    def read_all(self, from_position: int = 1) -> AsyncIterator[Recorded]: ...

    async def open_cursor(self, from_position: int = 1) -> LogCursor:
        """The log from ``from_position`` on, in order, then live events, read in batches."""
        ...

    def read_span(self, from_position: int, to_position: int) -> AsyncIterator[list[Recorded]]:
        """Every event from ``from_position`` to ``to_position`` (already in the log), in order,
        in batches; then it ends. The fastest way through a known stretch (a rebuild)."""
        ...

    async def read_range(
        self, aggregate_type: str, from_position: int, until_position: int, *,
        aggregate_id: str | None = None, limit: int = 1000, max_bytes: int | None = None,
    ) -> list[Recorded]:
        """Up to ``limit`` events of one aggregate type (or of one aggregate), in order, with
        positions from ``from_position`` to ``until_position`` inclusive: a bounded stretch of
        the log read through a subject filter (what a live subscription replays after ``since``).
        One request, bounded in bytes (and by ``max_bytes`` when given: the event that reaches it is
        included), so it may answer fewer than ``limit`` events, never none when there is one, however
        large: the rest follows from after the last position answered."""
        ...

    async def last_position(self) -> int: ...

    async def event_at(self, position: int) -> Recorded | None: ...


class SnapshotStore(Protocol):
    """Where aggregates' snapshots are kept: a shortcut for loading, never the truth.

    ``get`` answers None when there is none, when it cannot be read, and when
    the store is unreachable (the caller then folds the log, which says whether
    the log is reachable). ``keep`` encodes ``taken`` before it returns (the
    caller's aggregate may change right after) and writes it in the
    background; it never raises, and a snapshot it could not write is simply
    not there.

    ``rung`` 0 is the aggregate's latest snapshot, which each keep replaces;
    rung ``r`` > 0 is the one taken at the aggregate's version ``r`` times the
    repository's ``rung_events``, kept beside it, so that a load at a past
    position starts near it (``commands/repository.py``, "Rungs"). Rungs never
    take the room of latest snapshots among the writes under way.
    """

    async def get(self, aggregate_type: str, aggregate_id: str, rung: int = 0) -> Taken | None: ...

    def keep(self, aggregate_type: str, aggregate_id: str, taken: Taken, rung: int = 0,
             max_bytes: int | None = None) -> bool:
        """Whether the write was taken on (not whether it landed): not when ``taken`` encodes to more
        than ``max_bytes``, nor when too many writes are under way."""
        ...


class CommandIndex(Protocol):
    """Where a keyed command's event is in the log, as a read model indexed it.

    ``command_position`` answers the index's checkpoint and the position of the aggregate's
    event with that command id, when such an event is at or before the checkpoint (the
    first, if a command landed twice); the events after the checkpoint are not in it.
    It may raise ``Unavailable``. Only command ids that are not UUIDs are indexed
    (``projections/commands.py``).
    """

    async def command_position(self, aggregate_type: str, aggregate_id: str, command_id: str) -> tuple[int, int | None]:
        ...


class Unavailable(Exception):
    """A store is unreachable (the log or a read model). For a write the outcome
    is unknown: retrying with the same command id is safe and lands once."""

    def __init__(self, reason: str = "", retry_after: float = 1.0) -> None:
        self.reason = reason
        self.retry_after = retry_after
        super().__init__(reason)


class EventTooLarge(Exception):
    """An event that cannot fit in one message of the log; ``limit`` is in bytes."""

    def __init__(self, reason: str = "", limit: int = 0) -> None:
        self.reason = reason
        self.limit = limit
        super().__init__(reason)


class SchemaValidator(Protocol):
    """Checks documents against registered JSON Schemas.

    Schemas are user code, so both calls are bounded (time, memory) and run
    off the event loop. ``validate`` answers the data's errors; it raises
    ``ValidationFailed`` when the data could not be judged (the schema cannot
    be used, or the call went over its budget) and ``Unavailable`` when no
    validator is free.
    """

    async def check_schema(self, schema: dict[str, Any]) -> list[FieldError]: ...

    async def validate(self, schema_key: str, schema: dict[str, Any], data: Any) -> list[FieldError]: ...


class SandboxError(Exception):
    """User JavaScript failed: it threw, ran out of time or memory, or returned
    something that is not JSON. The message is safe to show to its author."""


class Sandbox(Protocol):
    """Runs user JavaScript with no I/O, a time limit and a memory limit, never in
    a way that can take the caller's process down.

    ``source`` is the body of a function (as ``new Function(source)`` reads it)
    that declares ``function``. ``compile_check`` answers None when it compiles
    and declares it, else a readable reason; it runs none of the source.
    ``call`` runs the source's top level, then ``function(argument)``, and raises
    ``SandboxError``. ``call_many`` does the same for each argument in one round
    trip (the top level runs once), answering a result or a ``SandboxError`` per
    argument. Limits default to the sandbox's own; ``timeout_ms`` applies to each
    argument. Cancelling the awaiting task stops the JavaScript. When no worker
    is free in time, ``domain.errors.Unavailable``.
    """

    timeout_ms: int
    """The time limit of a call that names none."""

    async def compile_check(self, source: str, function: str) -> str | None: ...

    async def call(
        self,
        source: str,
        function: str,
        argument: Any,
        *,
        timeout_ms: int | None = None,
        max_memory_mb: int | None = None,
    ) -> Any: ...

    async def call_many(
        self,
        source: str,
        function: str,
        arguments: list[Any],
        *,
        timeout_ms: int | None = None,
        max_memory_mb: int | None = None,
    ) -> list[Any | SandboxError]: ...


class PasswordHasher(Protocol):
    """Slow, salted password hashing (argon2id), off the event loop."""

    async def hash(self, password: str) -> str: ...

    async def verify(self, password_hash: str, password: str) -> bool: ...

    async def verify_dummy(self, password: str) -> None:
        """Spend the time of a verification when there is no account, so timing reveals nothing."""
        ...


class ProcessorTypes(Protocol):
    """The processor types this deployment knows (``adapters.processors``).

    ``check_config`` answers every problem of a type's ``config`` (paths
    under ``/config``), compiling what must compile; ``check_input`` every
    problem of an input document for a job of that type (paths under ``/data``).
    """

    def names(self) -> list[str]: ...

    async def check_config(self, type_name: str, config: dict[str, Any]) -> list[FieldError]: ...

    def check_input(self, type_name: str, config: dict[str, Any], data: Any) -> list[FieldError]: ...


class JobFinder(Protocol):
    """Which jobs of a processor are in a state, from the read model once it has
    reached ``position`` (the commands that need a set of jobs act on each one
    through the log, which decides)."""

    async def job_ids(self, processor_id: str, statuses: tuple[str, ...], position: int) -> list[str]: ...


class MigrationFinder(Protocol):
    """What a migration run reads of the read model, once it has reached ``position``."""

    async def migration_candidates(self, owner_id: str, schema_ids: list[str], bucket_id: str | None,
                                   position: int) -> list[str]:
        """The owner's live blobs on one of ``schema_ids`` (within the bucket and its sub-buckets), oldest first."""
        ...

    async def completed_run(self, owner_id: str, from_schema_id: str, schema_id: str, bucket_id: str | None,
                            position: int) -> bool:
        """Whether a real (not dry) run of the owner from one version to the other, over the same bucket, completed."""
        ...
