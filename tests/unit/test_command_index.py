"""A refused retry finds its first attempt through the command index, not the whole history.

A keyed command refused by the domain (an ``If-Match`` its own first attempt made stale) is
answered like its first attempt when the aggregate's log holds that attempt's event. Finding
it used to mean reading the aggregate's whole history, and for a key that never landed, all
of it: one account with a long blob and a stream of keyed stale writes kept a core busy. The
``commands`` projection indexes the events of every command id that may come again; the
repository asks it, then reads only the events it has not reached (a projector lags).

The index here is the real projection applied to the in-memory log up to a checkpoint the
test sets; the answers are compared with the full search, which the repository still does
without an index.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from commands.repository import Context, Repository
from domain.blob import Blob
from domain.errors import PreconditionFailed
from domain.ids import may_come_again, new_id
from tests.support.memory_commands import MemoryCommandIndex
from tests.support.memory_store import MemoryEventStore
from tests.unit.test_repository_folds import (
    BATCH, CODEC, KIB, OWNER, WatchingStore, long_blob, one_list, state, updating,
)


def keyed() -> str:
    """A command id as an ``Idempotency-Key`` makes it (``adapters/http/api.py`` ``command_id``)."""
    return "idem-" + secrets.token_hex(20)


def ctx(command_id: str) -> Context:
    return Context(actor=OWNER, command_id=command_id)


async def keyed_blob(store: MemoryEventStore, updates: int, size: int) -> tuple[str, list[str]]:
    """A blob updated ``updates`` times with keyed commands of about ``size`` bytes; their ids in order."""
    return await long_blob(store, updates, size, command_ids=keyed)


def read(store: WatchingStore) -> int:
    return sum(load["count"] for load in store.loads)


async def test_a_key_that_never_landed_reads_only_the_events_the_index_has_not_reached() -> None:
    store = WatchingStore()
    blob_id, _ = await keyed_blob(store, updates=120, size=10 * KIB)
    index = MemoryCommandIndex(store, checkpoint=len(store.records) - 3)  # the projector is 3 events behind
    store.watch()
    assert await Repository(store, CODEC, fold_bytes=BATCH, commands=index).replayed(Blob, blob_id, ctx(keyed())) is None
    assert index.lookups == 1
    assert read(store) == 3 and all(load["from_position"] > index.checkpoint for load in store.loads)
    store.assert_bounded(BATCH)

    store.watch()  # what it cost before: the whole history, which its owner can make as long as they like
    assert await Repository(store, CODEC, fold_bytes=BATCH).replayed(Blob, blob_id, ctx(keyed())) is None
    assert read(store) == len(store.records)


@pytest.mark.parametrize("lag", [0, 50], ids=["indexed", "the projector behind the first attempt"])
async def test_a_stale_if_match_retried_with_its_key_gets_the_first_attempts_answer(lag: int) -> None:
    store = WatchingStore()
    blob_id, _ = await keyed_blob(store, updates=20, size=KIB)
    writer = Repository(store, CODEC)
    key = keyed()
    first = await writer.execute(Blob, blob_id, updating({"first": True}), ctx(key))
    seen_version = first.aggregate.version - 1  # the If-Match the client sent: stale once its attempt landed
    for n in range(49):
        await writer.execute(Blob, blob_id, updating({"later": n}), ctx(keyed()))
    index = MemoryCommandIndex(store, checkpoint=len(store.records) - lag)

    def if_match(blob: Blob | None) -> Blob:
        assert blob is not None
        if blob.version != seen_version:
            raise PreconditionFailed(f"the blob is at version {blob.version}")
        blob.update({"first": True})
        return blob

    store.watch()
    retried = await Repository(store, CODEC, fold_bytes=BATCH, commands=index).execute(Blob, blob_id, if_match,
                                                                                        ctx(key))
    expected, position, _ = await one_list(store, blob_id, until=first.position)
    assert retried.position == first.position == position
    assert state(retried.aggregate) == state(expected), "as the first attempt left it, not as it is now"
    with pytest.raises(PreconditionFailed):  # another key is refused, as before
        await Repository(store, CODEC, commands=index).execute(Blob, blob_id, if_match, ctx(keyed()))


class Wrong:
    """An index that names an event this aggregate does not have at that position (a log restored
    from a backup under an index built from the log it replaced)."""

    def __init__(self, position: int) -> None:
        self.position = position

    async def command_position(self, aggregate_type: str, aggregate_id: str, command_id: str) -> tuple[int, int | None]:
        return self.position, self.position


async def test_an_index_the_log_contradicts_is_overruled_by_the_log() -> None:
    store = MemoryEventStore()
    blob_id, commands = await keyed_blob(store, updates=10, size=KIB)
    other = await Repository(store, CODEC).execute(
        Blob, None, lambda _: Blob.create(OWNER, {"other": 1}, None, None, []), ctx(keyed()))
    wrong = Repository(store, CODEC, commands=Wrong(other.position))
    found = await wrong.replayed(Blob, blob_id, ctx(commands[4]))
    expected = await Repository(store, CODEC).replayed(Blob, blob_id, ctx(commands[4]))
    assert found is not None and expected is not None
    assert found.position == expected.position and state(found.aggregate) == state(expected.aggregate)


@settings(max_examples=60, deadline=None)
@given(steps=st.lists(st.tuples(st.sampled_from(["a", "b"]), st.sampled_from(["key", "made up", "again"])),
                     min_size=1, max_size=40),
       checkpoint=st.integers(0, 45), batch=st.integers(1, 4_000))
def test_the_index_answers_what_the_full_search_answers(steps: list[tuple[str, str]], checkpoint: int,
                                                        batch: int) -> None:
    """Any history of two blobs, keyed and made-up command ids mixed, a keyed command landing again
    (retried past the duplicate window), any lag of the projector: every command id of the blob,
    and one that never landed, is answered alike with and without it (the first landing)."""
    asyncio.run(_alike(steps, checkpoint, batch))


async def _alike(steps: list[tuple[str, str]], checkpoint: int, batch: int) -> None:
    store = MemoryEventStore()
    writer = Repository(store, CODEC)
    ids: dict[str, str] = {}
    commands: dict[str, list[str]] = {"a": [], "b": []}
    for blob, kind in steps:
        landed = [c for c in commands[blob][1:] if may_come_again(c)]  # not the creation's
        if kind == "again" and landed:
            command_id = landed[len(landed) // 2]
            store._by_command.pop(command_id)  # the duplicate window has passed: it lands once more
        else:
            command_id = new_id() if kind == "made up" else keyed()
        if blob not in ids:
            made = await writer.execute(Blob, None, lambda _: Blob.create(OWNER, {"n": 0}, None, None, []),
                                        ctx(command_id))
            ids[blob] = made.aggregate.id_str
        else:
            await writer.execute(Blob, ids[blob], updating({"pad": "p" * len(commands[blob])}), ctx(command_id))
        if command_id not in commands[blob]:
            commands[blob].append(command_id)
    index = MemoryCommandIndex(store, checkpoint=min(checkpoint, len(store.records)))
    with_index = Repository(store, CODEC, fold_bytes=batch, commands=index)
    without = Repository(store, CODEC, fold_bytes=batch)
    blob_id = ids[steps[0][0]]
    # a creation's command id is never looked up on its aggregate (a retried creation makes another
    # aggregate), so the index leaves creations under made-up ids out: compared are all the others
    asked = [*commands[steps[0][0]][1:], keyed(), *commands["b" if steps[0][0] == "a" else "a"][1:]]
    for command_id in asked:
        found: Any = await with_index.replayed(Blob, blob_id, ctx(command_id))
        expected: Any = await without.replayed(Blob, blob_id, ctx(command_id))
        assert (found is None) == (expected is None), command_id
        if found is not None:
            assert found.position == expected.position and state(found.aggregate) == state(expected.aggregate)
    assert index.lookups == sum(may_come_again(c) for c in asked)
