"""Pages of books, processors, jobs and migration runs are bounded in bytes on both stores, from stored weights.

A book's metadata may weigh 256 KiB and its chapter list 10,000 titles of 500
characters, a processor's config 256 KiB, a job's two errors 2,000 characters each
of the user's code's choosing, and a run keeps up to 100 errors of 500
characters, so ``limit=500`` could otherwise answer a page of a hundred
megabytes (a few for jobs). Runs with big error lists are slow to make through the API (a
hundred failing blobs each), so here the real projections project events the
domain recorded straight into both stores, as their projectors do, and each
store's ``ReadModel`` is walked page by page: every page within ``PAGE_BYTES``
(or one item) and as full as it can be, every item once, in the list's order,
and both stores answer the same pages. A row written before its weight was
recorded (an upgrade's backfill on PostgreSQL) is weighed too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from adapters.mongo.changes import apply_events
from adapters.mongo.client import Mongo, open_mongo
from adapters.mongo.collections import ensure_indexes
from adapters.mongo.read_model import MongoReadModel
from adapters.postgres.changes import apply_changes
from adapters.postgres.migrations import migrate
from adapters.postgres.pool import connect
from adapters.postgres.read_model import PostgresReadModel
from adapters.projector import Projected
from adapters.runtime.bootstrap import aggregates
from domain.base import EventCodec, InkAggregate
from domain.ids import new_id
from domain.book import MAX_TITLE, Book
from domain.job import MAX_ERROR_MESSAGE, Job
from domain.migration import MAX_ERRORS, Migration
from domain.processor import Processor
from domain.recorded import Recorded
from projections.books import BOOK_ROW_BYTES, BooksProjection, summary_bytes
from projections.jobs import JOB_ROW_BYTES, JobProjection
from projections.migrations import MIGRATION_ROW_BYTES, MigrationProjection
from projections.processors import ProcessorProjection
from projections.read_model import PAGE_BYTES, Page, ReadModel
from projections.sizes import json_text_bytes
from tests.support.mongo import MongoServer, new_database_name
from tests.support.servers import Database

CODEC = EventCodec(aggregates())
PROJECTIONS = [BooksProjection(), ProcessorProjection(), JobProjection(), MigrationProjection()]
TABLES = [t for p in PROJECTIONS for t in p.tables]
SOURCE = "function process(d) { return d; }\n// "


@dataclass
class Stores:
    pg: PostgresReadModel
    mongo: MongoReadModel
    conn: Any
    db: Mongo


@pytest.fixture(scope="module")
async def stores(database: Database, mongo_server: MongoServer) -> AsyncIterator[Stores]:
    conn = await connect(await database.new_database())
    await migrate(conn)
    mongo = await open_mongo(mongo_server.database_url(new_database_name()), transactions=False)
    await ensure_indexes(mongo.db, TABLES)
    try:
        yield Stores(PostgresReadModel(conn), MongoReadModel(mongo), conn, mongo)
    finally:
        await mongo.client.drop_database(mongo.db.name)
        await mongo.close()
        await conn.close()


class Log:
    """Events as the log gives them back (JSON round trip), a second apart, projected into both stores."""

    def __init__(self) -> None:
        self.records: list[Recorded] = []
        self.start = datetime(2026, 1, 1, tzinfo=UTC)

    def record(self, aggregate: InkAggregate) -> None:
        for event in aggregate.collect_events():
            new = CODEC.encode(event, actor="someone")
            n = len(self.records) + 1
            self.records.append(Recorded(
                position=n, aggregate_type=type(aggregate).TYPE, aggregate_id=aggregate.id_str, type=new.type,
                version=new.version, at=self.start + timedelta(seconds=n), class_version=new.class_version,
                data=orjson.loads(orjson.dumps(new.data)), actor=new.actor,
            ))

    async def project(self, stores: Stores) -> None:
        projected = [Projected(r, [c for p in PROJECTIONS for c in p.changes(CODEC.upcast(r))]) for r in self.records]
        async with stores.conn.transaction():
            await apply_changes(stores.conn, [c for e in projected for c in e.changes])
        await apply_events(stores.db.db, projected)


async def walk(list_page: Any, owner: str) -> list[list[Any]]:
    pages: list[list[Any]] = []
    cursor: str | None = None
    while True:
        page: Page[Any] = await list_page(owner, 500, cursor)
        assert page.items, "every page holds at least one item"
        pages.append(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return pages
        assert len(pages) <= 100, "the cursor does not move on"


def assert_full_pages(pages: list[list[Any]], weight: Any) -> None:
    """Each page within ``PAGE_BYTES`` (or a single item), and the next page's first item would not have fitted."""
    for page, after in zip(pages, [*pages[1:], None]):
        used = sum(weight(item) for item in page)
        assert len(page) == 1 or used <= PAGE_BYTES, (len(page), used)
        if after is not None:
            assert used + weight(after[0]) > PAGE_BYTES, (len(page), used, weight(after[0]))


