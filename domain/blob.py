"""Blobs: a user's JSON documents, typed by a schema version or untyped.

The blob owns its list of buckets, so filing, moving and unfiling are events of
the blob alone (one command, one event, one subject). A move is one event that
carries the resulting list too, so that a pure projector can write it without
reading the row it is about to change.

A processor's output blob records where it came from (``source``: the job,
its processor and the job's depth in a chain of triggered jobs): the trigger
dispatcher reads it to keep a processor from triggering itself and to stop a
chain. A user's blob has no source. ``processor_id`` is not provenance: a user
may set it on any blob (the seed files an input blob under its processor).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.base import InkAggregate
from domain.errors import NotFound, ensure_size, ensure_storable, invalid
from domain.ids import is_id
from domain.limits import MAX_BUCKETS_PER_BLOB, Limits
from domain.schema import parse_schema_id


def check_data(data: Any, limits: Limits, what: str = "data") -> None:
    """JSON the log can hold, within ``limits.blob_bytes``."""
    ensure_storable(data, "/data", what)
    ensure_size(data, "/data", what, limits.blob_bytes)


def _check_schema_id(schema_id: object, optional: bool = False) -> None:
    if optional and schema_id is None:
        return
    try:
        _, version = parse_schema_id(schema_id)  # type: ignore[arg-type]
    except ValueError:
        version = None
    if version is None:
        raise invalid("/schema_id", "must be a schema version id (name@version)")


def _check_bucket_ids(bucket_ids: object) -> list[str]:
    if not isinstance(bucket_ids, list) or not all(is_id(b) for b in bucket_ids):
        raise invalid("/bucket_ids", "must be a list of bucket ids")
    if len(bucket_ids) > MAX_BUCKETS_PER_BLOB:
        raise invalid("/bucket_ids", f"a blob is filed in at most {MAX_BUCKETS_PER_BLOB} buckets")
    if len(set(bucket_ids)) != len(bucket_ids):
        raise invalid("/bucket_ids", "must not name a bucket twice")
    return list(bucket_ids)


class Blob(InkAggregate):
    TYPE = "blob"

    class Created(InkAggregate.Created):
        class_version = 2
        owner_id: str
        data: Any
        schema_id: str | None
        processor_id: str | None
        bucket_ids: list[str]
        source: dict[str, Any] | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["source"] = None

    @classmethod
    def create(
        cls,
        owner_id: str,
        data: Any,
        schema_id: str | None,
        processor_id: str | None,
        bucket_ids: list[str],
        limits: Limits = Limits(),
        source: dict[str, Any] | None = None,
        blob_id: UUID | None = None,
    ) -> Blob:
        """``schema_id`` is the resolved ``name@version`` (the handler resolved a bare name);
        ``source`` and ``blob_id`` (derived from the job) for a processor's output."""
        bucket_ids = _check_bucket_ids(bucket_ids)
        _check_schema_id(schema_id, optional=True)
        if processor_id is not None and not is_id(processor_id):
            raise invalid("/processor_id", "must be a processor id")
        check_data(data, limits)
        kwargs = dict(
            owner_id=owner_id, data=data, schema_id=schema_id, processor_id=processor_id,
            bucket_ids=list(bucket_ids), source=dict(source) if source is not None else None,
        )
        if blob_id is None:
            return cls(**kwargs)
        return cls._create(cls.Created, id=blob_id, **kwargs)

    @event(Created)
    def __init__(
        self,
        owner_id: str,
        data: Any,
        schema_id: str | None,
        processor_id: str | None,
        bucket_ids: list[str],
        source: dict[str, Any] | None,
    ) -> None:
        self.owner_id = owner_id
        self.data = data
        self.schema_id = schema_id
        self.processor_id = processor_id
        self.bucket_ids = list(bucket_ids)
        self.source = dict(source) if source is not None else None
        self.migration_id: str | None = None  # the migration run that wrote the current schema, if one did
        self.deleted = False

    def ensure_live(self) -> None:
        if self.deleted:
            raise NotFound(f"blob {self.id_str}")

    def update(self, data: Any, limits: Limits = Limits()) -> None:
        """New data; the handler has validated it against ``schema_id``."""
        self.ensure_live()
        check_data(data, limits)
        self._updated(data=data)

    @event("Updated")
    def _updated(self, data: Any) -> None:
        self.data = data
        self.migration_id = None

    def move(self, from_bucket_id: str, to_bucket_id: str) -> None:
        """Swap one bucket for another in place, keeping the list's order."""
        self.ensure_live()
        if not is_id(to_bucket_id):
            raise invalid("/to_bucket_id", "must be a bucket id")
        if from_bucket_id not in self.bucket_ids:
            raise invalid("/from_bucket_id", "the blob is not in this bucket")
        if to_bucket_id in self.bucket_ids:
            raise invalid("/to_bucket_id", "the blob is already in this bucket")
        bucket_ids = [to_bucket_id if b == from_bucket_id else b for b in self.bucket_ids]
        self._moved(from_bucket_id=from_bucket_id, to_bucket_id=to_bucket_id, bucket_ids=bucket_ids)

    @event("Moved")
    def _moved(self, from_bucket_id: str, to_bucket_id: str, bucket_ids: list[str]) -> None:
        self.bucket_ids = list(bucket_ids)
        self.migration_id = None

    class Migrated(InkAggregate.Event):
        """A new schema version and the data for it. ``migration_id``: the migration run that
        wrote it (None for a single-blob migrate); ``revert``: that run's revert put it back."""

        class_version = 2
        schema_id: str
        data: Any
        migration_id: str | None
        revert: bool

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["migration_id"] = None
            state["revert"] = False

    def migrate(self, schema_id: str, data: Any, limits: Limits = Limits(), *, migration_id: str | None = None,
                revert: bool = False) -> None:
        """A new schema version and the data transformed for it, as one change."""
        self.ensure_live()
        _check_schema_id(schema_id)
        if schema_id == self.schema_id:
            raise invalid("/schema_id", "the blob already has this schema")
        if migration_id is not None and not is_id(migration_id):
            raise invalid("/migration_id", "must be a migration id")
        check_data(data, limits, "the migrated data")
        self._migrated(schema_id=schema_id, data=data, migration_id=migration_id, revert=bool(revert))

    @event(Migrated)
    def _migrated(self, schema_id: str, data: Any, migration_id: str | None, revert: bool) -> None:
        self.schema_id = schema_id
        self.data = data
        self.migration_id = migration_id

    def delete(self) -> None:
        self.ensure_live()
        self._deleted()

    @event("Deleted")
    def _deleted(self) -> None:
        self.deleted = True
