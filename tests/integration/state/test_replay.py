"""Replaying the log rebuilds read models equal, row by row, to the live ones, while queries keep answering."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson

from adapters.postgres.rebuild import rebuild
from tests.integration.state.client import call, create_blob, create_bucket, ok
from tests.support.system import RunningSystem
from tests.support.users import TestUser as User
from tests.support.users import new_user

INKSTREAM = Path(sys.executable).parent / "inkstream"

SCHEMA = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}


async def mixed_workload(http: aiohttp.ClientSession, user: User) -> dict[str, Any]:
    """Every kind of change of every content aggregate, a little of each."""
    name = f"replay-{uuid.uuid4().hex[:8]}"
    await ok(http, "POST", "/v1/schemas", user, 201, json={"name": name, "version": "1.0.0", "schema": SCHEMA})
    await ok(http, "POST", "/v1/schemas", user, 201, json={
        "name": name, "version": "2.0.0", "schema": {"type": "object", "required": ["name"]},
        "migration": {"from_version": "1.0.0", "transform": "function migrate(d) { return {name: d.title}; }"},
    })
    root = await create_bucket(http, user, "root", "library")
    shelves = [await create_bucket(http, user, f"shelf {i}", "shelf", root["id"]) for i in range(3)]
    await ok(http, "PATCH", f"/v1/buckets/{shelves[2]['id']}", user, json={"name": "renamed", "parent_id": None})
    blobs = []
    for i in range(12):
        blob = await create_blob(http, user, {"title": f"t{i}", "tags": ["a", i]}, schema_id=f"{name}@1.0.0",
                                 bucket_ids=[shelves[i % 2]["id"]])
        blobs.append(blob)
    for blob in blobs[:4]:
        await ok(http, "PUT", f"/v1/blobs/{blob['id']}", user, json={"data": {"title": "edited"}})
    for blob in blobs[4:7]:
        await ok(http, "POST", f"/v1/blobs/{blob['id']}/move", user,
                 json={"from_bucket_id": blob["bucket_ids"][0], "to_bucket_id": shelves[2]["id"]})
    await ok(http, "POST", f"/v1/blobs/{blobs[7]['id']}/migrate", user, json={"schema_id": name})
    for blob in blobs[8:10]:
        await ok(http, "DELETE", f"/v1/blobs/{blob['id']}", user)
    spare = await create_bucket(http, user, "spare")
    await ok(http, "DELETE", f"/v1/buckets/{spare['id']}", user)
    await create_blob(http, user, None)
    return {"schema": name, "root": root, "shelves": shelves, "blobs": blobs}


async def dump(system: RunningSystem) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every read-model table, once the projections have caught up with the log."""
    c = system.container
    await c.watch.wait(await c.store.last_position(), [p.name for p in c.projections], 30)
    conn = await asyncpg.connect(c.database_url)
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
    http: aiohttp.ClientSession, user: User, paths: list[str], stop: asyncio.Event
) -> list[tuple[float, int]]:
    """GETs at a pace under the per-user rate limit until told to stop: (answered at, status)."""
    answers: list[tuple[float, int]] = []
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        for path in paths:
            async with http.get(path, headers=user.headers) as r:
                await r.read()
                answers.append((loop.time(), r.status))
            await asyncio.sleep(0.02)
    return answers


def inkstream_env(system: RunningSystem) -> dict[str, str]:
    return {**os.environ, "INKSTREAM_NATS_URL": system.container.nats_url,
            "INKSTREAM_DATABASE_URL": system.container.database_url, "INKSTREAM_LOG_LEVEL": "warning"}


async def run_inkstream(system: RunningSystem, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        str(INKSTREAM), *args, env=inkstream_env(system),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 180)
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


async def test_replay_rebuilds_equal_read_models_while_queries_answer(
    system: RunningSystem, http: aiohttp.ClientSession
) -> None:
    user = await new_user(http, "replay")
    made = await mixed_workload(http, user)
    before = await dump(system)
    assert before["blobs"] and before["blob_buckets"] and before["buckets"] and before["schemas"] and before["users"]

    paths = [f"/v1/blobs?bucket_id={made['shelves'][0]['id']}", f"/v1/blobs/{made['blobs'][0]['id']}",
             f"/v1/buckets/{made['root']['id']}", f"/v1/schemas/{made['schema']}", "/v1/auth/me"]
    stop = asyncio.Event()
    querying = asyncio.create_task(keep_querying(http, user, paths, stop))
    try:
        await asyncio.sleep(0.1)
        c = system.container
        last = await c.store.last_position()
        started = asyncio.get_running_loop().time()
        for projection in c.projections:
            assert await rebuild(projection, dsn=c.database_url, store=c.store, codec=c.codec) >= last
        finished = asyncio.get_running_loop().time()
        await asyncio.sleep(0.1)
    finally:
        stop.set()
        answers = await querying
    assert {status for _, status in answers} == {200}, answers
    assert any(started < at < finished for at, _ in answers), "no query was answered during the rebuild"
    assert await dump(system) == before

    # The service still takes commands and shows them after the swap.
    blob = await create_blob(http, user, {"title": "after"}, bucket_ids=[made["shelves"][0]["id"]])
    page = await ok(http, "GET", "/v1/blobs", user, params={"bucket_id": made["shelves"][0]["id"], "limit": 500})
    assert page["items"][-1]["id"] == blob["id"]


async def test_the_replay_and_audit_commands(system: RunningSystem, http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "replay")
    made = await mixed_workload(http, user)
    before = await dump(system)

    code, out, err = await run_inkstream(system, "replay")
    assert code == 0, (out, err)
    assert "rebuilt" in err
    assert await dump(system) == before

    blob = made["blobs"][0]
    code, out, err = await run_inkstream(system, "audit", "blob", blob["id"], "--json")
    assert code == 0, (out, err)
    events = [orjson.loads(line) for line in out.splitlines() if line.strip()]
    history = (await call(http, "GET", f"/v1/blobs/{blob['id']}/history", user)).body["items"]
    assert [e["type"] for e in events] == ["Blob.Created", "Blob.Updated"]
    assert [(e["position"], e["type"], e["version"], e["actor"], e["at"], e["data"]) for e in events] == [
        (h["position"], h["type"], h["version"], h["actor"], h["at"], h["data"]) for h in history
    ]
