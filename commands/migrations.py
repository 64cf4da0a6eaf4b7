"""Migration runs: what a user asks for, what a runner records, and what it reads first.

A user requests a run (dry by default) or the revert of a completed one;
everything a request depends on is checked before anything is written: the
target schema is the user's, the source version exists and a chain of
transforms leads from it to the target (else 422), the bucket is the user's,
and a run from X to Y that already completed is asked again only while some
of the user's blobs are still on X (else 409).

The runner (``adapters/jobs/migrations.py``) records every step as a command
through the bus, like a job's: start, one progress event per batch, the
outcome. Each blob is written with the version the runner read
(``WriteMigratedBlob``): a blob an editor changed meanwhile is refused
(``ConcurrencyError``), never overwritten. Its command id is derived from the
run, the blob and that version, so a runner that takes over a run after a
crash cannot write the same change twice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from domain.blob import Blob, check_data
from domain.errors import ConcurrencyError, Conflict, FieldError, NotFound, ValidationFailed, invalid
from domain.ids import is_id
from domain.limits import Limits
from domain.migration import Migration
from domain.schema import SchemaVersion, check_version, parse_schema_id, schema_id

from commands.authorization import changeable, ensure_owner, require_actor
from commands.buckets import owned_bucket
from commands.bus import Handler
from commands.ports import MigrationFinder
from commands.repository import Context, Repository, Saved
from commands.schemas import ResolvedSchema, SchemaRegistry


@dataclass(frozen=True, slots=True)
class RequestMigration:
    schema_id: str
    from_version: str
    bucket_id: str | None = None
    dry_run: bool = True


@dataclass(frozen=True, slots=True)
class RevertMigration:
    migration_id: str


# -- the runner's commands ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StartMigration:
    migration_id: str
    runner: str
    total: int


@dataclass(frozen=True, slots=True)
class RecordMigrationProgress:
    migration_id: str
    attempt: int
    migrated: int
    failed: int
    skipped: int
    errors: list[dict[str, str]]
    changes: list[list[Any]]


@dataclass(frozen=True, slots=True)
class CompleteMigration:
    migration_id: str
    attempt: int


@dataclass(frozen=True, slots=True)
class FailMigration:
    migration_id: str
    error: str
    attempt: int | None = None


@dataclass(frozen=True, slots=True)
class StartRevert:
    migration_id: str
    runner: str


@dataclass(frozen=True, slots=True)
class RecordRevertProgress:
    migration_id: str
    attempt: int
    reverted: list[str]
    skipped: list[str]


@dataclass(frozen=True, slots=True)
class CompleteRevert:
    migration_id: str
    attempt: int


@dataclass(frozen=True, slots=True)
class StopRevert:
    migration_id: str
    error: str
    attempt: int


@dataclass(frozen=True, slots=True)
class WriteMigratedBlob:
    """One blob of a run: ``ConcurrencyError`` unless it is still at ``expected_version``."""

    blob_id: str
    expected_version: int
    schema_id: str
    data: Any
    migration_id: str
    revert: bool = False


def blob_write_id(migration_id: str, blob_id: str, expected_version: int, revert: bool) -> str:
    """The command id of one blob's write in a run: the same write, retried or taken over, lands once."""
    text = f"{migration_id}\x00{blob_id}\x00{expected_version}\x00{int(revert)}"
    return "mig-" + hashlib.sha256(text.encode()).hexdigest()[:40]


