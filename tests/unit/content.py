"""Test data and helpers shared by the unit tests of the content commands."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest

from commands.repository import Context
from domain.ids import new_id
from tests.support.world import World

ALICE = new_id()
BOB = new_id()

BOOK_V1 = {
    "type": "object",
    "required": ["title", "chapters"],
    "properties": {
        "title": {"type": "string"},
        "chapters": {
            "type": "array",
            "items": {"type": "object", "required": ["title"], "properties": {"title": {"type": "string"}}},
        },
    },
}
BOOK_V2 = {
    "type": "object",
    "required": ["name", "chapters"],
    "properties": {"name": {"type": "string"}, "chapters": {"type": "array"}},
    "additionalProperties": False,
}
BOOK_V3 = {
    "type": "object",
    "required": ["name", "chapters", "count"],
    "properties": {"name": {"type": "string"}, "chapters": {"type": "array"}, "count": {"type": "integer"}},
}
V1_TO_V2 = "function migrate(d) { return {name: d.title, chapters: d.chapters}; }"
V2_TO_V3 = "function migrate(d) { d.count = d.chapters.length; return d; }"
_commands = itertools.count()


def ctx(actor: str | None = ALICE, command_id: str | None = None) -> Context:
    return Context(actor=actor, command_id=command_id or f"cmd-{next(_commands)}-{uuid.uuid4().hex[:6]}")


async def refused(world: World, exc: type[Exception], call: Any) -> Any:
    """``call`` raises ``exc`` and appends nothing."""
    before = world.store.appends
    with pytest.raises(exc) as info:
        await call
    assert world.store.appends == before
    return info.value


async def book_schemas(world: World) -> None:
    """book@1.0.0, 2.0.0 (migrates from 1.0.0) and 3.0.0 (from 2.0.0), registered by ALICE."""
    await world.schemas.register(ctx(), "book", "1.0.0", BOOK_V1)
    await world.schemas.register(ctx(), "book", "2.0.0", BOOK_V2, {"from_version": "1.0.0", "transform": V1_TO_V2})
    await world.schemas.register(ctx(), "book", "3.0.0", BOOK_V3, {"from_version": "2.0.0", "transform": V2_TO_V3})
