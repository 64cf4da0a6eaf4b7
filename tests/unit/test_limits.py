"""The limits' ceilings keep every event in one NATS message, whatever the settings say.

Each test builds the largest event of one kind that the ceilings allow (the
worst escapes included: a control character weighs six bytes as JSON) and
measures it as the event store encodes it.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from domain.base import EventCodec, InkAggregate
from domain.blob import Blob
from domain.book import MAX_TITLE, Book
from domain.errors import ValidationFailed
from domain.ids import new_id
from domain.limits import CEILINGS, MAX_BUCKETS_PER_BLOB, MAX_EVENT_BYTES, MAX_JSON_DEPTH, Limits, encoded_size
from domain.recorded import Recorded
from domain.schema import Schema

CEILING = Limits(**CEILINGS)
CODEC = EventCodec([Blob, Book, Schema])
OWNER = new_id()
WORST_TITLE = "\x01" * MAX_TITLE  # 500 characters, 3,000 bytes as JSON


def text_of(size: int, unit: str = "\x01") -> str:
    """A string that weighs ``size`` bytes as JSON, quotes included (``unit`` weighs six or one)."""
    weight = encoded_size(unit) - 2
    body = unit * ((size - 2) // weight)
    return body + "x" * (size - encoded_size(body))


def event_bytes(aggregate: InkAggregate) -> list[int]:
    return [len(orjson.dumps(CODEC.encode(e, actor=OWNER).data)) for e in aggregate.collect_events()]


def test_a_limit_above_its_ceiling_or_below_one_is_refused() -> None:
    for name, ceiling in CEILINGS.items():
        with pytest.raises(ValueError):
            Limits(**{name: ceiling + 1})
        with pytest.raises(ValueError):
            Limits(**{name: 0})
    assert Limits(**CEILINGS) == CEILING


def test_the_largest_chapter_events_fit_in_one_message() -> None:
    chapter = text_of(CEILING.chapter_bytes - encoded_size(WORST_TITLE))
    full = [{"title": "t", "content": ""}] * (CEILING.chapters_per_book - 1)
    book = Book.create(OWNER, WORST_TITLE, {}, full, CEILING)
    book.add_chapter(WORST_TITLE, chapter, 1, CEILING)  # the whole order travels with it: 10,000 ids
    book.edit_chapter(book.chapter_ids[-1], WORST_TITLE, chapter, CEILING)
    book.reorder(list(reversed(book.chapter_ids)))
    book.remove_chapter(book.chapter_ids[0])
    sizes = event_bytes(book)
    assert max(sizes) <= MAX_EVENT_BYTES, sizes
    assert sizes[1] > 900_000, "the added chapter event is the big one"


def test_the_largest_book_update_fits_and_a_creation_beyond_one_message_is_refused() -> None:
    metadata: dict[str, Any] = {"notes": text_of(CEILING.metadata_bytes - 12)}
    assert encoded_size(metadata) <= CEILING.metadata_bytes
    book = Book.create(OWNER, "t", {}, [], CEILING)
    book.update(WORST_TITLE, metadata, CEILING)
    assert max(event_bytes(book)) <= MAX_EVENT_BYTES
    chapters = [{"title": "t", "content": text_of(CEILING.chapter_bytes - 10, "x")}] * 2
    with pytest.raises(ValidationFailed) as refused:
        Book.create(OWNER, "t", {}, chapters, CEILING)
    assert refused.value.errors[0].path == "/chapters" and "one by one" in refused.value.errors[0].message


def test_the_largest_blob_and_schema_events_fit_in_one_message() -> None:
    data = {"text": text_of(CEILING.blob_bytes - 11)}
    assert encoded_size(data) <= CEILING.blob_bytes
    buckets = [new_id() for _ in range(MAX_BUCKETS_PER_BLOB)]
    blob = Blob.create(OWNER, data, "n" * 64 + "@" + "9" * 18 + ".0.0-" + "a" * 100, new_id(), buckets, CEILING)
    blob.migrate("n" * 64 + "@1.0.0", data, CEILING)
    assert max(event_bytes(blob)) <= MAX_EVENT_BYTES

    migration = {"from_version": "1.0.0", "transform": text_of(CEILING.schema_bytes // 2)}
    document = {"description": text_of(CEILING.schema_bytes // 2 - 200)}
    schema = Schema.register("n" * 64, OWNER, "1.0.0", {}, None, CEILING)
    schema.add_version(OWNER, "2.0.0-" + "a" * 120, document, migration, CEILING)
    assert max(event_bytes(schema)) <= MAX_EVENT_BYTES


def test_a_value_nested_deeper_than_the_limit_is_refused_wherever_it_is_stored() -> None:
    deep: Any = 1
    for _ in range(MAX_JSON_DEPTH + 1):
        deep = [deep]
    with pytest.raises(ValidationFailed) as refused:
        Blob.create(OWNER, deep, None, None, [])
    assert refused.value.errors[0].message == f"nested deeper than {MAX_JSON_DEPTH} levels"
    with pytest.raises(ValidationFailed):
        Book.create(OWNER, "t", {"a": deep})
    ok = Blob.create(OWNER, deep[0], None, None, [])
    assert max(event_bytes(ok)) < 1000


def test_a_books_size_is_the_same_whether_created_whole_or_grown_and_survives_a_replay() -> None:
    small = Limits(book_bytes=1000)
    chapters = [{"title": "One", "content": "é" * 200}, {"title": "Two", "content": '"quoted"\n'}]
    whole = Book.create(OWNER, "T", {"a": [1, 2]}, chapters, small)
    grown = Book.create(OWNER, "T", {"a": [1, 2]}, [], small)
    for c in chapters:
        grown.add_chapter(c["title"], c["content"], None, small)
    expected = encoded_size("T") + encoded_size({"a": [1, 2]}) + sum(
        encoded_size(c["title"]) + encoded_size(c["content"]) for c in chapters)
    assert whole.size == grown.size == expected
    records = []
    for position, event in enumerate(whole.collect_events(), 1):
        new = CODEC.encode(event, actor=OWNER)
        records.append(Recorded(position, "book", whole.id_str, new.type, new.version, new.at, new.data))
    rebuilt: Any = CODEC.rebuild(records)
    assert rebuilt.size == expected
    limit = Limits(book_bytes=expected)  # exactly at the limit is allowed, one byte more is not
    Book.create(OWNER, "T", {"a": [1, 2]}, chapters, limit)
    with pytest.raises(ValidationFailed):
        Book.create(OWNER, "T", {"a": [1, 2, 3]}, chapters, limit)
