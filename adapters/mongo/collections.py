"""The MongoDB collections of the read models: each table's key and the indexes its queries use.

This is Mongo's counterpart of the SQL migrations: the projections name tables
and columns, and each store says how it keeps them. A document's ``_id`` is
its row key (for a composite key, the JSON text of the key's values in order,
``["<blob id>","<bucket id>"]``: a sub-document ``_id`` would do, but
SecantusDB finds one only by scanning the collection), so an ``Update`` or
``Delete`` on the key is a lookup by ``_id``; every other ``where`` column of a
projection's changes has an index here, as has every query of
``adapters/mongo/read_model.py``. Indexes are created at start-up (creating an
existing one is a no-op).

Every collection also has a partial index on the tombstones (documents marked
``_deleted`` by a ``Delete``; see ``adapters/mongo/changes.py``), which the
projector purges once its checkpoint has passed them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
from pymongo import ASCENDING as UP
from pymongo import DESCENDING as DOWN
from pymongo.asynchronous.database import AsyncDatabase

from projections.changes import Projection

Keys = tuple[tuple[str, int], ...]

CHECKPOINTS = "projection_checkpoints"


@dataclass(frozen=True)
class CollectionSpec:
    key: tuple[str, ...]
    indexes: tuple[Keys, ...] = ()


COLLECTIONS: dict[str, CollectionSpec] = {
    "users": CollectionSpec(("user_id",)),
    # schema(bare name) and schema_versions: newest by semver precedence
    "schemas": CollectionSpec(("id",), ((("name", UP), ("major", DOWN), ("minor", DOWN), ("patch", DOWN),
                                         ("pre", DOWN)),)),
    # buckets(owner, parent): oldest first; bucket_is_empty: children of a parent
    "buckets": CollectionSpec(("id",), ((("owner_id", UP), ("parent_id", UP), ("created_at", UP), ("_id", UP)),
                                        (("parent_id", UP),))),
    # blobs(owner[, schema]): oldest first
    "blobs": CollectionSpec(("id",), ((("owner_id", UP), ("created_at", UP), ("_id", UP)),
                                      (("owner_id", UP), ("schema_id", UP), ("created_at", UP), ("_id", UP)))),
    # blobs(bucket) and bucket_is_empty by bucket; Delete where blob_id
    "blob_buckets": CollectionSpec(("blob_id", "bucket_id"), ((("bucket_id", UP), ("blob_id", UP)),
                                                              (("blob_id", UP),))),
    # books(owner) by id
    "books": CollectionSpec(("id",), ((("owner_id", UP), ("_id", UP)),)),
    # a book's chapters; Delete where book_id
    "book_chapters": CollectionSpec(("id",), ((("book_id", UP),),)),
    # processors(owner): oldest first
    "processors": CollectionSpec(("id",), ((("owner_id", UP), ("created_at", UP), ("_id", UP)),)),
    # jobs(owner[, processor][, status]): newest first; job_ids(processor, statuses); running_job_ids(owner)
    "jobs": CollectionSpec(("id",), ((("owner_id", UP), ("created_at", DOWN), ("_id", DOWN)),
                                     (("owner_id", UP), ("status", UP)),
                                     (("processor_id", UP), ("status", UP), ("created_at", UP), ("_id", UP)))),
    # migrations(owner): newest first; completed_run(owner, from, to); running_job_ids(owner)
    "migrations": CollectionSpec(("id",), ((("owner_id", UP), ("created_at", DOWN), ("_id", DOWN)),
                                           (("owner_id", UP), ("from_schema_id", UP), ("schema_id", UP)),
                                           (("owner_id", UP), ("status", UP)))),
    # command_position(aggregate, command id): the first landing
    "command_events": CollectionSpec(("command_id", "aggregate_id", "position"),
                                     ((("command_id", UP), ("aggregate_id", UP), ("position", UP)),)),
}


class UndeclaredCollection(Exception):
    """A projection writes a table that has no MongoDB declaration here."""


def spec(table: str) -> CollectionSpec:
    try:
        return COLLECTIONS[table]
    except KeyError:
        raise UndeclaredCollection(
            f"table {table!r} has no MongoDB collection declared in adapters/mongo/collections.py"
        ) from None


def check_declared(projections: Iterable[Projection]) -> None:
    for projection in projections:
        for table in projection.tables:
            spec(table)


def doc_id(table: str, values: dict[str, Any]) -> Any:
    """The ``_id`` of the row whose key columns have ``values``."""
    key = spec(table).key
    if len(key) == 1:
        return values[key[0]]
    return orjson.dumps([values[column] for column in key]).decode()


def is_key(table: str, columns: Iterable[str]) -> bool:
    return set(columns) == set(spec(table).key)


async def ensure_indexes(db: AsyncDatabase, tables: Iterable[str], suffix: str = "") -> None:
    for table in tables:
        collection = db[table + suffix]
        for keys in spec(table).indexes:
            await collection.create_index(list(keys))
        await collection.create_index([("position", UP)], name="tombstones",
                                      partialFilterExpression={"_deleted": True})