def processor_weight(item: Any) -> int:
    out = item.model_dump(mode="json")
    return json_text_bytes(out["config"]) + json_text_bytes(out["triggers"]) + json_text_bytes(out["limits"])


def run_weight(item: Any) -> int:
    out = item.model_dump(mode="json")
    return MIGRATION_ROW_BYTES + json_text_bytes(out["errors"]) + json_text_bytes(out["revert_skipped_blob_ids"])


def job_weight(item: Any) -> int:
    out = item.model_dump(mode="json")
    return JOB_ROW_BYTES + json_text_bytes(out["error"]) + json_text_bytes(out["last_error"])


def book_weight(item: Any) -> int:
    return (BOOK_ROW_BYTES + json_text_bytes(item.metadata)
            + sum(summary_bytes(c.id, c.title) for c in item.chapters))


def models(stores: Stores) -> dict[str, ReadModel]:
    return {"postgres": stores.pg, "mongo": stores.mongo}


async def test_pages_of_big_processors_stay_within_page_bytes_and_hold_each_once(stores: Stores) -> None:
    owner, log = new_id(), Log()
    made = []
    for n in range(24):  # configs of ~200 KB ("é" is 2 bytes), small ones between them: ~4.5 MB
        big = {"source": SOURCE + "é" * 100_000}
        processor = Processor.register(owner, f"p{n}", "js-transform", None, None,
                                       big if n % 4 else {"source": SOURCE}, None, None)
        if n == 1:  # registered small, then changed to a big config: its weight follows the change
            processor = Processor.register(owner, f"p{n}", "js-transform", None, None, {"source": SOURCE}, None, None)
            log.record(processor)
            processor.update(config=big)
        log.record(processor)
        made.append(processor.id_str)
    await log.project(stores)

    answers = {}
    for name, model in models(stores).items():
        pages = await walk(model.processors, owner)
        assert [p.id for page in pages for p in page] == made, name  # oldest first, each once
        assert len(pages) >= 2, (name, [len(p) for p in pages])
        assert_full_pages(pages, processor_weight)
        answers[name] = [[p.model_dump() for p in page] for page in pages]
    assert answers["postgres"] == answers["mongo"]


async def test_pages_of_runs_with_many_errors_stay_within_page_bytes_and_hold_each_once(stores: Stores) -> None:
    owner, log = new_id(), Log()
    made = []
    for n in range(40):  # 100 errors of 500 two-byte characters: ~105 KB a run, ~3.4 MB together; a few without
        run = Migration.request(owner, "s@2.0.0", "s@1.0.0", None, True)
        run.start("runner", 200)
        if n % 5:
            errors = [{"blob_id": new_id(), "path": "/x", "message": "é" * 600}
                      for _ in range(MAX_ERRORS)]
            run.progress(1, 0, MAX_ERRORS, 0, errors, [])
        log.record(run)
        made.append(run.id_str)
    await log.project(stores)

    answers = {}
    for name, model in models(stores).items():
        pages = await walk(model.migrations, owner)
        assert [r.id for page in pages for r in page] == made[::-1], name  # newest first, each once
        assert len(pages) >= 2, (name, [len(p) for p in pages])
        assert_full_pages(pages, run_weight)
        answers[name] = [[r.model_dump() for r in page] for page in pages]
    assert answers["postgres"] == answers["mongo"]


