"""Property (issue 9, defect 2): a command the domain accepts produces events that every projection applies.

For each aggregate (User, Schema, Bucket, Blob, Book, Processor, Job, Migration) hypothesis draws a
sequence of its commands with hostile arguments: any code point (NUL, lone
surrogates, bidi controls), integers far beyond 64 bits, NaN and infinities,
JSON nested just under, at and over the limit, and text and documents sized
just under and over each limit (with the default limits and with small ones,
so that the book's total and chapter count are reachable too). A command the
domain refuses records nothing; every event of an accepted one travels the
way the log takes it:

* encoded by the codec and serialised as the event store does (orjson), in
  at most ``MAX_EVENT_BYTES`` (one NATS message with its headers);
* read back as the log hands it out (``to_recorded``) and decoded (replay);
* turned into changes by every projection and applied to every read-model
  store in ``STORES``: PostgreSQL with the real migrations in a database of
  its own, each example inside a transaction rolled back at its end; MongoDB
  with its indexes in a database of its own, through the position-guarded
  writes its projector makes, emptied after each example.

Only the actor (the owner) is trusted, as the token makes it; everything else
comes from the request.
"""

from __future__ import annotations

import math
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from adapters.jetstream.event_store import (
    H_ACTOR,
    H_AT,
    H_CLASS_VERSION,
    H_COMMAND,
    H_TYPE,
    H_VERSION,
    subject_for,
    to_recorded,
)
from adapters.mongo.changes import apply_events
from adapters.mongo.client import Mongo, open_mongo
from adapters.mongo.collections import ensure_indexes
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
from domain.ids import hashed_id, new_id
from domain.job import Job
from domain.migration import Migration
from domain.limits import KIB, MAX_EVENT_BYTES, MAX_JSON_DEPTH, Limits
from domain.processor import TRIGGER_EVENTS, Processor
from domain.recorded import Recorded
from domain.schema import Schema
from domain.user import User, check_registration
from projections.changes import Change
from tests.support.mongo import MongoServer, new_database_name
from tests.support.servers import Database

CODEC = EventCodec(aggregates())
PROJECTIONS = projections()
TABLES = [t for p in PROJECTIONS for t in p.tables]
DEFAULT = Limits()
SMALL = Limits(chapter_bytes=2 * KIB, chapters_per_book=6, book_bytes=8 * KIB, metadata_bytes=KIB,
               blob_bytes=4 * KIB, schema_bytes=4 * KIB)

# -- read-model stores -----------------------------------------------------------------------


class ReadModelStore(Protocol):
    """Where projections' changes land; each example runs isolated and leaves nothing behind."""

    name: str

    def isolated(self) -> Any: ...  # an async context manager

    async def apply(self, record: Recorded, changes: list[Change]) -> None: ...


@dataclass
class PostgresStore:
    conn: asyncpg.Connection
    name: str = "postgres"

    @asynccontextmanager
    async def isolated(self) -> AsyncIterator[None]:
        transaction = self.conn.transaction()
        await transaction.start()
        try:
            yield
        finally:
            await transaction.rollback()

    async def apply(self, record: Recorded, changes: list[Change]) -> None:
        await apply_changes(self.conn, changes)


