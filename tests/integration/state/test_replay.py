"""Replaying the log rebuilds read models equal, row by row, to the live ones, while queries keep answering."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson

from adapters.postgres.rebuild import rebuild
from adapters.client import InkstreamClient, InkstreamError
from tests.support.sdk import SignUp
from tests.support.system import RunningSystem

INKSTREAM = Path(sys.executable).parent / "inkstream"

SCHEMA = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}


async def mixed_workload(ink: InkstreamClient) -> dict[str, Any]:
    """Every kind of change of every content aggregate, a little of each."""
    name = f"replay-{uuid.uuid4().hex[:8]}"
    await ink.register_schema(name, "1.0.0", SCHEMA)
    await ink.register_schema(name, "2.0.0", {"type": "object", "required": ["name"]}, migration={
        "from_version": "1.0.0", "transform": "function migrate(d) { return {name: d.title}; }"})
    root = await ink.create_bucket("root", "library")
    shelves = [await ink.create_bucket(f"shelf {i}", "shelf", root.id) for i in range(3)]
    await ink.update_bucket(shelves[2].id, name="renamed", parent_id=None)
    blobs = [await ink.create_blob({"title": f"t{i}", "tags": ["a", i]}, schema_id=f"{name}@1.0.0",
                                   bucket_ids=[shelves[i % 2].id]) for i in range(12)]
    for blob in blobs[:4]:
        await ink.update_blob(blob.id, {"title": "edited"})
    for blob in blobs[4:7]:
        await ink.move_blob(blob.id, blob.bucket_ids[0], shelves[2].id)
    await ink.migrate_blob(blobs[7].id, name)
    for blob in blobs[8:10]:
        await ink.delete_blob(blob.id)
    spare = await ink.create_bucket("spare", "folder")
    await ink.delete_bucket(spare.id)
    await ink.create_blob(None)
    return {"schema": name, "root": root, "shelves": shelves, "blobs": blobs}


async def dump(system: RunningSystem) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every read-model table, once the projections have caught up with the log."""
    c = system.services
    await system.running.watch.wait(await c.store.last_position(), [p.name for p in c.projections], 30)
    conn = await asyncpg.connect(system.running.database_url)
    try:
        out: dict[str, list[tuple[Any, ...]]] = {}
        for projection in c.projections:
            for table in projection.tables:
                rows = await conn.fetch(f'SELECT * FROM "{table}" ORDER BY 1, 2')
                out[table] = [tuple(r.items()) for r in rows]
        return out
    finally:
        await conn.close()


async def keep_querying(
    ink: InkstreamClient, queries: list[Callable[[], Awaitable[Any]]], stop: asyncio.Event
) -> list[tuple[float, str]]:
    """Queries at a pace under the per-user rate limit until told to stop: (answered at, "ok" or the error).

    ``ink`` is built with ``retries=0``: a query the rebuild disturbed would show here, not be retried away.
    """
    answers: list[tuple[float, str]] = []
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        for query in queries:
            try:
                await query()
                answers.append((loop.time(), "ok"))
            except InkstreamError as exc:
                answers.append((loop.time(), repr(exc)))
            await asyncio.sleep(0.02)
    return answers


def inkstream_env(system: RunningSystem) -> dict[str, str]:
    return {**os.environ, "INKSTREAM_NATS_URL": system.running.nats_url,
            "INKSTREAM_DATABASE_URL": system.running.database_url, "INKSTREAM_LOG_LEVEL": "warning"}


async def run_inkstream(system: RunningSystem, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        str(INKSTREAM), *args, env=inkstream_env(system),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 180)
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


async def test_replay_rebuilds_equal_read_models_while_queries_answer(
    system: RunningSystem, http: aiohttp.ClientSession, sign_up: SignUp
) -> None:
    ink = await sign_up("replay")
    made = await mixed_workload(ink)
    before = await dump(system)
    assert before["blobs"] and before["blob_buckets"] and before["buckets"] and before["schemas"] and before["users"]

    reader = InkstreamClient(system.base_url, token=ink.token, session=http, retries=0)
    reader.observe_position(ink.last_position)
    queries: list[Callable[[], Awaitable[Any]]] = [
        lambda: reader.list_blobs(bucket_id=made["shelves"][0].id), lambda: reader.get_blob(made["blobs"][0].id),
        lambda: reader.get_bucket(made["root"].id), lambda: reader.get_schema(made["schema"]), reader.me,
    ]
    stop = asyncio.Event()
    querying = asyncio.create_task(keep_querying(reader, queries, stop))
    try:
        await asyncio.sleep(0.1)
        c = system.services
        last = await c.store.last_position()
        started = asyncio.get_running_loop().time()
        for projection in c.projections:
            assert await rebuild(projection, dsn=system.running.database_url, store=c.store, codec=c.codec) >= last
        finished = asyncio.get_running_loop().time()
        await asyncio.sleep(0.1)
    finally:
        stop.set()
        answers = await querying
    assert {outcome for _, outcome in answers} == {"ok"}, answers
    assert any(started < at < finished for at, _ in answers), "no query was answered during the rebuild"
    assert await dump(system) == before

    # The service still takes commands and shows them after the swap.
    blob = await ink.create_blob({"title": "after"}, bucket_ids=[made["shelves"][0].id])
    page = await ink.list_blobs(bucket_id=made["shelves"][0].id, limit=500)
    assert page.items[-1].id == blob.id


async def test_the_replay_and_audit_commands(system: RunningSystem, sign_up: SignUp) -> None:
    ink = await sign_up("replay")
    made = await mixed_workload(ink)
    before = await dump(system)

    code, out, err = await run_inkstream(system, "replay")
    assert code == 0, (out, err)
    assert "rebuilt" in err
    assert await dump(system) == before

    blob = made["blobs"][0]
    code, out, err = await run_inkstream(system, "audit", "blob", blob.id, "--json")
    assert code == 0, (out, err)
    events = [orjson.loads(line) for line in out.splitlines() if line.strip()]
    history = (await ink.blob_history(blob.id)).items
    assert [e["type"] for e in events] == ["Blob.Created", "Blob.Updated"]
    assert [(e["position"], e["type"], e["version"], e["actor"], e["at"], e["data"]) for e in events] == [
        (h.position, h.type, h.version, h.actor, h.model_dump(mode="json")["at"], h.data) for h in history
    ]
