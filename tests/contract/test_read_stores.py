"""The read-model stores against each other: PostgreSQL and MongoDB answer every query alike.

One system (``mongo_system``) projects the same log into both stores and
answers from MongoDB; the session's other system (``pg_system``) answers from
PostgreSQL. After a mixed workload (the seed's Tasks 3, 4 and 7,
``tests/support/workload.py``):

* every query of the API answers the same, byte for byte, from either system,
  page by page, cursors included;
* every ``ReadModel`` call answers the same from the two stores of one process;
* each store keeps the contract on its own (paging visits each item once,
  forged cursors are refused, deleted things are gone) — parametrised;
* ``inkstream replay --store mongo`` rebuilds collections equal to the live
  ones while queries keep answering, and the live projector carries on after.
"""

from __future__ import annotations

import asyncio
import base64
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from adapters.client import InkstreamClient, InkstreamError
from adapters.cursors import encode_cursor
from adapters.mongo.encoding import decode_document
from domain.ids import is_made_up, may_come_again, new_id
from projections.read_model import InvalidCursor, ReadModel
from tests.support.sdk import new_client
from tests.support.system import RunningSystem
from tests.support.workload import Made, queries_of, studio_workload

INKSTREAM = Path(sys.executable).parent / "inkstream"
# GET routes that no read model answers: the live stream of pushes comes from the log.
NOT_READ_MODEL = {"/v1/events"}


@dataclass
class World:
    system: RunningSystem
    ink: InkstreamClient
    made: Made
    owner: str


async def caught_up(system: RunningSystem, position: int) -> None:
    names = [p.name for p in system.services.projections]
    for store in system.running.stores.values():
        await store.watch.wait(position, names, 60)


@pytest.fixture(scope="module")
async def world(mongo_system: RunningSystem) -> AsyncIterator[World]:
    ink = await new_client(mongo_system.base_url, "stores")
    try:
        made = await studio_workload(ink)
        await caught_up(mongo_system, made.last_position)
        assert ink.user_id is not None
        yield World(mongo_system, ink, made, ink.user_id)
    finally:
        await ink.close()


def stores(world: World) -> dict[str, ReadModel]:
    return {kind: store.read_model for kind, store in world.system.running.stores.items()}


# -- the API ------------------------------------------------------------------------------------


async def _get(session: aiohttp.ClientSession, base: str, path: str, params: dict[str, Any],
               token: str) -> tuple[int, str | None, Any]:
    """One query as a client sees it; a 429 (one user asks hundreds here) is waited out and asked again."""
    while True:
        async with session.get(base + path, params=params, headers={"Authorization": f"Bearer {token}"}) as r:
            if r.status == 429:
                await asyncio.sleep(float(r.headers.get("Retry-After", "0.2")))
                continue
            body: Any = await r.json() if r.content_type.endswith("json") else await r.read()
            return r.status, r.headers.get("ETag"), body


async def test_every_query_of_the_api_answers_the_same_from_either_store(
    world: World, pg_system: RunningSystem
) -> None:
    assert world.ink.token is not None and pg_system.read_store == "postgres" and world.system.read_store == "mongo"
    await caught_up(pg_system, world.made.last_position)
    asked: set[str] = set()
    compared = 0
    async with aiohttp.ClientSession() as http:
        for route, path, params in queries_of(world.made, world.owner):
            asked.add(route)
            params = {**params, "min_position": world.made.last_position}
            while True:
                from_pg = await _get(http, pg_system.base_url, path, params, world.ink.token)
                from_mongo = await _get(http, world.system.base_url, path, params, world.ink.token)
                assert from_mongo == from_pg, (path, params)
                compared += 1
                cursor = from_pg[2].get("next_cursor") if isinstance(from_pg[2], dict) else None
                if not cursor:
                    break
                params = {**params, "cursor": cursor}  # the next page, on the cursor both handed out
        async with http.get(pg_system.base_url + "/openapi.json") as r:
            paths = (await r.json())["paths"]
    every_query = {p for p, ops in paths.items() if p.startswith("/v1/") and "get" in ops} - NOT_READ_MODEL
    assert every_query <= asked, f"queries not compared: {every_query - asked}"
    assert compared > len(asked)


# -- the read models of one process --------------------------------------------------------------


