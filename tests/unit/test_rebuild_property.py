"""Property: for random command sequences, the state rebuilt from the events
(through the codec and a JSON round trip, as the log stores them) equals the
state that produced them, and so does the state resumed from a snapshot taken
after any of its events (written as JSON and read back) and the events after it."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.base import EventCodec, InkAggregate
from domain.blob import Blob
from domain.book import Book
from domain.errors import DomainError
from domain.ids import new_id
from domain.recorded import Recorded
from domain.snapshot import Taken, restore, take

CODEC = EventCodec([Blob, Book])

# What the log can hold: no NUL and no lone surrogates (the domain refuses those with 422).
storable = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(storable, max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(storable, max_size=8), children, max_size=4),
    max_leaves=12,
)
BUCKETS = [new_id() for _ in range(4)]


def state(aggregate: InkAggregate) -> dict[str, Any]:
    return {k: v for k, v in vars(aggregate).items() if k != "_pending_events"}


def through_the_log(aggregate: InkAggregate) -> list[Recorded]:
    records = []
    for position, event in enumerate(aggregate.collect_events(), start=1):
        new = CODEC.encode(event, actor="someone")
        records.append(
            Recorded(
                position=position, aggregate_type=type(aggregate).TYPE, aggregate_id=aggregate.id_str,
                type=new.type, version=new.version, at=new.at, class_version=new.class_version,
                data=orjson.loads(orjson.dumps(new.data)), actor=new.actor,
            )
        )
    return records


def resumes_from_every_snapshot(cls: type[InkAggregate], records: list[Recorded], final: InkAggregate) -> None:
    for cut in range(1, len(records) + 1):
        folded = CODEC.rebuild(records[:cut])
        assert folded is not None
        taken = take(folded, records[cut - 1])
        assert taken is not None, f"{cls.__name__} at version {cut} was not taken"
        read_back = Taken.from_json(orjson.loads(orjson.dumps(taken.to_json())))
        assert read_back is not None and read_back.taken_after(records[cut - 1])
        resumed = CODEC.rebuild(records[cut:], restore(cls, final.id_str, read_back))
        assert resumed is not None and state(resumed) == state(final)


blob_commands = st.lists(
    st.one_of(
        st.tuples(st.just("update"), json_values),
        st.tuples(st.just("move"), st.sampled_from(BUCKETS), st.sampled_from(BUCKETS)),
        st.tuples(st.just("migrate"), st.sampled_from(["a@1.0.0", "a@2.0.0", "b@1.0.0"]), json_values),
        st.tuples(st.just("delete")),
    ),
    max_size=15,
)


@settings(max_examples=150, deadline=None)
@given(data=json_values, buckets=st.lists(st.sampled_from(BUCKETS), unique=True, max_size=3), commands=blob_commands)
def test_a_blob_rebuilt_from_its_events_equals_the_blob_that_produced_them(
    data: Any, buckets: list[str], commands: list[tuple[Any, ...]]
) -> None:
    blob = Blob.create(new_id(), data, None, None, buckets)
    for command in commands:
        try:
            getattr(blob, command[0])(*command[1:])
        except DomainError:
            pass  # a refused command records nothing
    records = through_the_log(blob)
    rebuilt = CODEC.rebuild(records)
    assert rebuilt is not None and state(rebuilt) == state(blob)
    assert rebuilt.version == len(records)
    resumes_from_every_snapshot(Blob, records, blob)


titles = st.text(storable, min_size=1, max_size=12).filter(lambda t: t.strip() != "")
book_commands = st.lists(
    st.one_of(
        st.tuples(st.just("update"), titles, st.none()),
        st.tuples(st.just("add_chapter"), titles, st.text(storable, max_size=30), st.none()),
        st.tuples(st.just("edit_chapter"), st.integers(0, 5), titles),
        st.tuples(st.just("remove_chapter"), st.integers(0, 5)),
        st.tuples(st.just("reorder"), st.randoms(use_true_random=False)),
    ),
    max_size=15,
)


@settings(max_examples=150, deadline=None)
@given(title=titles, commands=book_commands)
def test_a_book_rebuilt_from_its_events_equals_the_book_that_produced_them(
    title: str, commands: list[tuple[Any, ...]]
) -> None:
    book = Book.create(new_id(), title, {}, [])
    for command in commands:
        name = command[0]
        try:
            ids = book.chapter_ids
            if name in ("edit_chapter", "remove_chapter"):
                if not ids:
                    continue
                chapter_id = ids[command[1] % len(ids)]
                args = (chapter_id, command[2]) if name == "edit_chapter" else (chapter_id,)
                getattr(book, name)(*args)
            elif name == "reorder":
                shuffled = list(ids)
                command[1].shuffle(shuffled)
                book.reorder(shuffled)
            else:
                getattr(book, name)(*command[1:])
        except DomainError:
            pass
    records = through_the_log(book)
    rebuilt = CODEC.rebuild(records)
    assert rebuilt is not None and state(rebuilt) == state(book)
    resumes_from_every_snapshot(Book, records, book)
