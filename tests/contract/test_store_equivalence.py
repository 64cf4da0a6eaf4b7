"""Property: random event sequences project to the same documents in PostgreSQL and MongoDB.

Random commands on every content aggregate (users, schemas, buckets, blobs,
books) give an event log; the real projections turn it into changes, and each
store applies them in the same random batches, through the code its projector
runs (``adapters/postgres/changes.py``, ``adapters/mongo/changes.py``). MongoDB
also gets what a store without transactions sees: a batch applied again after
a crash before its checkpoint, and a stale batch landing late from a deposed
leader. Every row of every table must then be the same in both stores.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.mongo.changes import apply_events, purge_tombstones
from adapters.mongo.client import Mongo, open_mongo
from adapters.mongo.collections import ensure_indexes, spec
from adapters.mongo.encoding import decode_document, timestamp
from adapters.postgres.changes import apply_changes
from adapters.postgres.migrations import migrate
from adapters.postgres.pool import connect
from adapters.projector import Projected
from adapters.runtime.bootstrap import aggregates, projections
from domain.base import EventCodec, InkAggregate
from domain.blob import Blob
from domain.book import Book
from domain.bucket import Bucket
from domain.errors import DomainError
from domain.ids import new_id
from domain.recorded import Recorded
from domain.schema import Schema
from domain.user import User
from tests.support.mongo import MongoServer, new_database_name
from tests.support.servers import Database

CODEC = EventCodec(aggregates())
PROJECTIONS = projections()
TABLES = [t for p in PROJECTIONS for t in p.tables]
OWNERS = [new_id(), new_id()]
BUCKET_IDS = [new_id() for _ in range(3)]  # blobs may name buckets that were never made, as events allow

storable = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
text = st.text(storable, max_size=12)
keys = st.one_of(text, st.sampled_from(["$ref", "$id", "a.b", "$", "title", "_id", "position"]))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | text
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=8,
)
titles = st.text(storable, min_size=1, max_size=10).filter(lambda t: t.strip() != "")
slot = st.integers(0, 1)
versions = st.sampled_from(["1.0.0", "1.1.0", "2.0.0", "2.0.0-rc.1", "2.0.0-rc.10", "10.0.0", "1.0.0-alpha"])

steps = st.lists(st.one_of(
    st.tuples(st.just("user"), text, titles),
    st.tuples(st.just("schema"), st.integers(0, 1), versions, st.dictionaries(keys, json_values, max_size=3)),
    st.tuples(st.just("bucket.create"), slot, st.integers(0, 1), titles, st.none() | slot),
    st.tuples(st.just("bucket.update"), slot, titles, st.none() | slot),
    st.tuples(st.just("bucket.delete"), slot),
    st.tuples(st.just("blob.create"), slot, st.integers(0, 1), json_values, st.none() | st.just("s0@1.0.0"),
              st.lists(st.sampled_from(BUCKET_IDS), unique=True, max_size=2)),
    st.tuples(st.just("blob.update"), slot, json_values),
    st.tuples(st.just("blob.move"), slot, st.sampled_from(BUCKET_IDS)),
    st.tuples(st.just("blob.migrate"), slot, st.sampled_from(["s0@2.0.0", "s1@1.0.0"]), json_values),
    st.tuples(st.just("blob.delete"), slot),
    st.tuples(st.just("book.create"), slot, st.integers(0, 1), titles, st.dictionaries(keys, json_values, max_size=2),
              st.lists(st.tuples(titles, text), max_size=3)),
    st.tuples(st.just("book.update"), slot, st.none() | titles, st.none() | st.dictionaries(keys, json_values, max_size=2)),
    st.tuples(st.just("book.add"), slot, titles, text, st.none() | st.integers(1, 4)),
    st.tuples(st.just("book.edit"), slot, st.integers(0, 5), st.none() | titles, st.none() | text),
    st.tuples(st.just("book.remove"), slot, st.integers(0, 5)),
    st.tuples(st.just("book.reorder"), slot, st.randoms(use_true_random=False)),
    st.tuples(st.just("book.delete"), slot),
), min_size=1, max_size=25)


def _act(world: dict[tuple[str, int], InkAggregate], step: tuple[Any, ...]) -> InkAggregate | None:
    """Apply one command; the aggregate that recorded something, if any."""
    kind = step[0]
    if kind == "user":  # a second registration of an email is refused: each one is new
        n = sum(1 for k in world if k[0] == "user")
        world[("user", n)] = user = User.register(f"u{n}-{step[1].encode().hex()}@example.com", step[2], "hash")
        return user
    if kind == "schema":
        _, n, version, doc = step
        schema = world.get(("schema", n))
        if schema is None:
            world[("schema", n)] = schema = Schema.register(f"s{n}", OWNERS[0], version, doc, None)
        else:
            schema.add_version(OWNERS[0], version, doc, None)  # type: ignore[attr-defined]
        return schema
    family, _, op = kind.partition(".")
    key = (family, step[1])
    current = world.get(key)
    if op == "create":
        if family == "bucket":
            parent = world.get(("bucket", step[4])) if step[4] is not None else None
            made: InkAggregate = Bucket.create(OWNERS[step[2]], step[3], "folder",
                                               parent.id_str if parent is not None else None)
        elif family == "blob":
            made = Blob.create(OWNERS[step[2]], step[3], step[4], None, step[5])
        else:
            made = Book.create(OWNERS[step[2]], step[3], step[4], [{"title": t, "content": c} for t, c in step[5]])
        world[key] = made
        return made
    if current is None:
        return None
    args = step[2:]
    if kind == "bucket.update":
        parent = world.get(("bucket", args[1])) if args[1] is not None else None
        current.update(args[0], parent.id_str if parent is not None else None, ())  # type: ignore[attr-defined]
    elif kind == "blob.move":
        blob: Blob = current  # type: ignore[assignment]
        if not blob.bucket_ids:
            return None
        blob.move(blob.bucket_ids[0], args[0])
    elif kind in ("book.edit", "book.remove"):
        book: Book = current  # type: ignore[assignment]
        if not book.chapter_ids:
            return None
        chapter = book.chapter_ids[args[0] % len(book.chapter_ids)]
        book.edit_chapter(chapter, *args[1:]) if kind == "book.edit" else book.remove_chapter(chapter)
    elif kind == "book.reorder":
        ids = list(current.chapter_ids)  # type: ignore[attr-defined]
        args[0].shuffle(ids)
        current.reorder(ids)  # type: ignore[attr-defined]
    else:
        method = {"update": "update", "delete": "delete", "migrate": "migrate", "add": "add_chapter"}[op]
        getattr(current, method)(*args)
    return current


def log_of(commands: list[tuple[Any, ...]]) -> list[Recorded]:
    """The events the accepted commands recorded, as the log gives them back (JSON round trip)."""
    world: dict[tuple[str, int], InkAggregate] = {}
    records: list[Recorded] = []
    for step in commands:
        try:
            aggregate = _act(world, step)
        except DomainError:
            continue  # a refused command records nothing
        if aggregate is None:
            continue
        for event in aggregate.collect_events():
            new = CODEC.encode(event, actor="someone")
            records.append(Recorded(
                position=len(records) + 1, aggregate_type=type(aggregate).TYPE, aggregate_id=aggregate.id_str,
                type=new.type, version=new.version, at=new.at, class_version=new.class_version,
                data=orjson.loads(orjson.dumps(new.data)), actor=new.actor,
            ))
    return records


@dataclass
class Stores:
    pg: asyncpg.Connection
    mongo: Mongo


@pytest.fixture(scope="module")
async def stores(database: Database, mongo_server: MongoServer) -> AsyncIterator[Stores]:
    dsn = await database.new_database()
    conn = await connect(dsn)
    await migrate(conn)
    mongo = await open_mongo(mongo_server.database_url(new_database_name()), transactions=False)
    await ensure_indexes(mongo.db, TABLES)
    try:
        yield Stores(conn, mongo)
    finally:
        await mongo.client.drop_database(mongo.db.name)
        await mongo.close()
        await conn.close()


def as_json(value: Any) -> Any:
    """Numbers as the JSON numbers they are: jsonb keeps a number's decimal text (1e16 comes
    back as 10000000000000000), BSON the double, and both are the same JSON number."""
    if isinstance(value, dict):
        return {k: as_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_json(v) for v in value]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Decimal(repr(value))
    return value


def _row(values: dict[str, Any]) -> dict[str, Any]:
    return {k: timestamp(v) if isinstance(v, datetime) else as_json(v) for k, v in values.items()}


async def pg_rows(conn: asyncpg.Connection) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for table in TABLES:
        key = ", ".join(f'"{k}"' for k in spec(table).key)
        out[table] = [_row(dict(r)) for r in await conn.fetch(f'SELECT * FROM "{table}" ORDER BY {key}')]
    return out


async def mongo_rows(mongo: Mongo) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for table in TABLES:
        docs = await mongo.db[table].find({"_deleted": {"$exists": False}}).to_list()
        rows = [_row(decode_document(d)) for d in docs]
        out[table] = sorted(rows, key=lambda r, k=spec(table).key: [r[c] for c in k])
    return out


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(commands=steps, cuts=st.randoms(use_true_random=False))
async def test_random_event_sequences_project_to_the_same_documents_in_both_stores(
    stores: Stores, commands: list[tuple[Any, ...]], cuts: random.Random
) -> None:
    records = log_of(commands)
    for table in TABLES:
        await stores.pg.execute(f'TRUNCATE "{table}"')
        await stores.mongo.db[table].delete_many({})
    projected = [Projected(r, [c for p in PROJECTIONS for c in p.changes(CODEC.upcast(r))]) for r in records]
    batches: list[list[Projected]] = []
    while len(projected) > sum(map(len, batches)):
        start = sum(map(len, batches))
        batches.append(projected[start:start + cuts.randint(1, 6)])

    for batch in batches:
        async with stores.pg.transaction():
            await apply_changes(stores.pg, [c for e in batch for c in e.changes])
        await apply_events(stores.mongo.db, batch)
        if cuts.random() < 0.3:  # a crash before the checkpoint: the batch comes again
            await apply_events(stores.mongo.db, batch)
    if len(batches) > 1:  # a deposed leader's stale batches land late: a prefix of the log, and one batch
        for stale in [*batches[:cuts.randrange(1, len(batches))], cuts.choice(batches)]:
            await apply_events(stores.mongo.db, stale)
    if records:
        await purge_tombstones(stores.mongo.db, TABLES, records[-1].position)

    assert await mongo_rows(stores.mongo) == await pg_rows(stores.pg)
    # the weights that bound list pages are never less than what PostgreSQL gives back
    assert not await stores.pg.fetch("SELECT id FROM blobs WHERE data_bytes < octet_length(data::text)")
    assert not await stores.pg.fetch("SELECT id FROM schemas WHERE schema_bytes"
                                     " < octet_length(schema::text) + COALESCE(octet_length(migration::text), 0)")
    assert not await stores.pg.fetch("SELECT id FROM books WHERE metadata_bytes < octet_length(metadata::text)")
    assert not await stores.pg.fetch(
        "SELECT c.id FROM book_chapters c JOIN books b ON b.id = c.book_id WHERE c.summary_bytes"
        " < octet_length(jsonb_build_object('id', c.id, 'title', c.title, 'order', b.chapter_count)::text)")