async def _all_pages(list_page: Callable[[int, str | None], Awaitable[Any]], limit: int) -> tuple[list[Any], list[str]]:
    items: list[Any] = []
    cursors: list[str] = []
    cursor = None
    while True:
        page = await list_page(limit, cursor)
        items += page.items
        if page.next_cursor is None:
            return items, cursors
        cursors.append(page.next_cursor)
        cursor = page.next_cursor


def _calls(world: World) -> list[tuple[str, Callable[[ReadModel], Awaitable[Any]]]]:
    made, owner = world.made, world.owner
    calls: list[tuple[str, Callable[[ReadModel], Awaitable[Any]]]] = [
        ("user", lambda m: m.user(owner)),
        ("user_account", lambda m: m.user_account(owner)),
        ("unknown user", lambda m: m.user("nobody")),
    ]
    for sid in [*made.schema_ids, made.schema, "no-such", "not a schema id!"]:
        calls.append((f"schema {sid}", lambda m, sid=sid: m.schema(sid)))
    every_bucket = [*made.buckets.values(), *made.deleted_buckets]
    for bid in every_bucket:
        calls.append((f"bucket {bid}", lambda m, bid=bid: m.bucket(bid)))
        calls.append((f"bucket_is_empty {bid}", lambda m, bid=bid: m.bucket_is_empty(bid)))
    for bid in [*made.blobs, *made.deleted_blobs, *made.output_blobs]:
        calls.append((f"blob {bid}", lambda m, bid=bid: m.blob(bid)))
    for pid in [*made.processors, *made.deleted_processors]:
        calls.append((f"processor {pid}", lambda m, pid=pid: m.processor(pid)))
        calls.append((f"job_ids {pid}", lambda m, pid=pid: m.job_ids(pid, ("completed", "failed", "pending"))))
    for jid in made.jobs:
        calls.append((f"job {jid}", lambda m, jid=jid: m.job(jid)))
    calls.append(("running_job_ids", lambda m: m.running_job_ids(owner)))
    calls.append(("triggered_processors", lambda m: m.triggered_processors(owner)))
    for bid in [*made.books, *made.deleted_books]:
        calls.append((f"book {bid}", lambda m, bid=bid: m.book(bid)))
    for limit in (1, 2, 500):
        calls.append((f"schema_versions/{limit}", lambda m, n=limit: _all_pages(
            lambda lim, c: m.schema_versions(made.schema, lim, c), n)))
        for parent in (None, *every_bucket):
            calls.append((f"buckets {parent}/{limit}", lambda m, n=limit, p=parent: _all_pages(
                lambda lim, c: m.buckets(owner, p, lim, c), n)))
        for bucket in (None, *every_bucket):
            for schema in (None, made.schema, *made.schema_ids):
                calls.append((f"blobs {bucket} {schema}/{limit}", lambda m, n=limit, b=bucket, s=schema: _all_pages(
                    lambda lim, c: m.blobs(owner, b, s, lim, c), n)))
        calls.append((f"books/{limit}", lambda m, n=limit: _all_pages(lambda lim, c: m.books(owner, lim, c), n)))
        calls.append((f"processors/{limit}", lambda m, n=limit: _all_pages(
            lambda lim, c: m.processors(owner, lim, c), n)))
        for pid in (None, *made.processors):
            for status in (None, "completed", "failed"):
                calls.append((f"jobs {pid} {status}/{limit}", lambda m, n=limit, p=pid, st=status: _all_pages(
                    lambda lim, c: m.jobs(owner, p, st, lim, c), n)))
    for mid in made.migrations:
        calls.append((f"migration {mid}", lambda m, mid=mid: m.migration(mid)))
    for limit in (1, 2, 500):
        calls.append((f"migrations/{limit}", lambda m, n=limit: _all_pages(
            lambda lim, c: m.migrations(owner, lim, c), n)))
    versions = [made.schema_ids, [f"{made.schema}@1.0.0"], [f"{made.schema}@2.0.0"], ["no-such@1.0.0"]]
    for bucket in (None, *every_bucket):
        for ids in versions:
            calls.append((f"migration_candidates {bucket} {ids}", lambda m, b=bucket, i=ids: m.migration_candidates(
                owner, i, b)))
        for target in (f"{made.schema}@2.0.0", f"{made.schema}@1.0.0"):
            calls.append((f"completed_run {bucket} {target}", lambda m, b=bucket, t=target: m.completed_run(
                owner, f"{made.schema}@1.0.0", t, b)))
    return calls


