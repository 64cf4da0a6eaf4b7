"""A mixed studio workload through the SDK: the seed's Tasks 3, 4 and 7 and a little more.

Task 3: a schema with versions (a pre-release, a migration) and validation;
Task 4: a bucket hierarchy, typed blobs in buckets, queries by bucket, moves;
Task 7: a book with metadata, chapters added, edited, reordered and removed,
and its exports. Around them: updates, deletes, a renamed and re-parented
bucket, a deleted book, blob data MongoDB cannot hold as it is (``$``-keys,
dotted keys, a JSON Schema with ``$ref`` beside ``$id``), and enough blobs
to page through.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from adapters.client import InkstreamClient

BOOK_SCHEMA = {
    "$id": "https://example.com/book.json",
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "chapters": {"type": "array", "items": {"$ref": "#/$defs/chapter"}},
    },
    "required": ["title"],
    "$defs": {"chapter": {"type": "object", "properties": {"title": {"type": "string"},
                                                            "content": {"type": "string"}}}},
}


@dataclass
class Made:
    schema: str = ""
    schema_ids: list[str] = field(default_factory=list)
    buckets: dict[str, str] = field(default_factory=dict)  # name -> id, the live ones
    deleted_buckets: list[str] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)  # live
    deleted_blobs: list[str] = field(default_factory=list)
    books: list[str] = field(default_factory=list)  # live
    deleted_books: list[str] = field(default_factory=list)
    processors: list[str] = field(default_factory=list)  # live
    deleted_processors: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    output_blobs: list[str] = field(default_factory=list)  # what the jobs wrote, the owner's too
    migrations: list[str] = field(default_factory=list)
    last_position: int = 0


async def studio_workload(ink: InkstreamClient) -> Made:
    made = Made(schema=f"book-{uuid.uuid4().hex[:8]}")
    name = made.schema
    # Task 3: register, validate, version.
    for version, schema, migration in (
        ("1.0.0", BOOK_SCHEMA, None),
        ("1.1.0-rc.1", {**BOOK_SCHEMA, "description": "a pre-release"}, None),
        ("2.0.0", {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
         {"from_version": "1.0.0", "transform": "function migrate(d) { return {name: d.title}; }"}),
        ("1.2.0", {**BOOK_SCHEMA, "description": "a later minor of 1"}, None),
    ):
        created = await ink.register_schema(name, version, schema, migration=migration)
        made.schema_ids.append(created.id)
    assert (await ink.validate(f"{name}@1.0.0", {"title": "ok"})).valid
    assert not (await ink.validate(f"{name}@1.0.0", {"chapters": "not an array"})).valid

    # Task 4: a hierarchy, typed blobs in it, moves.
    root = await ink.create_bucket("My Books", "library")
    novel = await ink.create_bucket("Adventure Novel", "book", root.id)
    archive = await ink.create_bucket("Archived", "archive", root.id)
    drafts = await ink.create_bucket("Drafts", "folder", root.id)
    loose = await ink.create_bucket("Loose", "folder")
    spare = await ink.create_bucket("Spare", "folder", root.id)
    made.buckets = {"root": root.id, "novel": novel.id, "archive": archive.id, "drafts": drafts.id,
                    "loose": loose.id}
    await ink.update_bucket(drafts.id, name="Drafts (old)", parent_id=None)
    await ink.delete_bucket(spare.id)
    made.deleted_buckets.append(spare.id)
    story = {"title": "Adventure Novel",
             "chapters": [{"title": "The Beginning", "content": "It was a dark and stormy night..."}]}
    blobs = [await ink.create_blob(story, schema_id=f"{name}@1.0.0", bucket_ids=[novel.id])]
    for i in range(9):
        data = {"title": f"note {i}", "tags": ["a", i], "n": i * 1.5}
        blobs.append(await ink.create_blob(data, schema_id=f"{name}@1.0.0" if i % 2 else None,
                                           bucket_ids=[[novel.id], [archive.id], [novel.id, loose.id]][i % 3]))
    odd = {"$ref": "#/x", "$id": "y", "a.b": {"$gt": 1}, "plain": [1, {"$where": "no"}]}
    blobs.append(await ink.create_blob(odd, bucket_ids=[loose.id]))
    blobs.append(await ink.create_blob("just a string"))
    blobs.append(await ink.create_blob(None, bucket_ids=[archive.id]))
    await ink.move_blob(blobs[0].id, novel.id, archive.id)
    await ink.move_blob(blobs[3].id, novel.id, drafts.id)
    for blob in blobs[1:4]:
        await ink.update_blob(blob.id, {"title": "edited", "when": "2026-01-01T00:00:00Z"})
    await ink.migrate_blob(blobs[2].id, name)
    await ink.migrate_blob(blobs[4].id, f"{name}@2.0.0")
    for blob in (blobs[5], blobs[6]):
        await ink.delete_blob(blob.id)
        made.deleted_blobs.append(blob.id)
    made.blobs = [b.id for b in blobs if b.id not in made.deleted_blobs]

    # Task 7: a book with metadata and chapters, changed every way.
    book = await ink.create_book("My Adventure", metadata={"genre": "fantasy", "author": "Test Author"})
    chapters = [await ink.add_chapter(book.id, title, content) for title, content in (
        ("The Beginning", "Once upon a time..."), ("The Journey", "The hero set forth..."),
        ("The End", "And they lived happily ever after."))]
    await ink.add_chapter(book.id, "Prologue", "Before it all.", order=1)
    await ink.update_chapter(book.id, chapters[1].id, content="The hero set forth, again...")
    found = await ink.get_book(book.id)
    await ink.reorder_chapters(book.id, [c.id for c in reversed(found.chapters)])
    await ink.delete_chapter(book.id, chapters[2].id)
    await ink.update_book(book.id, title="My Great Adventure", metadata={"genre": "fantasy", "$odd.key": 1})
    second = await ink.create_book("Second", chapters=[{"title": "Only", "content": "one chapter"}])
    empty = await ink.create_book("Empty")
    gone = await ink.create_book("Gone", chapters=[{"title": "x", "content": "y"}])
    await ink.delete_book(gone.id)
    made.books = [book.id, second.id, empty.id]
    made.deleted_books = [gone.id]

    # Task 5: processors and jobs, every job finished before the stores are compared.
    upper = await ink.register_processor(f"upper-{name}", "js-transform",
                                         {"source": "function process(d) { return {title: String(d && d.title)}; }"})
    failing = await ink.register_processor(f"fails-{name}", "js-transform",
                                           {"source": "function process(d) { throw new Error('no'); }"},
                                           limits={"max_attempts": 1})
    # triggers on a bucket nothing is filed into: counted (``triggered_processors``), never fired
    quiet = await ink.create_bucket(f"quiet-{name}", "folder")
    watching = await ink.register_processor(f"watching-{name}", "js-transform",
                                            {"source": "function process(d) { return d; }"},
                                            triggers=[{"on": "blob.created", "bucket_id": quiet.id}])
    dropped = await ink.register_processor(f"dropped-{name}", "js-transform",
                                           {"source": "function process(d) { return d; }"},
                                           triggers=[{"on": "blob.updated", "bucket_id": quiet.id}])
    await ink.update_processor(upper.id, limits={"timeout_seconds": 20})
    await ink.delete_processor(dropped.id)
    made.processors, made.deleted_processors = [upper.id, failing.id, watching.id], [dropped.id]
    jobs = [await ink.request_job(upper.id, made.blobs[i]) for i in range(3)]
    jobs.append(await ink.request_job(failing.id, made.blobs[0]))
    for job in jobs:
        done = await ink.wait_for_job(job.id)
        if done.output_blob_id is not None:  # the owner's too: blob lists show them
            made.output_blobs.append(done.output_blob_id)
    made.jobs = [j.id for j in jobs]

    # Task 12: migration runs (a dry run, a real run in a bucket's tree then reverted, another left done).
    source = f"{name}@2.0.0"
    dry = await ink.request_migration(source, "1.0.0")
    tree = await ink.request_migration(source, "1.0.0", bucket_id=root.id, dry_run=False)
    await ink.wait_for_migration(dry.id)
    await ink.wait_for_migration(tree.id)
    await ink.revert_migration(tree.id)
    await ink.wait_for_migration(tree.id)
    kept = await ink.request_migration(source, "1.0.0", bucket_id=loose.id, dry_run=False)
    await ink.wait_for_migration(kept.id)
    made.migrations = [dry.id, tree.id, kept.id]
    made.last_position = ink.last_position
    return made


def queries_of(made: Made, user_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(route template, path, query parameters) of every query of the API the workload can ask."""
    q: list[tuple[str, str, dict[str, Any]]] = [("/v1/auth/me", "/v1/auth/me", {})]
    for sid in [*made.schema_ids, made.schema, f"{made.schema}@9.9.9", "no-such-schema"]:
        q.append(("/v1/schemas/{id}", f"/v1/schemas/{sid}", {}))
    for limit in (1, 2, 50):
        q.append(("/v1/schemas", "/v1/schemas", {"name": made.schema, "limit": limit}))
    q.append(("/v1/schemas", "/v1/schemas", {"name": "no-such-schema"}))
    for parent in (None, made.buckets["root"], made.buckets["novel"]):
        for limit in (1, 2, 50):
            q.append(("/v1/buckets", "/v1/buckets", {"limit": limit, **({"parent_id": parent} if parent else {})}))
    for bid in [*made.buckets.values(), *made.deleted_buckets]:
        q.append(("/v1/buckets/{id}", f"/v1/buckets/{bid}", {}))
    filters: list[dict[str, Any]] = [{}, {"schema_id": made.schema}, {"schema_id": f"{made.schema}@1.0.0"},
                                     {"schema_id": f"{made.schema}@2.0.0"}, {"schema_id": "no-such-schema"}]
    filters += [{"bucket_id": b} for b in made.buckets.values()]
    filters += [{"bucket_id": made.buckets["novel"], "schema_id": f"{made.schema}@1.0.0"}]
    for f in filters:
        for limit in (1, 3, 50):
            q.append(("/v1/blobs", "/v1/blobs", {**f, "limit": limit}))
    for bid in [*made.blobs, *made.deleted_blobs, *made.output_blobs]:
        q.append(("/v1/blobs/{id}", f"/v1/blobs/{bid}", {}))
        q.append(("/v1/blobs/{id}/history", f"/v1/blobs/{bid}/history", {}))
    for limit in (1, 2, 50):
        q.append(("/v1/books", "/v1/books", {"limit": limit}))
    for bid in [*made.books, *made.deleted_books]:
        q.append(("/v1/books/{id}", f"/v1/books/{bid}", {}))
        for fmt in ("text", "markdown", "html"):
            q.append(("/v1/books/{id}/export", f"/v1/books/{bid}/export", {"format": fmt}))
    for limit in (1, 50):
        q.append(("/v1/processors", "/v1/processors", {"limit": limit}))
    for pid in [*made.processors, *made.deleted_processors]:
        q.append(("/v1/processors/{id}", f"/v1/processors/{pid}", {}))
    for f in [{}, *({"processor_id": p} for p in made.processors), {"status": "completed"}, {"status": "failed"},
              {"processor_id": made.processors[0], "status": "completed"}]:
        for limit in (1, 50):
            q.append(("/v1/jobs", "/v1/jobs", {**f, "limit": limit}))
    for jid in made.jobs:
        q.append(("/v1/jobs/{id}", f"/v1/jobs/{jid}", {}))
    for limit in (1, 50):
        q.append(("/v1/migrations", "/v1/migrations", {"limit": limit}))
    for mid in made.migrations:
        q.append(("/v1/migrations/{id}", f"/v1/migrations/{mid}", {}))
    for path in ("/v1/blobs", "/v1/buckets", "/v1/books", "/v1/processors", "/v1/jobs",
                 "/v1/migrations"):  # forged cursors alike
        q.append((path, path, {"cursor": "bm90IGEgY3Vyc29y"}))
    return q
