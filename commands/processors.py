"""Processor commands: register, change (config, triggers, limits), delete.

Everything a registration depends on is checked before anything is written:
the shape of every field (422), the type and its config (the type's own check,
which compiles a ``js-transform``'s source: 422), the schemas (404) and each
trigger's bucket (404, 403 when it is someone else's). Schema ids are resolved
to ``name@version`` once, here, so what a processor accepts and produces does
not drift when someone registers a newer version.

Deleting a processor is one event; cancelling its unfinished jobs is a policy
that reacts to it (``adapters.jobs.dispatcher``), never a second write here.
"""

from __future__ import annotations

from typing import Any

from domain.errors import FieldError, NotFound, ValidationFailed, invalid
from domain.ids import is_id
from domain.processor import Processor, check_limits, check_triggers, config_errors, name_errors, type_errors

from commands.authorization import changeable, require_actor
from commands.buckets import owned_bucket
from commands.ports import ProcessorTypes
from commands.repository import Context, Repository, Saved
from commands.schemas import SchemaCommands


def _fail(errors: list[FieldError]) -> None:
    if errors:
        raise ValidationFailed("; ".join(f"{e.path or '/'}: {e.message}" for e in errors[:5]), errors)


class ProcessorCommands:
    def __init__(self, repository: Repository, schemas: SchemaCommands, types: ProcessorTypes) -> None:
        self._repo = repository
        self._schemas = schemas
        self._types = types

    async def owned(self, ctx: Context, processor_id: str, expected_version: int | None = None) -> Saved[Processor]:
        """A live processor of the acting user, from the log: unknown 404, someone else's 403."""
        if not is_id(processor_id):
            raise NotFound(f"processor {processor_id}")
        saved = await self._repo.get(Processor, processor_id)
        changeable(ctx.actor, "processor", processor_id, saved.aggregate if saved else None, expected_version)
        assert saved is not None
        return saved

    async def _check_config(self, type_name: str, config: Any) -> None:
        if type_name not in self._types.names():
            known = ", ".join(sorted(self._types.names()))
            raise invalid("/type", f"unknown processor type {type_name!r} (known: {known})")
        _fail(config_errors(config))
        _fail(await self._types.check_config(type_name, config))

    async def _schema(self, schema_id: str | None) -> str | None:
        return None if schema_id is None else (await self._schemas.resolve(schema_id)).id

    async def _triggers(self, ctx: Context, triggers: object) -> list[dict[str, Any]]:
        """Normalised triggers, each bucket the actor's (404/403) and each schema resolved (404)."""
        checked = check_triggers(triggers)
        for trigger in checked:
            if trigger["bucket_id"] is not None:
                await owned_bucket(self._repo, ctx, trigger["bucket_id"])
            trigger["schema_id"] = await self._schema(trigger["schema_id"])
        return checked

    async def register(
        self,
        ctx: Context,
        name: object,
        type: object,
        config: object,
        input_schema: str | None = None,
        output_schema: str | None = None,
        triggers: object = None,
        limits: object = None,
    ) -> Saved[Processor]:
        owner_id = require_actor(ctx.actor)
        _fail(name_errors(name) + type_errors(type))
        assert isinstance(type, str)
        await self._check_config(type, config)
        checked_limits = check_limits(limits)
        checked_triggers = await self._triggers(ctx, triggers)
        input_id, output_id = await self._schema(input_schema), await self._schema(output_schema)
        return await self._repo.execute(
            Processor,
            None,
            lambda _: Processor.register(owner_id, name, type, input_id, output_id, config, checked_triggers,
                                         checked_limits),
            ctx,
        )

    async def update(
        self,
        ctx: Context,
        processor_id: str,
        config: object = None,
        triggers: object = None,
        limits: object = None,
        expected_version: int | None = None,
    ) -> Saved[Processor]:
        loaded = (await self.owned(ctx, processor_id, expected_version)).aggregate
        if config is not None:
            await self._check_config(loaded.type, config)
        checked_limits = check_limits(limits, loaded.limits) if limits is not None else None
        checked_triggers = await self._triggers(ctx, triggers) if triggers is not None else None

        def decide(current: Processor | None) -> Processor:
            processor = changeable(ctx.actor, "processor", processor_id, current, expected_version)
            processor.update(config, checked_triggers, checked_limits)
            return processor

        return await self._repo.execute(Processor, processor_id, decide, ctx)

    async def delete(self, ctx: Context, processor_id: str, expected_version: int | None = None) -> Saved[Processor]:
        if not is_id(processor_id):
            raise NotFound(f"processor {processor_id}")

        def decide(current: Processor | None) -> Processor:
            processor = changeable(ctx.actor, "processor", processor_id, current, expected_version)
            processor.delete()
            return processor

        return await self._repo.execute(Processor, processor_id, decide, ctx)