async def test_every_read_model_call_answers_the_same_from_both_stores(world: World) -> None:
    models = stores(world)
    assert set(models) == {"postgres", "mongo"}
    for label, call in _calls(world):
        from_pg, from_mongo = await call(models["postgres"]), await call(models["mongo"])
        assert from_mongo == from_pg, label


async def test_both_stores_index_the_event_of_every_command_that_may_come_again(world: World) -> None:
    """The ``commands`` projection: every event of a command id that may come again (the SDK's
    commands carry an ``Idempotency-Key``) on an existing aggregate is found by it in either store,
    the first when one landed twice on an aggregate; a made-up command id, a creation under a
    made-up aggregate id (never looked up), and a command id that never landed, are not."""
    first: dict[tuple[str, str, str], int] = {}
    made_up = []
    async for batch in world.system.services.store.read_span(1, world.made.last_position):  # type: ignore[attr-defined]
        for record in batch:
            if may_come_again(record.command_id) and not (record.version == 1 and is_made_up(record.aggregate_id)):
                assert record.command_id is not None
                first.setdefault((record.aggregate_type, record.aggregate_id, record.command_id), record.position)
            elif len(made_up) < 100:
                made_up.append(record)
    assert len(first) > 10, "the workload's keyed commands on existing aggregates"
    assert any(r.version == 1 and may_come_again(r.command_id) for r in made_up), "keyed creations"
    assert any(not may_come_again(r.command_id) for r in made_up), "commands without a key"
    for kind, model in stores(world).items():
        for (aggregate_type, aggregate_id, command_id), position in first.items():
            checkpoint, found = await model.command_position(aggregate_type, aggregate_id, command_id)
            assert checkpoint >= world.made.last_position, kind
            assert found == (position if position <= checkpoint else None), (kind, command_id)
            _, other_type = await model.command_position("other", aggregate_id, command_id)
            assert other_type is None, kind
        for record in made_up:
            assert record.command_id is not None
            _, found = await model.command_position(record.aggregate_type, record.aggregate_id, record.command_id)
            assert found is None, kind
        assert (await model.command_position("blob", new_id(), "idem-" + "0" * 40))[1] is None, kind


# -- each store keeps the contract ------------------------------------------------------------------


@pytest.fixture(params=["postgres", "mongo"])
def model(request: pytest.FixtureRequest, world: World) -> ReadModel:
    return stores(world)[request.param]


async def test_paging_visits_every_item_once_in_order(world: World, model: ReadModel) -> None:
    everything = (await model.blobs(world.owner, None, None, 500, None)).items
    made = [*world.made.blobs, *world.made.output_blobs]
    assert [b.id for b in everything] == sorted(made, key=lambda i: everything[[b.id for b in everything].index(i)].created_at)
    assert len(everything) == len(made)
    for limit in (1, 2, 3):
        items, cursors = await _all_pages(lambda lim, c: model.blobs(world.owner, None, None, lim, c), limit)
        assert items == everything and len(set(cursors)) == len(cursors)
    keys = [(b.created_at, b.id) for b in everything]
    assert keys == sorted(keys), "oldest first"
    books = (await model.books(world.owner, 500, None)).items
    assert [b.id for b in books] == sorted(world.made.books)


async def test_schema_versions_come_newest_first_and_a_bare_name_is_the_latest_release(
    world: World, model: ReadModel
) -> None:
    name = world.made.schema
    versions = [s.version for s in (await model.schema_versions(name, 500, None)).items]
    assert versions == ["2.0.0", "1.2.0", "1.1.0-rc.1", "1.0.0"]
    latest = await model.schema(name)
    assert latest is not None and latest.version == "2.0.0"
    migrated = (await model.blobs(world.owner, None, name, 500, None)).items
    assert [b.schema_id for b in migrated] == [f"{name}@2.0.0"] * 2


async def test_forged_cursors_are_refused(world: World, model: ReadModel) -> None:
    forged = ["not base64 at all!", "bm90IGEgY3Vyc29y", encode_cursor(["a"]), encode_cursor(["2026", "x", "y"]),
              encode_cursor(["x\u0000", "id"]), base64.urlsafe_b64encode(b'[1180591620717411303424,1,1,"~"]').decode(), encode_cursor([1, 1, 1, 2])]
    for cursor in forged:
        for call in (lambda: model.blobs(world.owner, None, None, 2, cursor),
                     lambda: model.buckets(world.owner, None, 2, cursor),
                     lambda: model.schema_versions(world.made.schema, 2, cursor)):
            with pytest.raises(InvalidCursor):
                await call()


