"""A row the API process keeps (``GET /v1/blobs/{id}``, ``/v1/auth/me``) never hides a later write:
each default GET after an answered command shows it, whatever was read before."""

from __future__ import annotations

import asyncio

from tests.support.sdk import SignUp
from tests.support.system import RunningSystem


async def test_every_update_and_move_is_seen_by_the_next_default_get(system: RunningSystem, sign_up: SignUp) -> None:
    ink = await sign_up("kept")
    rows = system.services.reads.model.rows
    assert rows is not None, "the system runs with a row cache"
    hits = rows.hits
    shelf = await ink.create_bucket("shelf", "shelf")
    other = await ink.create_bucket("other", "shelf")
    blob = await ink.create_blob({"edit": 0}, bucket_ids=[shelf.id])
    for edit in range(1, 31):
        assert (await ink.get_blob(blob.id)).data == {"edit": edit - 1}
        assert (await ink.get_blob(blob.id)).data == {"edit": edit - 1}  # read twice: kept
        await ink.update_blob(blob.id, {"edit": edit})
        assert (await ink.get_blob(blob.id)).data == {"edit": edit}
    await ink.move_blob(blob.id, shelf.id, other.id)
    assert (await ink.get_blob(blob.id)).bucket_ids == [other.id]
    await ink.delete_blob(blob.id)
    assert [b.id for b in (await ink.list_blobs()).items] == []
    assert rows.hits >= hits + 30  # the second read of each pair came from the cache


async def test_reads_racing_writes_never_go_back_in_time(system: RunningSystem, sign_up: SignUp) -> None:
    """Readers hammer one blob while it is updated: once an update is answered, no later default
    GET may show an older version (a row read before the commit and kept after it would)."""
    ink = await sign_up("kept")
    blob = await ink.create_blob({"edit": 0})
    answered = 0
    behind: list[str] = []
    done = asyncio.Event()

    async def read() -> None:
        while not done.is_set():
            floor = answered
            seen = (await ink.get_blob(blob.id)).data["edit"]
            if seen < floor:
                behind.append(f"read {seen} after {floor} was answered")

    readers = [asyncio.create_task(read()) for _ in range(8)]
    for edit in range(1, 61):
        await ink.update_blob(blob.id, {"edit": edit})
        answered = edit
    done.set()
    await asyncio.gather(*readers)
    assert behind == []
