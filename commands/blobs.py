"""Blob commands: create, update, move, migrate, delete.

Schemas and buckets are read from the log (``Repository.get``), so the write
path needs nothing but the log. The checks that need I/O (schema lookup,
bucket ownership, running migrations) happen before the append; the decision
then re-checks, on the aggregate the append is based on, that what they relied
on (the blob's schema, or its whole version for a migration) did not change in
between, and otherwise fails as a concurrent change (409).
"""

from __future__ import annotations

import asyncio
from typing import Any

from domain.blob import Blob
from domain.errors import ConcurrencyError, DomainError, NotFound, ValidationFailed, invalid
from domain.ids import is_id
from domain.schema import parse_schema_id

from commands.authorization import changeable, require_actor
from commands.buckets import owned_bucket
from commands.ports import Sandbox, SandboxError
from commands.repository import Context, Repository, Saved
from commands.schemas import MIGRATE_FUNCTION, ResolvedSchema, SchemaCommands


def _bucket_list(bucket_ids: object) -> list[str]:
    if bucket_ids is None:
        return []
    if not isinstance(bucket_ids, list) or not all(isinstance(b, str) for b in bucket_ids):
        raise invalid("/bucket_ids", "must be a list of bucket ids")
    return list(bucket_ids)


class BlobCommands:
    def __init__(self, repository: Repository, schemas: SchemaCommands, sandbox: Sandbox) -> None:
        self._repo = repository
        self._schemas = schemas
        self._sandbox = sandbox

    async def _ensure_valid(self, resolved: ResolvedSchema, data: Any, what: str = "data") -> None:
        errors = await self._schemas.check(resolved, data)
        if errors:
            raise ValidationFailed(f"{what} does not satisfy schema {resolved.id}", errors)

    async def _load(self, ctx: Context, blob_id: str, expected_version: int | None) -> Blob:
        if not is_id(blob_id):
            raise NotFound(f"blob {blob_id}")
        saved = await self._repo.get(Blob, blob_id)
        return changeable(ctx.actor, "blob", blob_id, saved.aggregate if saved else None, expected_version)

    async def create(
        self,
        ctx: Context,
        data: Any,
        schema_id: str | None = None,
        processor_id: str | None = None,
        bucket_ids: list[str] | None = None,
    ) -> Saved[Blob]:
        """Nothing is appended unless the schema and every bucket exist and the data is valid."""
        owner_id = require_actor(ctx.actor)
        resolved = await self._schemas.resolve(schema_id) if schema_id is not None else None
        buckets = _bucket_list(bucket_ids)
        for bucket_id in buckets:
            await owned_bucket(self._repo, ctx, bucket_id)
        if processor_id is not None and not is_id(processor_id):
            raise invalid("/processor_id", "must be a processor id")
        if resolved is not None:
            await self._ensure_valid(resolved, data)
        typed_as = resolved.id if resolved is not None else None
        return await self._repo.execute(
            Blob, None, lambda _: Blob.create(owner_id, data, typed_as, processor_id, buckets), ctx
        )

    async def update(self, ctx: Context, blob_id: str, data: Any, expected_version: int | None = None) -> Saved[Blob]:
        loaded = await self._load(ctx, blob_id, expected_version)
        if loaded.schema_id is not None:
            await self._ensure_valid(await self._schemas.resolve(loaded.schema_id), data)

        def decide(current: Blob | None) -> Blob:
            blob = changeable(ctx.actor, "blob", blob_id, current, expected_version)
            if blob.schema_id != loaded.schema_id:
                raise ConcurrencyError("the blob's schema changed while its data was validated")
            blob.update(data)
            return blob

        return await self._repo.execute(Blob, blob_id, decide, ctx)

    async def move(
        self,
        ctx: Context,
        blob_id: str,
        from_bucket_id: str,
        to_bucket_id: str,
        expected_version: int | None = None,
    ) -> Saved[Blob]:
        await self._load(ctx, blob_id, expected_version)
        await owned_bucket(self._repo, ctx, to_bucket_id)

        def decide(current: Blob | None) -> Blob:
            blob = changeable(ctx.actor, "blob", blob_id, current, expected_version)
            blob.move(from_bucket_id, to_bucket_id)
            return blob

        return await self._repo.execute(Blob, blob_id, decide, ctx)

    async def delete(self, ctx: Context, blob_id: str, expected_version: int | None = None) -> Saved[Blob]:
        if not is_id(blob_id):
            raise NotFound(f"blob {blob_id}")

        def decide(current: Blob | None) -> Blob:
            blob = changeable(ctx.actor, "blob", blob_id, current, expected_version)
            blob.delete()
            return blob

        return await self._repo.execute(Blob, blob_id, decide, ctx)

    async def migrate(
        self, ctx: Context, blob_id: str, schema_id: str, expected_version: int | None = None
    ) -> Saved[Blob]:
        try:
            return await self._migrate(ctx, blob_id, schema_id, expected_version)
        except DomainError:
            # a retry (same Idempotency-Key) of a migration that already landed answers like the first
            if (first := await self._repo.replayed(Blob, blob_id, ctx)) is not None:
                return first
            raise

    async def _migrate(
        self, ctx: Context, blob_id: str, schema_id: str, expected_version: int | None
    ) -> Saved[Blob]:
        """Run the registered transforms from the blob's schema version to the target, in order.

        Migrations are edges within one schema name (each version says which
        version it migrates from), so a blob can only migrate along them.
        """
        loaded = await self._load(ctx, blob_id, expected_version)
        target = await self._schemas.resolve(schema_id)
        if loaded.schema_id == target.id:
            raise invalid("/schema_id", f"the blob already has schema {target.id}")
        no_path = invalid("/schema_id", f"no migration path from {loaded.schema_id or 'untyped'} to {target.id}")
        if loaded.schema_id is None:
            raise no_path
        name, version = parse_schema_id(loaded.schema_id)
        if name != target.name or version is None:
            raise no_path
        path = target.aggregate.migration_path(version, target.version)
        if path is None:
            raise no_path
        data = loaded.data
        for step in path:
            assert step.migration is not None
            try:
                data = await asyncio.to_thread(self._sandbox.call, step.migration["transform"], MIGRATE_FUNCTION, data)
            except SandboxError as exc:
                raise invalid("/schema_id", f"the migration to {name}@{step.version} failed: {exc}") from None
        await self._ensure_valid(target, data, what="the migrated data")

        def decide(current: Blob | None) -> Blob:
            blob = changeable(ctx.actor, "blob", blob_id, current, expected_version)
            if blob.version != loaded.version:
                raise ConcurrencyError("the blob changed while it was being migrated")
            blob.migrate(target.id, data)
            return blob

        return await self._repo.execute(Blob, blob_id, decide, ctx)