async def test_a_small_list_is_cut_by_limit_alone(stores: Stores) -> None:
    """500 runs without errors fit one page: ``MIGRATION_ROW_BYTES`` leaves ``limit`` in charge."""
    owner, log = new_id(), Log()
    for _ in range(501):
        log.record(Migration.request(owner, "s@2.0.0", "s@1.0.0", None, True))
    await log.project(stores)
    for name, model in models(stores).items():
        first = await model.migrations(owner, 500, None)
        assert len(first.items) == 500 and first.next_cursor is not None, name
        rest = await model.migrations(owner, 500, first.next_cursor)
        assert len(rest.items) == 1 and rest.next_cursor is None, name


async def test_rows_without_a_stored_weight_are_weighed_by_their_text_on_postgres(stores: Stores) -> None:
    """A row a projector of the previous version wrote (no weight column yet) still ends a page in time."""
    owner, log = new_id(), Log()
    for n in range(12):
        log.record(Processor.register(owner, f"q{n}", "js-transform", None, None,
                                      {"source": SOURCE + "x" * 250_000}, None, None))
    await log.project(stores)
    await stores.conn.execute("UPDATE processors SET config_bytes = NULL WHERE owner_id = $1", owner)
    pages = await walk(stores.pg.processors, owner)
    assert sum(map(len, pages)) == 12
    assert_full_pages(pages, processor_weight)


async def test_pages_of_jobs_with_long_errors_stay_within_page_bytes_and_hold_each_once(stores: Stores) -> None:
    owner, processor, log = new_id(), new_id(), Log()
    made, retried = [], None
    message = "😀" * MAX_ERROR_MESSAGE  # 8 KB as JSON: an attempt's error and the final one, ~16 KB a job
    for n in range(160):
        job = Job.request(owner, processor if n % 2 else new_id(), 1, "js-transform", new_id(), 1)
        job.start("runner")
        if n % 8:
            job.attempt_failed(1, {"code": "processor_error", "message": message}, 1)
            job.start("runner")
            job.fail({"code": "processor_error", "message": message}, 2)
            if n == 9:  # retried: its errors, and their weights, are gone
                job.retry()
                retried = job.id_str
        log.record(job)
        made.append(job.id_str)
    await log.project(stores)

    answers = {}
    for name, model in models(stores).items():
        pages = await walk(lambda owner_id, limit, cursor, m=model: m.jobs(owner_id, None, None, limit, cursor), owner)
        assert [j.id for page in pages for j in page] == made[::-1], name  # newest first, each once
        assert len(pages) >= 2, (name, [len(p) for p in pages])
        assert_full_pages(pages, job_weight)
        mine = await walk(lambda owner_id, limit, cursor, m=model: m.jobs(owner_id, processor, "failed", limit,
                                                                          cursor), owner)
        assert [j.id for page in mine for j in page] == [j for n, j in enumerate(made) if n % 8 and n % 2
                                                         and j != retried][::-1]
        assert_full_pages(mine, job_weight)
        answers[name] = [[j.model_dump() for j in page] for page in pages]
    assert answers["postgres"] == answers["mongo"]


async def test_pages_of_books_with_big_metadata_or_many_chapters_stay_within_page_bytes(stores: Stores) -> None:
    owner, log = new_id(), Log()
    made = []
    title = "t" * MAX_TITLE
    for n in range(40):  # 60 KB of metadata, or 200 chapters of 500-character titles (~105 KB): ~3 MB in all
        metadata = {"notes": "m" * 60_000} if n % 2 else {}
        chapters = [] if n % 2 else [{"title": title, "content": "c"} for _ in range(200)]
        book = Book.create(owner, f"book {n}", metadata, chapters)
        if n == 2:  # changed later: the weights follow a chapter's new title and new metadata
            book.edit_chapter(book.chapter_ids[0], "short", None)
            book.update(metadata={"notes": "n" * 50_000})
        if n == 4:  # a removed chapter weighs nothing more
            book.remove_chapter(book.chapter_ids[0])
        log.record(book)
        made.append(book.id_str)
    await log.project(stores)

    answers = {}
    for name, model in models(stores).items():
        pages = await walk(model.books, owner)
        assert [b.id for page in pages for b in page] == made, name  # creation order, each once
        assert len(pages) >= 2, (name, [len(p) for p in pages])
        assert_full_pages(pages, book_weight)
        answers[name] = [[b.model_dump() for b in page] for page in pages]
    assert answers["postgres"] == answers["mongo"]
    assert [len(b["chapters"]) for b in answers["postgres"][0][:5]] == [200, 0, 200, 0, 199]
