"""The Python SDK against the real system (real HTTP, real log, real database)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from adapters.client import (
    ConflictError,
    ForbiddenError,
    InkstreamClient,
    NotFoundError,
    PreconditionFailedError,
    UnauthorizedError,
    ValidationFailedError,
)
from tests.support.system import RunningSystem

BOOK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "pages": {"type": "integer", "minimum": 1}},
    "required": ["title"],
}


def unique_email(prefix: str = "sdk") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


@pytest.fixture
async def ink(system: RunningSystem) -> AsyncIterator[InkstreamClient]:
    async with InkstreamClient(system.base_url, backoff=0.05) as client:
        await client.register(unique_email(), "password-" + uuid.uuid4().hex[:8], "sdk")
        yield client


@pytest.fixture
async def other(system: RunningSystem) -> AsyncIterator[InkstreamClient]:
    async with InkstreamClient(system.base_url, backoff=0.05) as client:
        await client.register(unique_email("other"), "password-" + uuid.uuid4().hex[:8], "other")
        yield client


async def test_register_login_me(system: RunningSystem) -> None:
    email, password = unique_email(), "password-" + uuid.uuid4().hex[:8]
    async with InkstreamClient(system.base_url) as ink:
        assert (await ink.health()).status == "healthy"
        assert (await ink.ready()).ready is True

        registered = await ink.register(email, password, "writer")
        assert ink.token == registered.token and ink.last_position == registered.position
        me = await ink.me()
        assert (me.user_id, me.email, me.username) == (registered.user_id, email, "writer")

        with pytest.raises(ConflictError) as taken:
            await ink.register(email, password, "writer")
        assert taken.value.status == 409 and taken.value.detail.startswith("conflict")
        with pytest.raises(ValidationFailedError):
            await ink.register(unique_email(), "short", "writer")
        with pytest.raises(UnauthorizedError) as wrong:
            await ink.login(email, "not-the-password")
        assert wrong.value.code == "unauthorized" and wrong.value.status == 401

    async with InkstreamClient(system.base_url) as fresh:
        with pytest.raises(UnauthorizedError):
            await fresh.me()
        logged_in = await fresh.login(email, password)
        assert logged_in.user_id == registered.user_id and fresh.token == logged_in.token
        assert (await fresh.me()).email == email


async def test_schema_bucket_blob_roundtrip(ink: InkstreamClient) -> None:
    name = f"sdk-book-{uuid.uuid4().hex[:8]}"
    schema = await ink.register_schema(name, "1.0.0", BOOK_SCHEMA)
    assert schema.id == f"{name}@1.0.0" and schema.document == BOOK_SCHEMA
    assert (await ink.get_schema(name)).id == schema.id
    assert [s.id for s in (await ink.list_schema_versions(name)).items] == [schema.id]
    check = await ink.validate(schema.id, {"pages": 0})
    assert not check.valid and [e.path for e in check.errors] == ["", "/pages"]

    root = await ink.create_bucket("Library", "library")
    shelf = await ink.create_bucket("Shelf", "shelf", parent_id=root.id)
    assert shelf.parent_id == root.id and ink.last_position == shelf.position
    assert [b.id for b in (await ink.list_buckets()).items] == [root.id]
    assert [b.id async for b in ink.iter_pages(ink.list_buckets, parent_id=root.id, limit=1)] == [shelf.id]

    blob = await ink.create_blob({"title": "Dune", "pages": 412}, schema_id=schema.id, bucket_ids=[shelf.id])
    assert blob.bucket_ids == [shelf.id] and blob.version == 1
    listed = await ink.list_blobs(bucket_id=shelf.id)  # read-your-writes through min_position
    assert [b.id for b in listed.items] == [blob.id]
    assert (await ink.get_blob(blob.id)).data == {"title": "Dune", "pages": 412}

    with pytest.raises(ValidationFailedError) as invalid:
        await ink.create_blob({"pages": "many"}, schema_id=schema.id)
    assert invalid.value.status == 422 and invalid.value.errors
    assert [e["path"] for e in invalid.value.errors] == sorted(e["path"] for e in invalid.value.errors)

    updated = await ink.update_blob(blob.id, {"title": "Dune", "pages": 500}, if_match=blob.version)
    assert updated.version == 2
    with pytest.raises(PreconditionFailedError):
        await ink.update_blob(blob.id, {"title": "Dune", "pages": 1}, if_match=blob.version)
    assert (await ink.get_blob(blob.id, as_of=blob.position)).data["pages"] == 412

    moved = await ink.update_bucket(shelf.id, parent_id=None)
    assert moved.parent_id is None
    history = await ink.blob_history(blob.id)
    assert [item.version for item in history.items] == [1, 2]

    await ink.delete_blob(blob.id)
    with pytest.raises(NotFoundError):
        await ink.get_blob(blob.id)
    await ink.delete_bucket(shelf.id)


async def test_a_repeated_idempotency_key_lands_once(ink: InkstreamClient) -> None:
    key = str(uuid.uuid4())
    first = await ink.create_bucket("Once", "folder", idempotency_key=key)
    again = await ink.create_bucket("Once", "folder", idempotency_key=key)
    assert again.id == first.id and again.position == first.position
    assert [b.id for b in (await ink.list_buckets()).items] == [first.id]


async def test_another_users_resources_are_forbidden(ink: InkstreamClient, other: InkstreamClient) -> None:
    bucket = await ink.create_bucket("Private", "folder")
    blob = await ink.create_blob({"secret": True}, bucket_ids=[bucket.id])
    # `other` only knows its own writes' positions (min_position); hand it ink's so
    # its reads see ink's bucket and blob (consistency="strong" would do as well).
    other.observe_position(ink.last_position)
    with pytest.raises(ForbiddenError) as caught:
        await other.get_bucket(bucket.id)
    assert caught.value.status == 403 and caught.value.code == "forbidden"
    assert caught.value.detail.startswith("forbidden")
    with pytest.raises(ForbiddenError):
        await other.get_blob(blob.id)
    with pytest.raises(ForbiddenError):
        await other.update_blob(blob.id, {"secret": False})
    with pytest.raises(ForbiddenError):
        await other.create_blob({"x": 1}, bucket_ids=[bucket.id])
    assert (await ink.get_blob(blob.id)).data == {"secret": True}


async def test_book_roundtrip(ink: InkstreamClient, other: InkstreamClient) -> None:
    book = await ink.create_book("My Novel", metadata={"genre": "sf"}, chapters=[{"title": "One", "content": "It began."}])
    assert book.title == "My Novel" and book.metadata == {"genre": "sf"} and ink.last_position == book.position
    chapter = await ink.add_chapter(book.id, "Two", "It went on.", if_match=book.version)
    assert chapter.order == 2 and chapter.book_id == book.id
    got = await ink.get_book(book.id)
    assert [(c.title, c.order) for c in got.chapters] == [("One", 1), ("Two", 2)]
    ids = [c.id for c in got.chapters]
    reordered = await ink.reorder_chapters(book.id, list(reversed(ids)))
    assert [c.id for c in reordered.chapters] == list(reversed(ids))
    with pytest.raises(ValidationFailedError):
        await ink.reorder_chapters(book.id, ids[:1])
    with pytest.raises(PreconditionFailedError):
        await ink.update_book(book.id, title="Stale", if_match=book.version)
    await ink.update_chapter(book.id, chapter.id, content="It went on and on.")
    text = (await ink.export_book(book.id, "text")).decode()
    assert text.splitlines()[0] == "My Novel" and "Chapter 1: Two" in text and "It went on and on." in text
    other.observe_position(ink.last_position)
    with pytest.raises(ForbiddenError):
        await other.get_book(book.id)
    removed = await ink.delete_chapter(book.id, chapter.id)
    assert removed.deleted
    assert book.id in [b.id async for b in ink.iter_pages(ink.list_books, limit=1)]
    await ink.delete_book(book.id)
    with pytest.raises(NotFoundError):
        await ink.get_book(book.id)