async def test_what_was_deleted_is_gone_and_what_was_emptied_is_empty(world: World, model: ReadModel) -> None:
    made = world.made
    for blob in made.deleted_blobs:
        assert await model.blob(blob) is None
    for bucket in made.deleted_buckets:
        assert await model.bucket(bucket) is None and await model.bucket_is_empty(bucket)
    for book in made.deleted_books:
        assert await model.book(book) is None
    assert await model.triggered_processors(world.owner) == 1, "the live one with triggers; the deleted one is gone"
    assert not await model.bucket_is_empty(made.buckets["root"])  # has children
    assert not await model.bucket_is_empty(made.buckets["loose"])  # holds blobs
    novel = {b.id for b in (await model.blobs(world.owner, made.buckets["novel"], None, 500, None)).items}
    assert made.blobs[0] not in novel and made.blobs[3] not in novel, "moved out"
    archive = {b.id for b in (await model.blobs(world.owner, made.buckets["archive"], None, 500, None)).items}
    assert made.blobs[0] in archive
    book = await model.book(made.books[0])
    assert book is not None and book.title == "My Great Adventure"
    assert [(c.order, c.title) for c in book.chapters] == [(1, "The Journey"), (2, "The Beginning"), (3, "Prologue")]
    assert book.metadata == {"genre": "fantasy", "$odd.key": 1}
    odd = await model.blob(made.blobs[-3])
    assert odd is not None and odd.data == {"$ref": "#/x", "$id": "y", "a.b": {"$gt": 1}, "plain": [1, {"$where": "no"}]}


# -- replay ----------------------------------------------------------------------------------------


async def _dump(system: RunningSystem) -> dict[str, list[dict[str, Any]]]:
    store = system.running.stores["mongo"]
    assert store.mongo is not None
    await caught_up(system, await system.services.store.last_position())
    db = store.mongo.db
    out: dict[str, list[dict[str, Any]]] = {}
    for projection in system.services.projections:
        for table in projection.tables:
            docs = await db[table].find({}).sort("_id").to_list()
            out[table] = [{**decode_document(d), "_id": d["_id"], "_v": d.get("_v")} for d in docs]
    return out


async def _keep_querying(ink: InkstreamClient, made: Made, stop: asyncio.Event) -> list[str]:
    outcomes: list[str] = []
    while not stop.is_set():
        for query in (lambda: ink.list_blobs(bucket_id=made.buckets["novel"]), lambda: ink.get_book(made.books[0]),
                      lambda: ink.get_schema(made.schema), lambda: ink.list_buckets(made.buckets["root"])):
            try:
                await query()
                outcomes.append("ok")
            except InkstreamError as exc:
                outcomes.append(repr(exc))
            await asyncio.sleep(0.05)
    return outcomes


async def test_replay_into_mongo_equals_the_live_collections_while_queries_answer(world: World) -> None:
    system = world.system
    before = await _dump(system)
    assert before["blobs"] and before["blob_buckets"] and before["book_chapters"] and before["users"]
    reader = InkstreamClient(system.base_url, token=world.ink.token, retries=0)
    stop = asyncio.Event()
    querying = asyncio.create_task(_keep_querying(reader, world.made, stop))
    try:
        proc = await asyncio.create_subprocess_exec(
            str(INKSTREAM), "replay", "--store", "mongo", env=system.cli_env(INKSTREAM_LOG_LEVEL="warning"),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 240)
    finally:
        stop.set()
        outcomes = await querying
        await reader.close()
    assert proc.returncode == 0, (out, err)
    assert "rebuilt users, schemas, buckets, blobs, books, processors, jobs, migrations, commands in mongo" in " ".join(err.decode().split())
    assert set(outcomes) == {"ok"} and len(outcomes) > 4, outcomes
    assert await _dump(system) == before

    # The live projector took its lease back and carries on from the swapped-in collections.
    blob = await world.ink.create_blob({"title": "after the replay"}, bucket_ids=[world.made.buckets["novel"]])
    listed = await world.ink.list_blobs(bucket_id=world.made.buckets["novel"], limit=500)
    assert listed.items[-1].id == blob.id
    world.made.blobs.append(blob.id)
    world.made.last_position = world.ink.last_position
