"""Blobs as rows, plus ``blob_buckets`` (one row per membership) for listing
a bucket's blobs; a deleted blob is deleted rows. Every event carries what its
rows need (a move carries the resulting bucket list), so no row is read.

``data_bytes`` weighs the data (``projections/sizes.py``): list pages stop
before their items' data passes ``PAGE_BYTES`` without reading it."""

from __future__ import annotations

from typing import ClassVar

from domain.recorded import Recorded

from projections.changes import Change, Delete, Update, Upsert, touched
from projections.sizes import json_text_bytes


def _membership(record: Recorded, bucket_id: str) -> Upsert:
    row = {
        "blob_id": record.aggregate_id,
        "bucket_id": bucket_id,
        "created_at": record.at,
        "version": record.version,
        "position": record.position,
    }
    return Upsert("blob_buckets", ("blob_id", "bucket_id"), row)



class BlobProjection:
    name: ClassVar[str] = "blobs"
    tables: ClassVar[tuple[str, ...]] = ("blobs", "blob_buckets")

    def changes(self, record: Recorded) -> list[Change]:
        data, key = record.data, {"id": record.aggregate_id}
        if record.type == "Blob.Created":
            row = {
                **key,
                "owner_id": data["owner_id"],
                "schema_id": data["schema_id"],
                "processor_id": data["processor_id"],
                "data": data["data"],
                "data_bytes": json_text_bytes(data["data"]),
                "bucket_ids": data["bucket_ids"],
                "created_at": record.at,
                **touched(record),
            }
            return [Upsert("blobs", ("id",), row), *(_membership(record, b) for b in data["bucket_ids"])]
        if record.type == "Blob.Updated":
            return [Update("blobs", key, touched(record, data=data["data"], data_bytes=json_text_bytes(data["data"])))]
        if record.type == "Blob.Migrated":
            return [Update("blobs", key, touched(record, schema_id=data["schema_id"], data=data["data"],
                                                data_bytes=json_text_bytes(data["data"])))]
        if record.type == "Blob.Moved":
            return [
                Update("blobs", key, touched(record, bucket_ids=data["bucket_ids"])),
                Delete("blob_buckets", {"blob_id": record.aggregate_id, "bucket_id": data["from_bucket_id"]}),
                _membership(record, data["to_bucket_id"]),
            ]
        if record.type == "Blob.Deleted":
            return [Delete("blob_buckets", {"blob_id": record.aggregate_id}), Delete("blobs", key)]
        return []
