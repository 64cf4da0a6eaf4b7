"""Buckets as rows; a deleted bucket is a deleted row."""

from __future__ import annotations

from typing import ClassVar

from domain.recorded import Recorded

from projections.changes import Change, Delete, Update, Upsert


class BucketProjection:
    name: ClassVar[str] = "buckets"
    tables: ClassVar[tuple[str, ...]] = ("buckets",)

    def changes(self, record: Recorded) -> list[Change]:
        data, key = record.data, {"id": record.aggregate_id}
        if record.type == "Bucket.Created":
            row = {
                **key,
                "owner_id": data["owner_id"],
                "name": data["name"],
                "type": data["type"],
                "parent_id": data["parent_id"],
                "created_at": record.at,
                "updated_at": record.at,
                "version": record.version,
                "position": record.position,
            }
            return [Upsert("buckets", ("id",), row)]
        if record.type == "Bucket.Updated":
            fields = {
                "name": data["name"],
                "parent_id": data["parent_id"],
                "updated_at": record.at,
                "version": record.version,
                "position": record.position,
            }
            return [Update("buckets", key, fields)]
        if record.type == "Bucket.Deleted":
            return [Delete("buckets", key)]
        return []
