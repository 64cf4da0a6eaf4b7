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

from dataclasses import dataclass
from typing import Any, Protocol

from domain.errors import FieldError, NotFound, ValidationFailed, invalid
from domain.ids import is_id
from domain.processor import (
    MAX_TRIGGERED_PROCESSORS,
    Processor,
    check_limits,
    check_triggers,
    config_errors,
    name_errors,
    type_errors,
)

from commands.authorization import changeable, require_actor
from commands.buckets import owned_bucket
from commands.bus import Handler
from commands.ports import ProcessorTypes
from commands.repository import Context, Repository, Saved
from commands.schemas import SchemaRegistry


@dataclass(frozen=True, slots=True)
class RegisterProcessor:
    name: Any
    type: Any
    config: Any
    input_schema: str | None = None
    output_schema: str | None = None
    triggers: Any = None
    limits: Any = None


@dataclass(frozen=True, slots=True)
class UpdateProcessor:
    """``None`` keeps a field; ``triggers`` replaces them all; ``limits`` changes the ones it names."""

    processor_id: str
    config: Any = None
    triggers: Any = None
    limits: Any = None
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class DeleteProcessor:
    processor_id: str
    expected_version: int | None = None


class TriggeredProcessors(Protocol):
    """How many processors with triggers a user has (the read model, once it has caught up with the log)."""

    async def triggered_processors(self, owner_id: str) -> int: ...


def _fail(errors: list[FieldError]) -> None:
    if errors:
        raise ValidationFailed("; ".join(f"{e.path or '/'}: {e.message}" for e in errors[:5]), errors)


class ProcessorHandlers:
    def __init__(self, repository: Repository, schemas: SchemaRegistry, types: ProcessorTypes,
                 triggered: TriggeredProcessors | None = None) -> None:
        self._repo = repository
        self._schemas = schemas
        self._types = types
        self._triggered = triggered

    async def _room_for_triggers(self, owner_id: str) -> None:
        """422 when the user already has ``MAX_TRIGGERED_PROCESSORS`` processors with triggers. Two
        registrations at once may both pass; the dispatcher then heeds only the first ones by id."""
        if self._triggered is not None and await self._triggered.triggered_processors(owner_id) >= \
                MAX_TRIGGERED_PROCESSORS:
            raise invalid("/triggers", f"a user has at most {MAX_TRIGGERED_PROCESSORS} processors with triggers: "
                                       "remove the triggers of one, or delete one, first")

    def handlers(self) -> dict[type, Handler]:
        return {RegisterProcessor: self.register, UpdateProcessor: self.update, DeleteProcessor: self.delete}

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

    async def register(self, cmd: RegisterProcessor, ctx: Context) -> Saved[Processor]:
        owner_id = require_actor(ctx.actor)
        _fail(name_errors(cmd.name) + type_errors(cmd.type))
        assert isinstance(cmd.type, str)
        await self._check_config(cmd.type, cmd.config)
        limits = check_limits(cmd.limits)  # 422 before any lookup
        triggers = await self._triggers(ctx, cmd.triggers)
        if triggers:
            await self._room_for_triggers(owner_id)
        input_id, output_id = await self._schema(cmd.input_schema), await self._schema(cmd.output_schema)
        return await self._repo.execute(
            Processor,
            None,
            lambda _: Processor.register(owner_id, cmd.name, cmd.type, input_id, output_id, cmd.config, triggers,
                                         limits),
            ctx,
        )

    async def update(self, cmd: UpdateProcessor, ctx: Context) -> Saved[Processor]:
        async def decide(current: Processor | None) -> Processor:
            processor = changeable(ctx.actor, "processor", cmd.processor_id, current, cmd.expected_version)
            if cmd.config is not None:
                await self._check_config(processor.type, cmd.config)
            triggers = await self._triggers(ctx, cmd.triggers) if cmd.triggers is not None else None
            if triggers and not processor.triggers:
                await self._room_for_triggers(processor.owner_id)
            processor.update(cmd.config, triggers, cmd.limits)
            return processor

        return await self._repo.execute(Processor, _checked(cmd.processor_id), decide, ctx)

    async def delete(self, cmd: DeleteProcessor, ctx: Context) -> Saved[Processor]:
        def decide(current: Processor | None) -> Processor:
            processor = changeable(ctx.actor, "processor", cmd.processor_id, current, cmd.expected_version)
            processor.delete()
            return processor

        return await self._repo.execute(Processor, _checked(cmd.processor_id), decide, ctx)


def _checked(processor_id: str) -> str:
    """A processor id fit for a subject (anything else names no processor)."""
    if not is_id(processor_id):
        raise NotFound(f"processor {processor_id}")
    return processor_id


async def owned_processor(repository: Repository, ctx: Context, processor_id: str) -> Saved[Processor]:
    """A live processor of the acting user, read from the log: unknown NotFound, someone else's Forbidden."""
    saved = await repository.get(Processor, _checked(processor_id))
    changeable(ctx.actor, "processor", processor_id, saved.aggregate if saved else None, None)
    assert saved is not None
    return saved
