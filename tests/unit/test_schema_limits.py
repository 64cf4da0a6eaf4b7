"""A schema's versions are bounded in number and in bytes.

Everyone who writes blobs against a schema loads it (the latest version of a bare name, a new exact
version), and every process folds it again from the log when a version is added: unbounded, its owner
could make each such load fold tens of thousands of versions and hold hundreds of megabytes (256 KiB a
version), for every user of it. And a fold looked at every version once per event: n squared steps.
"""

from __future__ import annotations

from typing import Any

import pytest

from commands.repository import Repository
from domain.errors import Conflict, ValidationFailed
from domain.limits import Limits
from domain.schema import Schema
from tests.support.memory_store import MemoryEventStore
from tests.unit.test_repository_folds import CODEC, OWNER, ctx


def version(n: int) -> str:
    return f"1.{n}.0"


def document(pad: int = 0) -> dict[str, Any]:
    return {"type": "object", "description": "x" * pad}


def test_a_schema_refuses_a_version_past_its_limit_of_versions_and_stays_as_it_was() -> None:
    limits = Limits(schema_versions=3)
    schema = Schema.register("capped", OWNER, version(0), document(), None, limits)
    for n in (1, 2):
        schema.add_version(OWNER, version(n), document(), None, limits)
    pending = len(schema.collect_events())
    with pytest.raises(ValidationFailed) as refused:
        schema.add_version(OWNER, version(3), document(), None, limits)
    assert "at most 3 versions" in refused.value.reason
    assert list(schema.versions) == [version(n) for n in range(3)] and not schema.collect_events() and pending == 3
    with pytest.raises(Conflict):  # a version it has is still a conflict (a publisher that ignores 409s)
        schema.add_version(OWNER, version(2), document(), None, limits)


def test_a_schema_refuses_a_version_that_would_take_its_versions_past_their_bytes() -> None:
    limits = Limits(schema_bytes=1024, schema_history_bytes=2500)
    schema = Schema.register("heavy", OWNER, version(0), document(900), None, limits)
    schema.add_version(OWNER, version(1), document(900), None, limits)
    with pytest.raises(ValidationFailed) as refused:
        schema.add_version(OWNER, version(2), document(900), None, limits)
    assert "over the limit of 2500 bytes" in refused.value.reason and len(schema.versions) == 2
    schema.add_version(OWNER, version(2), document(100), None, limits)  # a smaller one still fits
    assert len(schema.versions) == 3


def test_limits_refuse_a_history_smaller_than_one_version() -> None:
    with pytest.raises(ValueError, match="schema_history_bytes"):
        Limits(schema_bytes=4096, schema_history_bytes=1024)


async def test_a_schema_loaded_from_the_log_weighs_and_is_stamped_as_the_one_that_wrote_it() -> None:
    """The weight kept by ``add_version`` and the one summed for a schema folded from its events agree,
    so a limit holds on every process; each version keeps the time of the event that added it."""
    limits = Limits(schema_versions=300, schema_bytes=1024, schema_history_bytes=300 * 1024)
    store = MemoryEventStore()
    repo = Repository(store, CODEC)
    saved = await repo.execute(Schema, None, lambda _: Schema.register("long", OWNER, version(0), document(0), None,
                                                                      limits), ctx())
    schema_id = saved.aggregate.id_str

    def adding(n: int):  # type: ignore[no-untyped-def]
        def decide(schema: Schema | None) -> Schema:
            assert schema is not None
            schema.add_version(OWNER, version(n), document(n), None, limits)
            return schema
        return decide

    for n in range(1, 300):
        saved = await repo.execute(Schema, schema_id, adding(n), ctx())
    written = saved.aggregate
    loaded = (await Repository(store, CODEC).get(Schema, schema_id))
    assert loaded is not None
    assert loaded.aggregate.history_bytes() == written.history_bytes() == sum(
        len(f'{{"schema":{{"type":"object","description":"{"x" * n}"}},"migration":null}}') for n in range(300))
    stamps = [entry.created_at for entry in loaded.aggregate.versions.values()]
    assert stamps == [record.at for record in store.records]
    with pytest.raises(ValidationFailed):
        loaded.aggregate.add_version(OWNER, version(300), document(), None, limits)


async def test_a_retried_registration_refused_before_the_costly_checks_gets_its_first_answer() -> None:
    """The handler asks ``check_room`` of the schema it has read before the validator and the sandbox
    run; a retry (the same Idempotency-Key) of a version that landed is not a 409 there, but the first
    attempt's answer, as ``execute`` gives it."""
    from commands.repository import Context
    from tests.unit.test_command_index import keyed

    store = MemoryEventStore()
    repo = Repository(store, CODEC)
    retried = Context(actor=OWNER, command_id=keyed())
    first = await repo.execute(Schema, None, lambda _: Schema.register("kept", OWNER, version(0), document(), None),
                               retried)
    schema_id = first.aggregate.id_str

    def room(schema: Schema) -> None:
        schema.check_room(OWNER, version(0), 100)

    again = await repo.refused_early(Schema, schema_id, retried, room)
    assert again is not None and again.position == first.position
    with pytest.raises(Conflict):  # the same version under another command: refused, cheaply
        await repo.refused_early(Schema, schema_id, ctx(), room)
    assert await repo.refused_early(Schema, schema_id, ctx(), lambda s: s.check_room(OWNER, version(1), 100)) is None
