"""Events stored under an older class version are upcast on the way in, with the
eventsourcing library's convention (``class_version``, ``upcast_vN_vM``)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from eventsourcing.domain import event

from domain.base import EventCodec, InkAggregate
from domain.ids import new_id
from domain.recorded import Recorded


class Note(InkAggregate):
    TYPE = "note"

    class Created(InkAggregate.Created):
        class_version = 3
        text: str
        language: str
        words: int

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["language"] = "en"

        @staticmethod
        def upcast_v2_v3(state: dict[str, Any]) -> None:
            state["words"] = len(state["text"].split())

    @event(Created)
    def __init__(self, text: str, language: str, words: int) -> None:
        self.text, self.language, self.words = text, language, words


def test_a_version_1_event_is_upcast_to_the_current_class_version() -> None:
    codec = EventCodec([Note])
    old = Recorded(position=7, aggregate_type="note", aggregate_id=new_id(), type="Note.Created", version=1,
                   at=datetime.now(timezone.utc), data={"text": "two words"}, class_version=1)
    upcast = codec.upcast(old)
    assert upcast.class_version == 3 and upcast.data == {"text": "two words", "language": "en", "words": 2}
    note = codec.rebuild([old])
    assert isinstance(note, Note) and (note.language, note.words) == ("en", 2)


def test_a_current_event_is_left_alone_and_encodes_its_class_version() -> None:
    codec = EventCodec([Note])
    note = Note(text="a b c", language="fr", words=3)
    encoded = codec.encode(note.collect_events()[0], actor=None)
    assert encoded.class_version == 3 and encoded.data == {"text": "a b c", "language": "fr", "words": 3}


def test_a_blob_migrated_event_of_class_version_1_still_loads() -> None:
    """``Blob.Migrated`` gained ``migration_id`` and ``revert`` (class version 2, migration runs);
    the events written before that are upcast, and a blob whose history holds one rebuilds."""
    from domain.blob import Blob

    codec = EventCodec([Blob])
    blob_id, at = new_id(), datetime.now(timezone.utc)
    created = Recorded(position=1, aggregate_type="blob", aggregate_id=blob_id, type="Blob.Created", version=1,
                       at=at, data={"owner_id": "u", "data": {"age": 30}, "schema_id": "p@1.0.0",
                                    "processor_id": None, "bucket_ids": [], "source": None}, class_version=2)
    migrated_v1 = Recorded(position=2, aggregate_type="blob", aggregate_id=blob_id, type="Blob.Migrated", version=2,
                           at=at, data={"schema_id": "p@2.0.0", "data": {"birthYear": 1996}}, class_version=1)
    assert codec.upcast(migrated_v1).data == {"schema_id": "p@2.0.0", "data": {"birthYear": 1996},
                                              "migration_id": None, "revert": False}
    blob = codec.rebuild([created, migrated_v1])
    assert isinstance(blob, Blob)
    assert (blob.schema_id, blob.data, blob.version, blob.migration_id) == ("p@2.0.0", {"birthYear": 1996}, 2, None)
    blob.update({"birthYear": 1997})  # and it goes on from there
    assert blob.version == 3
