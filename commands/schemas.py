"""Schema registry commands: register a version, validate data against one.

Everything that can be checked without the log (name, version, the document
against its draft's meta-schema, the migration compiling) is checked before
loading; ownership, duplicates and ``from_version`` are decided by the
aggregate on what the log holds. Schema versions never change once written,
so the validator may cache a compiled schema per ``name@version`` forever.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from domain.errors import FieldError, NotFound, ValidationFailed, invalid
from domain.limits import Limits
from domain.schema import (
    Schema,
    SchemaVersion,
    check_document,
    check_migration,
    check_name,
    check_version,
    parse_schema_id,
    schema_aggregate_id,
    schema_id,
)

from commands.authorization import require_actor
from commands.bus import Handler
from commands.ports import Sandbox, SchemaValidator
from commands.repository import Context, Repository, Saved

MIGRATE_FUNCTION = "migrate"


@dataclass(frozen=True, slots=True)
class RegisterSchema:
    name: str
    version: str
    document: dict[str, Any]
    migration: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class ValidateData:
    schema_id: str
    data: Any


@dataclass(frozen=True, slots=True)
class ResolvedSchema:
    """One concrete version: ``id`` is always ``name@version``, never a bare name."""

    id: str
    name: str
    entry: SchemaVersion

    @property
    def version(self) -> str:
        return self.entry.version


class SchemaRegistry:
    """Schemas as the write side sees them: resolved from the log, checked by the validator.

    A schema version never changes once it is in the log, so an exact
    ``name@version`` is remembered once resolved (a bounded LRU of the
    versions only, not of whole aggregates): creating and updating typed
    blobs then costs no read of the log for their schema. A bare name (the
    latest version) and anything unknown are always asked of the log.
    """

    def __init__(self, repository: Repository, validator: SchemaValidator, cache_size: int = 1024) -> None:
        self._repo = repository
        self._validator = validator
        self._versions: OrderedDict[str, ResolvedSchema] = OrderedDict()
        self._cache_size = cache_size

    async def resolve(self, id_or_name: str) -> ResolvedSchema:
        """``name@version`` or a bare name (its latest), from the log; NotFound when unknown."""
        known = self._versions.get(id_or_name)
        if known is not None:
            self._versions.move_to_end(id_or_name)
            return known
        try:
            name, version = parse_schema_id(id_or_name)
        except ValueError:
            raise NotFound(f"schema {id_or_name}") from None
        saved = await self._repo.get(Schema, schema_aggregate_id(name))
        entry = saved.aggregate.resolve(version) if saved is not None else None
        if saved is None or entry is None:
            raise NotFound(f"schema {id_or_name}")
        resolved = ResolvedSchema(schema_id(name, entry.version), name, entry)
        if version is not None:
            self._versions[id_or_name] = resolved
            if len(self._versions) > self._cache_size:
                self._versions.popitem(last=False)
        return resolved

    async def owner(self, name: str) -> str | None:
        """Who registered the schema name (only they add versions), from the log."""
        saved = await self._repo.get(Schema, schema_aggregate_id(name))
        return saved.aggregate.owner_id if saved is not None else None

    async def migration_path(self, name: str, from_version: str, to_version: str) -> list[SchemaVersion] | None:
        """The versions whose transforms lead from one version to the other, in order (from the log)."""
        saved = await self._repo.get(Schema, schema_aggregate_id(name))
        return saved.aggregate.migration_path(from_version, to_version) if saved is not None else None

    async def check(self, resolved: ResolvedSchema, data: Any) -> list[FieldError]:
        """What keeps ``data`` from ``resolved``; ``ValidationFailed`` (a 422) when it cannot be
        validated at all (over its budget, out of memory, a schema that cannot be used)."""
        return await self._validator.validate(resolved.id, resolved.entry.schema, data)

    async def problems(self, resolved: ResolvedSchema, data: Any) -> list[FieldError]:
        """``check``, a validation that could not finish included among the errors.

        The background writers (job outputs, migration runs) ask this of one
        document among many: a document whose validation ran over its budget or
        out of memory is that document's failure, not the whole run's, so the
        stop comes back as its error instead of an exception.
        """
        try:
            return await self.check(resolved, data)
        except ValidationFailed as exc:
            return list(exc.errors) or [FieldError("", exc.reason)]

    async def ensure_valid(self, resolved: ResolvedSchema, data: Any, what: str = "data") -> None:
        errors = await self.check(resolved, data)
        if errors:
            raise ValidationFailed(f"{what} does not satisfy schema {resolved.id}", errors)


class SchemaHandlers:
    def __init__(self, repository: Repository, registry: SchemaRegistry, validator: SchemaValidator,
                 sandbox: Sandbox, limits: Limits = Limits()) -> None:
        self._repo = repository
        self._registry = registry
        self._validator = validator
        self._sandbox = sandbox
        self._limits = limits

    def handlers(self) -> dict[type, Handler]:
        return {RegisterSchema: self.register, ValidateData: self.validate}

    async def register(self, cmd: RegisterSchema, ctx: Context) -> Saved[Schema]:
        owner_id = require_actor(ctx.actor)
        check_name(cmd.name)
        check_version(cmd.version)
        migration = check_migration(cmd.migration)
        size = check_document(cmd.document, migration, self._limits)  # storable and small enough, before any costly check
        schema_id = schema_aggregate_id(cmd.name)
        # its owner, a new version, room for it: refused before the costly checks (unless it is a retry)
        again = await self._repo.refused_early(
            Schema, schema_id, ctx, lambda current: current.check_room(ctx.actor, cmd.version, size, self._limits)
        )
        if again is not None:
            return again
        errors = await self._validator.check_schema(cmd.document)
        if errors:
            raise ValidationFailed(
                "not a valid JSON Schema", [FieldError("/schema" + e.path, e.message) for e in errors]
            )
        if migration is not None:
            problem = await self._sandbox.compile_check(migration["transform"], MIGRATE_FUNCTION)
            if problem is not None:
                raise invalid("/migration/transform", f"does not compile: {problem}")

        def decide(current: Schema | None) -> Schema:
            if current is None:
                return Schema.register(cmd.name, owner_id, cmd.version, cmd.document, migration, self._limits)
            current.add_version(ctx.actor, cmd.version, cmd.document, migration, self._limits)
            return current

        return await self._repo.execute(Schema, schema_id, decide, ctx)

    async def validate(self, cmd: ValidateData, ctx: Context) -> list[FieldError]:
        """Every error of ``data`` against the schema (any user may validate against any schema)."""
        return await self._registry.check(await self._registry.resolve(cmd.schema_id), cmd.data)