@dataclass
class MongoStore:
    mongo: Mongo
    name: str = "mongo"

    @asynccontextmanager
    async def isolated(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            for table in TABLES:
                await self.mongo.db[table].delete_many({})

    async def apply(self, record: Recorded, changes: list[Change]) -> None:
        await apply_events(self.mongo.db, [Projected(record, changes)])


@pytest.fixture(scope="module")
async def stores(database: Database, mongo_server: MongoServer) -> AsyncIterator[list[ReadModelStore]]:
    """Every read-model store, each empty and migrated (``STORES`` of the module docstring)."""
    conn = await connect(await database.new_database())
    await migrate(conn)
    mongo = await open_mongo(mongo_server.database_url(new_database_name()), transactions=False)
    await ensure_indexes(mongo.db, TABLES)
    try:
        yield [PostgresStore(conn), MongoStore(mongo)]
    finally:
        await conn.close()
        await mongo.client.drop_database(mongo.db.name)
        await mongo.close()


# -- values, plausible and hostile ----------------------------------------------------------------


def nest(depth: int, leaf: Any = 1) -> Any:
    """Containers ``depth`` deep, objects and arrays in turn."""
    value = leaf
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


def sized(n: int, unit: str = "x") -> str:
    """About ``n`` bytes of UTF-8 (as JSON: plus the quotes)."""
    return unit * max(n // len(unit.encode()), 0)


def pair(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> tuple[st.SearchStrategy[Any], ...]:
    return good, bad


def probe(*pairs: tuple[st.SearchStrategy[Any], ...]) -> st.SearchStrategy[tuple[Any, ...]]:
    """One command's arguments: all plausible (two draws in three), or one of them hostile.

    Hostile values everywhere at once would have the domain refuse nearly every
    command, and then nothing would reach the projections.
    """
    goods = st.tuples(*(good for good, _ in pairs))

    def corrupt(args: tuple[Any, ...]) -> st.SearchStrategy[tuple[Any, ...]]:
        return st.integers(0, len(pairs) - 1).flatmap(
            lambda i: pairs[i][1].map(lambda bad: (*args[:i], bad, *args[i + 1:])))

    return goods.flatmap(lambda args: st.one_of(st.just(args), st.just(args), corrupt(args)))


UNDER = [sized(n - 64, unit) for n in (SMALL.chapter_bytes, SMALL.blob_bytes, SMALL.metadata_bytes,
                                       DEFAULT.metadata_bytes, DEFAULT.chapter_bytes) for unit in ("x", "é", "𝄞")]
OVER = [sized(n + 16, unit) for n in (SMALL.chapter_bytes, SMALL.blob_bytes, SMALL.metadata_bytes,
                                      DEFAULT.chapter_bytes, DEFAULT.blob_bytes) for unit in ("x", "𝄞")]
OVER += ["\x01" * (DEFAULT.chapter_bytes // 6 + 1), '"' * (SMALL.chapter_bytes // 2)]  # escapes: 6 and 2 bytes each

any_code_point = st.characters(exclude_categories=())  # NUL and lone surrogates included
words = st.text(st.characters(categories=("L", "N", "P", "S", "Zs", "M")), min_size=1, max_size=24).filter(
    lambda t: t.strip() != "")
odd_but_fine = st.sampled_from(["𝄞", "\u202e\u2066x", "~/~0/~1", "\\", '"', "a\tb\r\n", "\ufeffx", "é" * 100, "t" * 500])
texts = st.one_of(words, words, odd_but_fine)
bad_texts = st.one_of(
    st.text(any_code_point, max_size=12).filter(lambda t: "\x00" in t or any(0xD800 <= ord(c) <= 0xDFFF for c in t)),
    st.sampled_from(["", " ", "\t\n", "\x00", "a\x00b", "\ud800", "x\udfff", "t" * 501, "y" * 5000]),
    st.sampled_from(OVER),
    st.one_of(st.none(), st.integers(), st.lists(st.none(), max_size=1)),
)
contents = st.one_of(st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=60),
                     st.sampled_from(UNDER))
INTEGERS = [0, -1, 2**31, 2**53 + 1, 2**63 - 1, 2**64 - 1, -(2**63)]
numbers = st.one_of(st.integers(-(2**63), 2**64 - 1), st.sampled_from(INTEGERS),
                    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([1e308, -1e308, 5e-324, -0.0]))
bad_numbers = st.one_of(st.integers().filter(lambda n: not -(2**63) <= n < 2**64),
                        st.sampled_from([2**64, -(2**63) - 1, 10**30, -(10**400), math.inf, -math.inf, math.nan]))
scalars = st.one_of(st.none(), st.booleans(), numbers, texts, contents)
json_values = st.one_of(
    st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
                 max_leaves=12),
    st.sampled_from([nest(MAX_JSON_DEPTH - 2), nest(MAX_JSON_DEPTH - 1), list(range(2000)),
                     [{"k": i, "v": "é" * 10} for i in range(300)]]),
    st.sampled_from(UNDER).map(lambda t: {"text": t}),
)
bad_json = st.one_of(
    st.sampled_from([nest(MAX_JSON_DEPTH + 1), nest(MAX_JSON_DEPTH + 2), nest(300)]),
    st.sampled_from(OVER).map(lambda t: {"text": t}),
    st.one_of(bad_numbers, bad_texts.filter(lambda t: isinstance(t, str) and t.strip() != "")).map(
        lambda v: {"deep": [{"inside": v}]}),
    st.builds(lambda v: {1: v}, scalars),  # a key JSON cannot hold
    st.builds(lambda v: (v,), scalars),  # not a JSON value at all
)
objects = st.dictionaries(texts, json_values, max_size=4)
ids = st.builds(new_id)
bad_ids = st.one_of(bad_texts, words)
good_versions = st.one_of(
    st.from_regex(r"\A(0|[1-9]\d{0,17})\.(0|[1-9]\d{0,17})\.(0|[1-9]\d{0,17})"
                  r"(-[0-9A-Za-z-]{1,8}(\.[0-9A-Za-z-]{1,8}){0,2})?(\+[0-9A-Za-z-]{1,8})?\Z"),
    st.sampled_from(["1.0.0", "1.1.0", "2.0.0-rc.1", "1.0.0-" + "9" * 120, f"{2**63 - 1}.{2**63 - 1}.{2**63 - 1}"]),
)
bad_versions = st.one_of(
    st.sampled_from(["99999999999999999999.0.0", f"{2**63}.0.0", f"0.{2**64}.0", f"1.2.{10**30}", "01.0.0", "1.0",
                     "1.0.0-" + "a" * 200]),
    bad_texts,
)
limits = st.sampled_from([DEFAULT, SMALL])


# -- the way through the log -------------------------------------------------------------------


@dataclass
class Run:
    """One example: every accepted event goes through the log's path and into every store."""

    stores: list[ReadModelStore]
    records: list[Recorded] = field(default_factory=list)
    accepted: int = 0

    async def attempt(self, decide: Callable[[], InkAggregate | None]) -> InkAggregate | None:
        """Run one command; a refusal (a domain error) records nothing. Returns what it decided on."""
        try:
            aggregate = decide()
        except DomainError:
            return None
        assert aggregate is not None
        pending = aggregate.collect_events()
        assert len(pending) == 1, "a command records exactly one event"
        await self.through_the_log(aggregate, pending[0])
        return aggregate

    async def through_the_log(self, aggregate: InkAggregate, event: Any) -> None:
        new = CODEC.encode(event, actor=getattr(aggregate, "owner_id", None))
        payload = orjson.dumps(new.data)  # as the event store does; must not fail
        assert len(payload) <= MAX_EVENT_BYTES, f"{new.type} takes {len(payload)} bytes"
        headers = {H_TYPE: new.type, H_VERSION: str(new.version), H_CLASS_VERSION: str(new.class_version),
                   H_AT: new.at.isoformat(), H_COMMAND: new_id()}
        if new.actor:
            headers[H_ACTOR] = new.actor
        position = len(self.records) + 1
        record = to_recorded(subject_for(type(aggregate).TYPE, aggregate.id_str), position, headers, payload)
        CODEC.decode(record)  # a replay can read it back
        self.records.append(record)
        for projection in PROJECTIONS:
            changes = projection.changes(record)
            for store in self.stores:
                await store.apply(record, changes)
        self.accepted += 1

    def rebuilt(self, aggregate_id: str) -> InkAggregate | None:
        return CODEC.rebuild(r for r in self.records if r.aggregate_id == aggregate_id)


@asynccontextmanager
async def isolated(stores: list[ReadModelStore]) -> AsyncIterator[Run]:
    async with _nested(stores, 0):
        run = Run(stores)
        yield run
        event(f"events projected: {min(run.accepted, 4)}{'+' if run.accepted >= 4 else ''}")


@asynccontextmanager
async def _nested(stores: list[ReadModelStore], i: int) -> AsyncIterator[None]:
    if i == len(stores):
        yield
        return
    async with stores[i].isolated(), _nested(stores, i + 1):
        yield


def pick(options: list[str], index: Any, fallback: Any) -> Any:
    """An existing id by index (an index past the end: a new id), or the drawn value itself when it is not an index."""
    if not isinstance(index, int) or isinstance(index, bool):
        return fallback
    return options[index] if 0 <= index < len(options) else new_id()


OWNER, OTHER = new_id(), new_id()
PROPERTY = settings(max_examples=100, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


# -- User ----------------------------------------------------------------------------------------

emails = st.emails()
bad_emails = st.one_of(bad_texts, st.sampled_from(["A\x00@b.co", "x" * 300 + "@b.co", "no-at-sign", "Ａ@ｂ.ｃｏ"]))
passwords = st.text(min_size=8, max_size=40)
HASH = "$argon2id$v=19$m=19456,t=3,p=1$c2FsdA$aGFzaA"


@PROPERTY
@given(args=probe(pair(emails, bad_emails), pair(passwords, bad_texts), pair(texts, bad_texts)))
async def test_user_commands_project(stores: list[ReadModelStore], args: tuple[Any, ...]) -> None:
    email, password, username = args

    def register() -> User:
        check_registration(email, password, username)  # what the RegisterUser handler checks first
        return User.register(email, username, HASH)

    async with isolated(stores) as run:
        await run.attempt(register)


# -- Schema -------------------------------------------------------------------------------------

names = st.from_regex(r"\A[a-z0-9][a-z0-9_-]{0,63}\Z")
migrations = st.one_of(st.none(), st.fixed_dictionaries({"from_version": st.just("1.0.0"),
                                                          "transform": st.just("function migrate(d){return d}")}))
bad_migrations = st.one_of(st.fixed_dictionaries({"from_version": bad_versions, "transform": texts}),
                           st.fixed_dictionaries({"from_version": good_versions, "transform": bad_texts}),
                           json_values, bad_json)
version_steps = st.lists(
    st.tuples(st.sampled_from([OWNER, OWNER, OTHER, None]),
              probe(pair(good_versions, bad_versions), pair(objects, bad_json), pair(migrations, bad_migrations))),
    min_size=1, max_size=5,
)


@PROPERTY
@given(args=probe(pair(names, bad_texts), pair(good_versions, bad_versions), pair(objects, bad_json)),
       steps=version_steps, limit=limits)
async def test_schema_commands_project(stores: list[ReadModelStore], args: tuple[Any, ...],
                                       steps: list[tuple[Any, ...]], limit: Limits) -> None:
    name, version, document = args
    async with isolated(stores) as run:
        schema: Any = await run.attempt(lambda: Schema.register(name, OWNER, version, document, None, limit))
        for actor, (v, doc, migration) in steps if schema is not None else []:
            await run.attempt(lambda: (schema.add_version(actor, v, doc, migration, limit), schema)[1])


# -- Bucket --------------------------------------------------------------------------------------

parents = st.one_of(st.none(), ids)
ancestors = st.integers(0, 3).map(lambda n: [new_id() for _ in range(n)])
too_deep = st.integers(64, 70).map(lambda n: [new_id() for _ in range(n)])
bucket_steps = st.lists(
    st.one_of(
        st.tuples(st.just("update"), probe(pair(texts, bad_texts), pair(parents, bad_ids), pair(ancestors, too_deep))),
        st.tuples(st.just("delete"), st.just(())),
    ),
    min_size=1, max_size=5,
)


@PROPERTY
@given(args=probe(pair(texts, bad_texts), pair(texts, bad_texts), pair(parents, bad_ids), pair(ancestors, too_deep)),
       steps=bucket_steps)
async def test_bucket_commands_project(stores: list[ReadModelStore], args: tuple[Any, ...],
                                       steps: list[tuple[Any, ...]]) -> None:
    async with isolated(stores) as run:
        bucket: Any = await run.attempt(lambda: Bucket.create(OWNER, *args))
        for name, step in steps if bucket is not None else []:
            if name == "update":
                await run.attempt(lambda s=step: (bucket.update(*s), bucket)[1])
            else:
                await run.attempt(lambda: (bucket.delete(), bucket)[1])


# -- Blob ----------------------------------------------------------------------------------------

bucket_lists = st.lists(ids, max_size=3)
bad_bucket_lists = st.one_of(st.integers(101, 103).map(lambda n: [new_id() for _ in range(n)]),
                             st.lists(bad_ids, min_size=1, max_size=2), ids.map(lambda b: [b, b]), json_values)
schema_ids = st.one_of(st.none(), st.sampled_from(["novel@1.0.0", "novel@2.0.0-rc.1"]),
                       good_versions.map(lambda v: f"novel@{v}"))
bad_schema_ids = st.one_of(st.sampled_from(["novel", "@1.0.0", "Novel@1.0.0", "novel@01.0"]), bad_texts)
blob_steps = st.lists(
    st.one_of(
        st.tuples(st.just("update"), probe(pair(json_values, bad_json))),
        st.tuples(st.just("move"), probe(pair(st.integers(0, 3), st.integers(4, 9)), pair(ids, bad_ids))),
        st.tuples(st.just("migrate"), probe(pair(schema_ids, bad_schema_ids), pair(json_values, bad_json))),
        st.tuples(st.just("delete"), st.just(())),
    ),
    min_size=2, max_size=6,
)


@PROPERTY
@given(args=probe(pair(json_values, bad_json), pair(schema_ids, bad_schema_ids), pair(st.one_of(st.none(), ids), bad_ids),
                  pair(bucket_lists, bad_bucket_lists)),
       steps=blob_steps, limit=limits)
async def test_blob_commands_project(stores: list[ReadModelStore], args: tuple[Any, ...],
                                     steps: list[tuple[Any, ...]], limit: Limits) -> None:
    async with isolated(stores) as run:
        blob: Any = await run.attempt(lambda: Blob.create(OWNER, *args, limit))
        for name, step in steps if blob is not None else []:
            if name == "update":
                await run.attempt(lambda s=step: (blob.update(s[0], limit), blob)[1])
            elif name == "move":
                await run.attempt(lambda s=step: (blob.move(pick(blob.bucket_ids, s[0], s[1]), s[1]), blob)[1])
            elif name == "migrate":
                await run.attempt(lambda s=step: (blob.migrate(s[0], s[1], limit), blob)[1])
            else:
                await run.attempt(lambda: (blob.delete(), blob)[1])
        if blob is not None:
            assert run.rebuilt(blob.id_str) is not None


# -- Book ----------------------------------------------------------------------------------------

chapter_lists = st.lists(st.fixed_dictionaries({"title": texts, "content": contents}), max_size=6)
bad_chapter_lists = st.one_of(
    st.lists(st.fixed_dictionaries({"title": st.one_of(texts, bad_texts), "content": st.one_of(contents, bad_texts)}),
             min_size=1, max_size=4),
    st.just([{"title": "t", "content": ""}] * (SMALL.chapters_per_book + 1)),
    st.just([{"title": "t", "content": sized(DEFAULT.chapter_bytes - 100)}] * 4),  # each fits, not as one event
    st.sampled_from([[{"title": "t"}], [{"content": ""}], ["chapter"], {"title": "t"}]),
)
metadatas = st.one_of(st.none(), objects)
bad_metadatas = st.one_of(bad_json, json_values.filter(lambda v: not isinstance(v, dict)),
                          st.sampled_from(UNDER + OVER).map(lambda t: {"notes": t}))
orders = st.one_of(st.none(), st.integers(1, 7))
bad_orders = st.one_of(st.integers(-3, 0), st.integers(8, 2**70), numbers, texts, st.booleans())
book_steps = st.lists(
    st.one_of(
        st.tuples(st.just("update"), probe(pair(st.one_of(st.none(), texts), bad_texts), pair(metadatas, bad_metadatas))),
        st.tuples(st.just("add_chapter"), probe(pair(texts, bad_texts), pair(contents, bad_texts), pair(orders, bad_orders))),
        st.tuples(st.just("edit_chapter"), probe(pair(st.integers(0, 9), bad_ids), pair(st.one_of(st.none(), texts), bad_texts),
                                                 pair(st.one_of(st.none(), contents), bad_texts))),
        st.tuples(st.just("remove_chapter"), probe(pair(st.integers(0, 9), bad_ids))),
        st.tuples(st.just("reorder"), probe(pair(st.randoms(use_true_random=False), st.one_of(json_values, bad_json)))),
        st.tuples(st.just("delete"), st.just(())),
    ),
    min_size=2, max_size=8,
)


@PROPERTY
@given(args=probe(pair(texts, bad_texts), pair(metadatas, bad_metadatas), pair(chapter_lists, bad_chapter_lists)),
       steps=book_steps, limit=limits)
async def test_book_commands_project(stores: list[ReadModelStore], args: tuple[Any, ...],
                                     steps: list[tuple[Any, ...]], limit: Limits) -> None:
    async with isolated(stores) as run:
        book: Any = await run.attempt(lambda: Book.create(OWNER, *args, limit))
        for name, step in steps if book is not None else []:
            if name == "update":
                await run.attempt(lambda s=step: (book.update(*s, limit), book)[1])
            elif name == "add_chapter":
                await run.attempt(lambda s=step: (book.add_chapter(*s, limit), book)[1])
            elif name == "edit_chapter":
                chapter_id = pick(book.chapter_ids, step[0], step[0])
                await run.attempt(lambda s=step, c=chapter_id: (book.edit_chapter(c, s[1], s[2], limit), book)[1])
            elif name == "remove_chapter":
                chapter_id = pick(book.chapter_ids, step[0], step[0])
                await run.attempt(lambda c=chapter_id: (book.remove_chapter(c), book)[1])
            elif name == "reorder":
                order = step[0]
                if isinstance(order, random.Random):
                    order = book.chapter_ids
                    step[0].shuffle(order)
                await run.attempt(lambda o=order: (book.reorder(o), book)[1])
            else:
                await run.attempt(lambda: (book.delete(), book)[1])
        if book is not None:
            rebuilt: Any = run.rebuilt(book.id_str)
            assert rebuilt is not None and rebuilt.size == book.size


# -- Processor -----------------------------------------------------------------------------------

processor_types = st.sampled_from(["js-transform", "text-expansion", "team.type_2"])
bad_processor_types = st.one_of(bad_texts, st.sampled_from(["Bad Type", "x" * 65, "-lead", "a/b"]))
schema_refs = st.one_of(st.none(), schema_ids)
triggers = st.lists(st.fixed_dictionaries({"on": st.sampled_from(TRIGGER_EVENTS), "bucket_id": st.one_of(st.none(), ids),
                                           "schema_id": schema_refs}), max_size=3)
bad_triggers = st.one_of(
    json_values.filter(lambda v: not isinstance(v, list)),
    st.lists(st.fixed_dictionaries({"on": st.one_of(bad_texts, st.just("blob.moved"))}), min_size=1, max_size=2),
    st.lists(st.fixed_dictionaries({"on": st.just("blob.created"), "schema_id": bad_schema_ids}), min_size=1,
             max_size=2),
    st.lists(st.fixed_dictionaries({"on": st.just("blob.created"), "bucket_id": bad_ids}), min_size=1, max_size=2),
    st.just([{"on": "blob.created"}] * 17),
)
limit_values = st.one_of(st.none(), st.fixed_dictionaries({}, optional={
    "timeout_seconds": st.integers(1, 3600), "max_attempts": st.integers(1, 100), "max_memory_mb": st.integers(16, 1024)}))
bad_limit_values = st.one_of(
    st.fixed_dictionaries({"timeout_seconds": st.one_of(bad_numbers, st.integers(3601, 2**70), st.just(0), texts)}),
    st.fixed_dictionaries({"max_attempts": st.one_of(st.booleans(), numbers.filter(lambda n: not (1 <= n <= 100)))}),
    st.dictionaries(bad_texts.filter(lambda t: isinstance(t, str)), st.integers(1, 5), min_size=1, max_size=2),
    json_values.filter(lambda v: v is not None and not isinstance(v, dict)),
)
configs = st.one_of(objects, st.just({"source": "function process(d) { return d; }"}), st.just({"model": "m"}))
bad_configs = st.one_of(bad_json, st.just({"source": sized(300 * KIB)}), json_values.filter(lambda v: not isinstance(v, dict)))
processor_steps = st.lists(
    st.one_of(
        st.tuples(st.just("update"), probe(pair(st.one_of(st.none(), configs), bad_configs),
                                           pair(st.one_of(st.none(), triggers), bad_triggers),
                                           pair(limit_values, bad_limit_values))),
        st.tuples(st.just("delete"), st.just(())),
    ),
    min_size=1, max_size=4,
)


@PROPERTY
@given(args=probe(pair(texts, bad_texts), pair(processor_types, bad_processor_types), pair(schema_refs, bad_schema_ids),
                  pair(schema_refs, bad_schema_ids), pair(configs, bad_configs), pair(triggers, bad_triggers),
                  pair(limit_values, bad_limit_values)),
       steps=processor_steps)
async def test_processor_commands_project(stores: list[ReadModelStore], args: tuple[Any, ...],
                                          steps: list[tuple[Any, ...]]) -> None:
    async with isolated(stores) as run:
        processor: Any = await run.attempt(lambda: Processor.register(OWNER, *args))
        for name, step in steps if processor is not None else []:
            if name == "update":
                await run.attempt(lambda s=step: (processor.update(*s), processor)[1])
            else:
                await run.attempt(lambda: (processor.delete(), processor)[1])


# -- Job -----------------------------------------------------------------------------------------

job_versions = st.integers(1, 2**31 - 1)
bad_job_versions = st.one_of(st.sampled_from([0, -1, 2**31, 2**63]), bad_numbers, texts, st.booleans())
job_triggers = st.one_of(st.none(), st.fixed_dictionaries({"on": st.sampled_from(TRIGGER_EVENTS), "blob_id": ids,
                                                           "position": st.integers(1, 2**63 - 1)}))
bad_job_triggers = st.one_of(
    st.fixed_dictionaries({"on": st.sampled_from(TRIGGER_EVENTS), "blob_id": ids,
                           "position": st.one_of(st.integers(2**63, 2**70), st.just(0), texts)}),
    st.fixed_dictionaries({"on": bad_texts, "blob_id": bad_ids, "position": st.integers(1, 9)}),
    json_values.filter(lambda v: v is not None),
)
depths = st.integers(0, 9)
bad_depths = st.one_of(st.integers(10, 2**70), st.integers(-(2**70), -1), texts, st.booleans())
budgets = st.integers(-1, 15)  # -1: recorded only to say the chain's budget was spent
bad_budgets = st.one_of(st.integers(16, 2**70), st.integers(-(2**70), -2), st.none(), texts, st.booleans())
errors = st.fixed_dictionaries({"code": st.sampled_from(["timeout", "sandbox_error", "internal"]), "message": contents})
bad_errors = st.one_of(bad_texts, bad_json, st.fixed_dictionaries({"code": bad_texts, "message": bad_texts}),
                       st.fixed_dictionaries({"message": st.sampled_from(OVER)}))
attempts = st.one_of(st.just("current"), st.integers(-1, 3))
retry_ins = st.floats(0, 86_400)
bad_retry_ins = st.one_of(bad_numbers, st.floats(86_401, 1e300), texts, st.booleans())
job_steps = st.lists(
    st.one_of(
        st.tuples(st.just("start"), probe(pair(texts, bad_texts))),
        st.tuples(st.just("attempt_failed"), probe(pair(attempts, bad_numbers), pair(errors, bad_errors),
                                                   pair(retry_ins, bad_retry_ins))),
        st.tuples(st.just("complete"), probe(pair(attempts, bad_numbers), pair(ids, bad_ids),
                                             pair(st.one_of(st.none(), texts), bad_texts))),
        st.tuples(st.just("fail"), probe(pair(errors, bad_errors), pair(st.one_of(st.none(), attempts), bad_numbers))),
        st.tuples(st.just("cancel"), probe(pair(texts, bad_texts))),
        st.tuples(st.just("retry"), st.just(())),
    ),
    min_size=2, max_size=10,
)


@PROPERTY
@given(args=probe(pair(ids, bad_ids), pair(job_versions, bad_job_versions), pair(processor_types, bad_processor_types),
                  pair(ids, bad_ids), pair(job_versions, bad_job_versions), pair(job_triggers, bad_job_triggers),
                  pair(depths, bad_depths), pair(budgets, bad_budgets)),
       derived=st.booleans(), steps=job_steps)
async def test_job_commands_project(stores: list[ReadModelStore], args: tuple[Any, ...], derived: bool,
                                    steps: list[tuple[Any, ...]]) -> None:
    # repr: the arguments may be bad ones (a lone surrogate does not encode), the key only has to be stable
    job_id = hashed_id("job-trigger", repr((args[0], args[5]))) if derived else None
    async with isolated(stores) as run:
        job: Any = await run.attempt(lambda: Job.request(OWNER, *args, job_id=job_id))
        for name, step in steps if job is not None else []:
            def attempt(value: Any) -> Any:
                return job.attempts if value == "current" else value

            if name == "start":
                await run.attempt(lambda s=step: (job.start(s[0]), job)[1])
            elif name == "attempt_failed":
                await run.attempt(lambda s=step: (job.attempt_failed(attempt(s[0]), s[1], s[2]), job)[1])
            elif name == "complete":
                await run.attempt(lambda s=step: (job.complete(attempt(s[0]), s[1], s[2]), job)[1])
            elif name == "fail":
                await run.attempt(lambda s=step: (job.fail(s[0], attempt(s[1])), job)[1])
            elif name == "cancel":
                await run.attempt(lambda s=step: (job.cancel(s[0]), job)[1])
            else:
                await run.attempt(lambda: (job.retry(), job)[1])
        if job is not None:
            rebuilt: Any = run.rebuilt(job.id_str)
            assert rebuilt is not None and (rebuilt.status, rebuilt.attempts) == (job.status, job.attempts)


# -- Migration -----------------------------------------------------------------------------------
# The owner's request comes from the request body; the rest from the runner, carrying what user
# JavaScript may say (error messages, paths) and counts at and beyond every bound.

migration_schema_ids = st.sampled_from(["novel@1.0.0", "novel@2.0.0", "novel@2.0.0-rc.1"])
bad_migration_schema_ids = st.one_of(st.sampled_from(["novel", "@1.0.0", "Novel@1.0.0", "novel@01.0"]), bad_texts)
counts = st.integers(0, 200)
bad_counts = st.one_of(st.integers(501, 2**70), st.integers(-(2**70), -1), bad_numbers, texts, st.booleans())
migration_errors = st.lists(st.fixed_dictionaries({"blob_id": ids, "path": st.one_of(texts, bad_texts),
                                                   "message": st.one_of(contents, bad_texts)}), max_size=3)
changes = st.lists(st.tuples(ids, st.integers(1, 2**31 - 1), st.integers(1, 2**31 - 1)).map(list), max_size=3)
bad_changes = st.one_of(st.lists(st.tuples(bad_ids, numbers, numbers).map(list), min_size=1, max_size=2),
                        st.lists(json_values, min_size=1, max_size=2))
migration_steps = st.lists(
    st.one_of(
        st.tuples(st.just("start"), probe(pair(st.one_of(texts, bad_texts), bad_texts), pair(counts, bad_counts))),
        st.tuples(st.just("progress"), probe(pair(attempts, bad_numbers), pair(counts, bad_counts),
                                             pair(counts, bad_counts), pair(counts, bad_counts),
                                             pair(migration_errors, migration_errors), pair(changes, bad_changes))),
        st.tuples(st.just("complete"), probe(pair(attempts, bad_numbers))),
        st.tuples(st.just("fail"), probe(pair(st.one_of(contents, bad_texts), bad_texts),
                                         pair(st.one_of(st.none(), attempts), bad_numbers))),
        st.tuples(st.just("request_revert"), st.just(())),
        st.tuples(st.just("start_revert"), probe(pair(texts, bad_texts))),
        st.tuples(st.just("revert_progress"), probe(pair(attempts, bad_numbers), pair(st.lists(ids, max_size=3),
                                                    bad_changes), pair(st.lists(ids, max_size=3), bad_changes))),
        st.tuples(st.just("complete_revert"), probe(pair(attempts, bad_numbers))),
    ),
    min_size=2, max_size=12,
)


@PROPERTY
@given(args=probe(pair(migration_schema_ids, bad_migration_schema_ids), pair(migration_schema_ids, bad_migration_schema_ids),
                  pair(st.one_of(st.none(), ids), bad_ids), pair(st.booleans(), bad_numbers)),
       steps=migration_steps)
async def test_migration_commands_project(stores: list[ReadModelStore], args: tuple[Any, ...],
                                          steps: list[tuple[Any, ...]]) -> None:
    async with isolated(stores) as run:
        migration: Any = await run.attempt(lambda: Migration.request(OWNER, *args))
        if migration is not None:  # most examples run, so that completion and revert are reached
            await run.attempt(lambda: (migration.start("runner", 3), migration)[1])
        for name, step in steps if migration is not None else []:
            def attempt(value: Any) -> Any:
                return migration.attempts if value == "current" else value

            if name == "start":
                await run.attempt(lambda s=step: (migration.start(*s), migration)[1])
            elif name == "progress":
                await run.attempt(lambda s=step: (migration.progress(attempt(s[0]), *s[1:]), migration)[1])
            elif name in ("complete", "complete_revert"):
                await run.attempt(lambda s=step, n=name: (getattr(migration, n)(attempt(s[0])), migration)[1])
            elif name == "fail":
                await run.attempt(lambda s=step: (migration.fail(s[0], attempt(s[1])), migration)[1])
            elif name == "request_revert":
                await run.attempt(lambda: (migration.request_revert(), migration)[1])
            elif name == "start_revert":
                await run.attempt(lambda s=step: (migration.start_revert(s[0]), migration)[1])
            else:
                await run.attempt(lambda s=step: (migration.revert_progress(attempt(s[0]), s[1], s[2]), migration)[1])
        if migration is not None:
            rebuilt: Any = run.rebuilt(migration.id_str)
            assert rebuilt is not None and (rebuilt.status, rebuilt.migrated, rebuilt.errors) == (
                migration.status, migration.migrated, migration.errors)
