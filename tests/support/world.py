"""The write side on fakes, built by the real composition root (``bootstrap``).

``World`` is what a unit test of the command handlers needs: the whole graph
from ``adapters.runtime.bootstrap`` on an in-memory event store, a read model
computed from that store, the sandbox and the validation worker processes
(the session's pools), exactly as production wires it.
``world.blobs.create(ctx, ...)`` sends ``CreateBlob(...)`` through the bus.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from adapters.runtime.bootstrap import Services, bootstrap
from adapters.runtime.settings import Settings
from commands.ports import Sandbox, SchemaValidator
from commands.blobs import CreateBlob, DeleteBlob, MigrateBlob, MoveBlob, UpdateBlob
from commands.books import AddChapter, CreateBook, DeleteBook, EditChapter, RemoveChapter, ReorderChapters, UpdateBook
from commands.buckets import CreateBucket, DeleteBucket, UpdateBucket
from commands.repository import Context
from commands.schemas import RegisterSchema, ValidateData
from projections.blobs import BlobProjection
from projections.buckets import BucketProjection
from tests.support.memory_commands import MemoryCommandIndex
from tests.support.memory_snapshots import MemorySnapshots
from tests.support.memory_store import MemoryEventStore
from tests.support.memory_tables import MemoryTables

SECRET = "unit-test-secret-" + "x" * 40


class MemoryReadModel:
    """The part of ``projections.read_model.ReadModel`` the write side asks: bucket emptiness and
    where a command's event is, answered by applying the real projections to memory tables."""

    def __init__(self, store: MemoryEventStore) -> None:
        self._store = store
        self._commands = MemoryCommandIndex(store)

    async def command_position(self, aggregate_type: str, aggregate_id: str, command_id: str) -> tuple[int, int | None]:
        return await self._commands.command_position(aggregate_type, aggregate_id, command_id)

    async def bucket_is_empty(self, bucket_id: str) -> bool:
        tables = MemoryTables()
        for record in self._store.records:
            tables.apply(BucketProjection().changes(record))
            tables.apply(BlobProjection().changes(record))
        return not any(r["parent_id"] == bucket_id for r in tables.rows("buckets")) and not any(
            r["bucket_id"] == bucket_id for r in tables.rows("blob_buckets")
        )


class CaughtUp:
    """``ProjectionPositions`` of a read model computed on demand: always current."""

    def position(self, name: str) -> int:
        return 2**63 - 1

    def reached(self, position: int, names: Iterable[str]) -> bool:
        return True

    async def wait(self, position: int, names: Iterable[str], timeout: float) -> None:
        return None


class _Commands:
    """``calls.name(ctx, *args)`` → ``bus.handle(Command(*args), ctx)``."""

    def __init__(self, world: World, **commands: type) -> None:
        self._world = world
        self._commands = commands

    def __getattr__(self, name: str) -> Any:
        command = self._commands[name]
        return lambda ctx, *args, **kwargs: self._world.services.bus.handle(command(*args, **kwargs), ctx)


class World:
    def __init__(self, sandbox: Sandbox, validators: SchemaValidator, store: MemoryEventStore | None = None) -> None:
        self.store = store or MemoryEventStore()
        self.sandbox = sandbox
        self.validators = validators
        # Snapshots after two events: a blob a command test loads cold goes through one (the caches serve most loads).
        settings = Settings(jwt_secret=SECRET, argon2_time_cost=1, argon2_memory_kib=8, read_wait_seconds=1,
                            snapshot_after_events=2)
        self.snapshots = MemorySnapshots()
        self.services: Services = bootstrap(settings, store=self.store, read_model=MemoryReadModel(self.store),
                                            positions=CaughtUp(), sandbox=self.sandbox, validator=self.validators,
                                            snapshots=self.snapshots)
        self.repo = self.services.repo
        self.schemas = _Commands(self, register=RegisterSchema, validate=ValidateData)
        self.buckets = _Commands(self, create=CreateBucket, update=UpdateBucket, delete=DeleteBucket)
        self.blobs = _Commands(self, create=CreateBlob, update=UpdateBlob, move=MoveBlob, migrate=MigrateBlob,
                               delete=DeleteBlob)
        self.books = _Commands(self, create=CreateBook, update=UpdateBook, delete=DeleteBook, add_chapter=AddChapter,
                               edit_chapter=EditChapter, remove_chapter=RemoveChapter, reorder=ReorderChapters)

    async def run(self, command: object, ctx: Context) -> Any:
        return await self.services.bus.handle(command, ctx)