class MigrationHandlers:
    def __init__(self, repository: Repository, schemas: SchemaRegistry, finder: MigrationFinder,
                 limits: Limits = Limits()) -> None:
        self._repo = repository
        self._schemas = schemas
        self._finder = finder
        self._limits = limits

    def handlers(self) -> dict[type, Handler]:
        return {RequestMigration: self.request, RevertMigration: self.revert, StartMigration: self.start,
                RecordMigrationProgress: self.progress, CompleteMigration: self.complete,
                FailMigration: self.fail, StartRevert: self.start_revert, RecordRevertProgress: self.revert_progress,
                CompleteRevert: self.complete_revert, StopRevert: self.stop_revert, WriteMigratedBlob: self.write_blob}

    # -- users ----------------------------------------------------------------------------------

    async def request(self, cmd: RequestMigration, ctx: Context) -> Saved[Migration]:
        owner_id = require_actor(ctx.actor)
        target = await self._schemas.resolve(cmd.schema_id)
        owner = await self._schemas.owner(target.name)
        ensure_owner(owner_id, owner, "schema")
        check_version(cmd.from_version, "/from_version")
        source_id = schema_id(target.name, cmd.from_version)
        try:
            await self._schemas.resolve(source_id)
        except NotFound:
            raise invalid("/from_version", f"{target.name} has no version {cmd.from_version}") from None
        path = await self._schemas.migration_path(target.name, cmd.from_version, target.version)
        if path is None:
            raise invalid("/schema_id", f"no chain of migrations leads from {source_id} to {target.id}")
        if cmd.bucket_id is not None:
            await owned_bucket(self._repo, ctx, cmd.bucket_id)
        position = await self._repo.last_position()
        if await self._finder.completed_run(owner_id, source_id, target.id, cmd.bucket_id, position):
            left = await self._finder.migration_candidates(owner_id, [source_id], cmd.bucket_id, position)
            if not left:
                raise Conflict(f"a migration from {source_id} to {target.id} has completed and no blob of "
                               f"yours is on {source_id} any more")
        return await self._repo.execute(
            Migration, None,
            lambda _: Migration.request(owner_id, target.id, source_id, cmd.bucket_id, cmd.dry_run), ctx,
        )

    async def revert(self, cmd: RevertMigration, ctx: Context) -> Saved[Migration]:
        migration_id = cmd.migration_id
        if not is_id(migration_id):
            raise NotFound(f"migration {migration_id}")

        def decide(current: Migration | None) -> Migration:
            run = changeable(ctx.actor, "migration", migration_id, current, None)
            run.request_revert()
            return run

        return await self._repo.execute(Migration, migration_id, decide, ctx)

    # -- the runner -------------------------------------------------------------------------------

    async def _transition(self, migration_id: str, ctx: Context, change: Any) -> Saved[Migration]:
        def decide(current: Migration | None) -> Migration:
            if current is None:
                raise NotFound(f"migration {migration_id}")
            change(current)
            return current

        return await self._repo.execute(Migration, migration_id, decide, ctx)

    async def start(self, cmd: StartMigration, ctx: Context) -> Saved[Migration]:
        return await self._transition(cmd.migration_id, ctx, lambda run: run.start(cmd.runner, cmd.total))

    async def progress(self, cmd: RecordMigrationProgress, ctx: Context) -> Saved[Migration]:
        return await self._transition(cmd.migration_id, ctx, lambda run: run.progress(
            cmd.attempt, cmd.migrated, cmd.failed, cmd.skipped, cmd.errors, cmd.changes))

    async def complete(self, cmd: CompleteMigration, ctx: Context) -> Saved[Migration]:
        return await self._transition(cmd.migration_id, ctx, lambda run: run.complete(cmd.attempt))

    async def fail(self, cmd: FailMigration, ctx: Context) -> Saved[Migration]:
        return await self._transition(cmd.migration_id, ctx, lambda run: run.fail(cmd.error, cmd.attempt))

    async def start_revert(self, cmd: StartRevert, ctx: Context) -> Saved[Migration]:
        return await self._transition(cmd.migration_id, ctx, lambda run: run.start_revert(cmd.runner))

    async def revert_progress(self, cmd: RecordRevertProgress, ctx: Context) -> Saved[Migration]:
        return await self._transition(cmd.migration_id, ctx,
                                      lambda run: run.revert_progress(cmd.attempt, cmd.reverted, cmd.skipped))

    async def complete_revert(self, cmd: CompleteRevert, ctx: Context) -> Saved[Migration]:
        return await self._transition(cmd.migration_id, ctx, lambda run: run.complete_revert(cmd.attempt))

    async def stop_revert(self, cmd: StopRevert, ctx: Context) -> Saved[Migration]:
        return await self._transition(cmd.migration_id, ctx, lambda run: run.stop_revert(cmd.error, cmd.attempt))

    async def write_blob(self, cmd: WriteMigratedBlob, ctx: Context) -> Saved[Blob]:
        def decide(current: Blob | None) -> Blob:
            if current is None or current.deleted:
                raise NotFound(f"blob {cmd.blob_id}")
            if current.version != cmd.expected_version:
                raise ConcurrencyError(f"blob {cmd.blob_id} is at version {current.version}, not "
                                       f"{cmd.expected_version}")
            current.migrate(cmd.schema_id, cmd.data, self._limits, migration_id=cmd.migration_id,
                            revert=cmd.revert)
            return current

        return await self._repo.execute(Blob, cmd.blob_id, decide, ctx)


# -- reads ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chain:
    """The transforms from a run's source version to its target, in order, and the target to validate against."""

    steps: list[SchemaVersion]
    target: ResolvedSchema


class MigrationReads:
    """What a runner reads from the log before and while it runs a migration."""

    def __init__(self, repository: Repository, schemas: SchemaRegistry, finder: MigrationFinder,
                 limits: Limits = Limits()) -> None:
        self._repo = repository
        self._schemas = schemas
        self.finder = finder
        self._limits = limits

    async def migration(self, migration_id: str) -> Saved[Migration] | None:
        return await self._repo.get_and_keep(Migration, migration_id)

    async def blob(self, blob_id: str) -> Blob | None:
        saved = await self._repo.get(Blob, blob_id)
        return saved.aggregate if saved is not None else None

    async def blob_at(self, blob_id: str, version: int) -> Blob | None:
        """The blob as it was at ``version`` (what a revert puts back)."""
        found = await self._repo.at_version(Blob, blob_id, version)
        return found if found is not None and found.version == version else None

    async def chain(self, run: Migration) -> Chain | None:
        target = await self._schemas.resolve(run.schema_id)
        name, from_version = parse_schema_id(run.from_schema_id)
        assert from_version is not None
        steps = await self._schemas.migration_path(name, from_version, target.version)
        return Chain(steps, target) if steps is not None else None

    async def check(self, target: ResolvedSchema, data: Any) -> list[FieldError]:
        """What keeps ``data`` from being written on ``target``: more than the log holds, or the schema's errors.
        A dry run asks the same, so it counts what a real run would."""
        try:
            check_data(data, self._limits, "the migrated data")
        except ValidationFailed as exc:
            return list(exc.errors) or [FieldError("", exc.reason)]
        return await self._schemas.problems(target, data)

    async def last_position(self) -> int:
        return await self._repo.last_position()

