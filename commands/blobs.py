"""Blob commands: create, update, move, migrate, delete.

Schemas and buckets are read from the log (``Repository.get``), so the write
path needs nothing but the log. Each command loads the blob once and decides
on it once: checks that need I/O (the schema, a bucket, running migrations)
happen inside the decision, on the very aggregate the append is based on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.blob import Blob, check_data
from domain.errors import NotFound, invalid
from domain.ids import is_id
from domain.limits import MAX_BUCKETS_PER_BLOB, Limits
from domain.schema import parse_schema_id

from commands.authorization import changeable, require_actor
from commands.buckets import bucket_guard, guarded, owned_bucket
from commands.bus import Handler
from commands.ports import Sandbox, SandboxError
from commands.repository import Context, Repository, Saved
from commands.schemas import MIGRATE_FUNCTION, ResolvedSchema, SchemaRegistry


@dataclass(frozen=True, slots=True)
class CreateBlob:
    data: Any
    schema_id: str | None = None
    processor_id: str | None = None
    bucket_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UpdateBlob:
    blob_id: str
    data: Any
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class MoveBlob:
    blob_id: str
    from_bucket_id: str
    to_bucket_id: str
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class MigrateBlob:
    blob_id: str
    schema_id: str
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class DeleteBlob:
    blob_id: str
    expected_version: int | None = None


MIGRATE_SECONDS = 5.0
"""What one ``POST /v1/blobs/{id}/migrate`` may spend running its chain of transforms, all steps together
(each step gets its share, at most the sandbox's own limit):
a schema may have a thousand versions, and a chain of 999 transforms of up to a second each held the
process's sandbox workers for minutes for the price of one request. A migration run (``POST
/v1/migrations``) runs long chains in the background, each step over many blobs at once."""


MAX_MIGRATE_STEPS = 100
"""Steps one ``POST /v1/blobs/{id}/migrate`` runs: besides its share of ``MIGRATE_SECONDS``, each costs a
fresh isolate (about 3 ms) and a round trip to a worker, which the share does not count."""


class BlobHandlers:
    def __init__(
        self, repository: Repository, schemas: SchemaRegistry, sandbox: Sandbox, limits: Limits = Limits()
    ) -> None:
        self._repo = repository
        self._schemas = schemas
        self._sandbox = sandbox
        self._limits = limits

    def handlers(self) -> dict[type, Handler]:
        return {CreateBlob: self.create, UpdateBlob: self.update, MoveBlob: self.move,
                MigrateBlob: self.migrate, DeleteBlob: self.delete}

    async def _ensure_valid(self, resolved: ResolvedSchema, data: Any, what: str = "data") -> None:
        """Storable and within the size limit first (cheap, and the validator must not see a
        value nested deeper than the log allows), then against the schema."""
        check_data(data, self._limits, what)
        await self._schemas.ensure_valid(resolved, data, what)

    async def create(self, cmd: CreateBlob, ctx: Context) -> Saved[Blob]:
        """Nothing is appended unless the schema and every bucket exist and the data is valid."""
        owner_id = require_actor(ctx.actor)
        resolved = await self._schemas.resolve(cmd.schema_id) if cmd.schema_id is not None else None
        if len(cmd.bucket_ids) > MAX_BUCKETS_PER_BLOB:  # before loading each of them from the log
            raise invalid("/bucket_ids", f"a blob is filed in at most {MAX_BUCKETS_PER_BLOB} buckets")
        typed_as = resolved.id if resolved is not None else None
        validated = False

        async def attempt(checked: bool) -> Saved[Blob]:
            nonlocal validated
            # the first bucket is checked from what this process keeps and guards the append (no
            # round trip; a stale copy makes the log refuse the append, and it is checked again)
            guard = None
            for i, bucket_id in enumerate(cmd.bucket_ids):
                if i == 0:
                    guard = await bucket_guard(self._repo, ctx, bucket_id, unchecked=not checked)
                else:
                    await owned_bucket(self._repo, ctx, bucket_id)
            if not validated:
                if cmd.processor_id is not None and not is_id(cmd.processor_id):
                    raise invalid("/processor_id", "must be a processor id")
                if resolved is not None:
                    await self._ensure_valid(resolved, cmd.data)
                validated = True
            return await self._repo.execute(
                Blob, None,
                lambda _: Blob.create(owner_id, cmd.data, typed_as, cmd.processor_id, list(cmd.bucket_ids),
                                      self._limits),
                ctx, guard,
            )

        return await guarded(attempt)

    async def update(self, cmd: UpdateBlob, ctx: Context) -> Saved[Blob]:
        async def decide(current: Blob | None) -> Blob:
            blob = changeable(ctx.actor, "blob", cmd.blob_id, current, cmd.expected_version)
            if blob.schema_id is not None:
                await self._ensure_valid(await self._schemas.resolve(blob.schema_id), cmd.data)
            blob.update(cmd.data, self._limits)
            return blob

        return await self._repo.execute(Blob, _checked(cmd.blob_id), decide, ctx)

    async def move(self, cmd: MoveBlob, ctx: Context) -> Saved[Blob]:
        async def decide(current: Blob | None) -> Blob:
            blob = changeable(ctx.actor, "blob", cmd.blob_id, current, cmd.expected_version)
            await owned_bucket(self._repo, ctx, cmd.to_bucket_id)
            blob.move(cmd.from_bucket_id, cmd.to_bucket_id)
            return blob

        return await self._repo.execute(Blob, _checked(cmd.blob_id), decide, ctx)

    async def delete(self, cmd: DeleteBlob, ctx: Context) -> Saved[Blob]:
        def decide(current: Blob | None) -> Blob:
            blob = changeable(ctx.actor, "blob", cmd.blob_id, current, cmd.expected_version)
            blob.delete()
            return blob

        return await self._repo.execute(Blob, _checked(cmd.blob_id), decide, ctx)

    async def migrate(self, cmd: MigrateBlob, ctx: Context) -> Saved[Blob]:
        """Run the registered transforms from the blob's schema version to the target, in order.

        Migrations are edges within one schema name (each version says which
        version it migrates from), so a blob can only migrate along them.
        """

        async def decide(current: Blob | None) -> Blob:
            blob = changeable(ctx.actor, "blob", cmd.blob_id, current, cmd.expected_version)
            target = await self._schemas.resolve(cmd.schema_id)
            data = await self._migrated_data(blob, target)
            blob.migrate(target.id, data, self._limits)
            return blob

        return await self._repo.execute(Blob, _checked(cmd.blob_id), decide, ctx)

    async def _migrated_data(self, blob: Blob, target: Any) -> Any:
        if blob.schema_id == target.id:
            raise invalid("/schema_id", f"the blob already has schema {target.id}")
        no_path = invalid("/schema_id", f"no migration path from {blob.schema_id or 'untyped'} to {target.id}")
        if blob.schema_id is None:
            raise no_path
        name, version = parse_schema_id(blob.schema_id)
        if name != target.name or version is None:
            raise no_path
        path = await self._schemas.migration_path(name, version, target.version)
        if path is None:
            raise no_path
        if len(path) > MAX_MIGRATE_STEPS:  # each step costs a fresh isolate and a round trip besides its run
            raise invalid("/schema_id", f"the chain from {blob.schema_id} to {target.id} has {len(path)} steps; a "
                                        f"blob migrates through at most {MAX_MIGRATE_STEPS} at once: run longer "
                                        "chains as a migration run (POST /v1/migrations)")
        data = blob.data
        # the chain's 5 s shared among its steps up front: what runs is bounded, waiting for a worker is not
        # counted (that is bounded apart, and answers 503)
        per_step = min(self._sandbox.timeout_ms, max(1, int(MIGRATE_SECONDS * 1000) // len(path)))
        shared = "" if per_step == self._sandbox.timeout_ms else (
            f" (each of the chain's {len(path)} steps gets {per_step} ms of the {MIGRATE_SECONDS:g} s a migrate may "
            "take: run long chains as a migration run, POST /v1/migrations, which runs in the background)")
        for step in path:
            assert step.migration is not None
            try:
                data = await self._sandbox.call(step.migration["transform"], MIGRATE_FUNCTION, data,
                                                timeout_ms=per_step)
            except SandboxError as exc:
                raise invalid("/schema_id", f"the migration to {name}@{step.version} failed: {exc}{shared}") from None
        await self._ensure_valid(target, data, what="the migrated data")
        return data


def _checked(blob_id: str) -> str:
    """An id that is not one of ours cannot exist (and must never reach a subject)."""
    if not is_id(blob_id):
        raise NotFound(f"blob {blob_id}")
    return blob_id
