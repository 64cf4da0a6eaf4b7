"""Content projections are pure: the same events always give the same changes,
and the rows they build agree with the aggregates the events came from."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import orjson

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.base import EventCodec, InkAggregate
from domain.blob import Blob
from domain.bucket import Bucket
from domain.errors import DomainError
from domain.ids import new_id
from domain.recorded import Recorded
from domain.schema import Schema
from projections.blobs import BlobProjection
from projections.buckets import BucketProjection
from projections.changes import Upsert
from projections.schemas import SchemaProjection
from projections.sizes import json_text_bytes
from tests.support.memory_tables import MemoryTables

CODEC = EventCodec([Schema, Bucket, Blob])
PROJECTIONS = (SchemaProjection(), BucketProjection(), BlobProjection())
OWNERS = [new_id(), new_id()]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=6,
)  # fmt: skip
ops = st.lists(
    st.tuples(
        st.sampled_from(["schema", "version", "bucket", "rename", "move_bucket", "delete_bucket",
                         "blob", "update", "move_blob", "migrate", "delete_blob"]),
        st.integers(0, 7), st.integers(0, 7), json_values,
    ),
    max_size=40,
)  # fmt: skip


def jsonb_text(value: Any) -> str:
    """``value`` as PostgreSQL writes a jsonb back (``data::text``): ", " and ": " between items,
    numbers as ``numeric`` written out in full (the log's ``1e16`` comes back as 17 digits)."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {jsonb_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(jsonb_text(v) for v in value) + "]"
    if isinstance(value, float):
        return format(Decimal(orjson.dumps(value).decode()), "f")
    return json.dumps(value, ensure_ascii=False)


class Workload:
    """Runs random commands on aggregates and keeps the log they produce."""

    def __init__(self) -> None:
        self.records: list[Recorded] = []
        self.schemas: list[Schema] = []
        self.buckets: list[Bucket] = []
        self.blobs: list[Blob] = []

    def _record(self, aggregate: InkAggregate) -> None:
        for event in aggregate.collect_events():
            new = CODEC.encode(event, actor=None)
            self.records.append(
                Recorded(len(self.records) + 1, aggregate.TYPE, aggregate.id_str, new.type, new.version, new.at,
                         copy.deepcopy(new.data))
            )  # fmt: skip

    @staticmethod
    def _pick(items: list[Any], i: int) -> Any:
        return items[i % len(items)] if items else None

    def run(self, op: str, i: int, j: int, value: Any) -> None:
        bucket, blob = self._pick(self.buckets, i), self._pick(self.blobs, i)
        other = self._pick(self.buckets, j)
        target: InkAggregate | None = None
        try:
            if op == "schema":
                target = Schema.register(f"s{i}", OWNERS[0], "1.0.0", {"type": "object"}, None)
                if any(s.id == target.id for s in self.schemas):
                    return
                self.schemas.append(target)
            elif op == "version" and self.schemas:
                target = self._pick(self.schemas, i)
                migration = {"from_version": "1.0.0", "transform": "function migrate(d){return d}"}
                target.add_version(OWNERS[0], f"1.{j}.0-rc.{i}", {"description": str(value)[:20]}, migration)
            elif op == "bucket":
                parent = other.id_str if other is not None and not other.deleted and j % 2 else None
                target = Bucket.create(OWNERS[i % 2], f"b{i}", "folder", parent)
                self.buckets.append(target)
            elif op == "rename" and bucket is not None:
                target = bucket
                bucket.update(f"renamed {j}", bucket.parent_id, [])
            elif op == "move_bucket" and bucket is not None:
                target = bucket
                bucket.update(bucket.name, None if other is None or other is bucket else other.id_str, [])
            elif op == "delete_bucket" and bucket is not None:
                target = bucket
                bucket.delete()
            elif op == "blob":
                filed = [b.id_str for b in self.buckets if not b.deleted][i % 2 : i % 2 + j % 4]
                target = Blob.create(OWNERS[0], value, None, None, filed)
                self.blobs.append(target)
            elif op == "update" and blob is not None:
                target = blob
                blob.update(value)
            elif op == "move_blob" and blob is not None and blob.bucket_ids and other is not None:
                target = blob
                blob.move(blob.bucket_ids[j % len(blob.bucket_ids)], other.id_str)
            elif op == "migrate" and blob is not None:
                target = blob
                blob.migrate(f"s{j}@1.0.0", value)
            elif op == "delete_blob" and blob is not None:
                target = blob
                blob.delete()
        except DomainError:
            if target is not None:
                target.collect_events()
            return
        if target is not None:
            self._record(target)


SETUP: list[tuple[str, int, int, Any]] = [
    ("bucket", 0, 0, None), ("bucket", 2, 1, None), ("bucket", 4, 0, None), ("schema", 0, 0, None),
    ("blob", 0, 2, {"title": "a"}), ("blob", 1, 3, ["b"]),
]  # fmt: skip


def build(operations: list[tuple[str, int, int, Any]]) -> Workload:
    """A small fixed tree with filed blobs, then the generated commands."""
    workload = Workload()
    for op in SETUP + operations:
        workload.run(*op)
    return workload


def project(records: list[Recorded]) -> MemoryTables:
    tables = MemoryTables()
    for record in records:
        for projection in PROJECTIONS:
            tables.apply(projection.changes(record))
    return tables


@settings(max_examples=150, deadline=None)
@given(ops)
def test_same_events_give_the_same_changes_and_touch_nothing(operations: list[tuple[str, int, int, Any]]) -> None:
    records = build(operations).records
    for record in records:
        before = copy.deepcopy(record)
        for projection in PROJECTIONS:
            first = projection.changes(record)
            assert projection.changes(copy.deepcopy(record)) == first
            assert all(change.table in projection.tables for change in first)
        assert record == before
    assert project(records).tables == project(copy.deepcopy(records)).tables


@settings(max_examples=150, deadline=None)
@given(ops)
def test_rows_agree_with_the_aggregates(operations: list[tuple[str, int, int, Any]]) -> None:
    workload = build(operations)
    tables = project(workload.records)
    buckets = {r["id"]: r for r in tables.rows("buckets")}
    live_buckets = [b for b in workload.buckets if not b.deleted]
    assert set(buckets) == {b.id_str for b in live_buckets}
    for b in live_buckets:
        row = buckets[b.id_str]
        assert (row["name"], row["parent_id"], row["owner_id"], row["version"]) == (b.name, b.parent_id, b.owner_id, b.version)
        assert (row["created_at"], row["updated_at"]) == (b.created_on, b.modified_on)
    blobs = {r["id"]: r for r in tables.rows("blobs")}
    live_blobs = [b for b in workload.blobs if not b.deleted]
    assert set(blobs) == {b.id_str for b in live_blobs}
    for b in live_blobs:
        row = blobs[b.id_str]
        assert (row["data"], row["schema_id"], row["bucket_ids"], row["version"]) == (b.data, b.schema_id, b.bucket_ids, b.version)
        assert row["data_bytes"] == json_text_bytes(b.data) >= len(jsonb_text(b.data).encode())
    schemas = {r["id"]: r for r in tables.rows("schemas")}
    for s in workload.schemas:
        for v, entry in s.versions.items():
            row = schemas[f"{s.name}@{v}"]
            assert row["schema_bytes"] >= len(jsonb_text(entry.schema).encode()) + len(jsonb_text(entry.migration).encode())
    memberships = {(r["blob_id"], r["bucket_id"]) for r in tables.rows("blob_buckets")}
    assert memberships == {(b.id_str, bucket_id) for b in live_blobs for bucket_id in b.bucket_ids}
    schema_rows = {r["id"] for r in tables.rows("schemas")}
    assert schema_rows == {f"{s.name}@{v}" for s in workload.schemas for v in s.versions}
    positions = [r.position for r in workload.records]
    assert all(row["position"] in positions for rows in tables.tables.values() for row in rows.values())


@settings(max_examples=100, deadline=None)
@given(ops, st.integers(0, 40))
def test_replaying_a_suffix_converges(operations: list[tuple[str, int, int, Any]], start: int) -> None:
    """A projector that crashes after applying, before its checkpoint, replays
    the tail of the log once more: the rows end up the same."""
    records = build(operations).records
    tables = project(records)
    for record in records[min(start, len(records)) :]:
        for projection in PROJECTIONS:
            tables.apply(projection.changes(record))
    assert tables.tables == project(records).tables


def test_unknown_events_are_ignored() -> None:
    record = Recorded(1, "user", new_id(), "User.Registered", 1, Schema.Event.create_timestamp(), {"x": 1})
    assert all(p.changes(record) == [] for p in PROJECTIONS)


def test_schema_rows_carry_the_semver_sort_key() -> None:
    workload = Workload()
    schema = Schema.register("book", OWNERS[0], "1.0.0", {"type": "object"}, None)
    schema.add_version(OWNERS[0], "2.0.0-beta.11", {}, {"from_version": "1.0.0", "transform": "x"})
    workload._record(schema)
    (change,) = SchemaProjection().changes(workload.records[1])
    assert isinstance(change, Upsert)
    row = change.row
    assert (row["id"], row["name"], row["owner_id"], row["major"], row["pre"]) == (
        "book@2.0.0-beta.11", "book", OWNERS[0], 2, "1beta!000211"
    )  # fmt: skip
    assert row["migration"] == {"from_version": "1.0.0", "transform": "x"}
    assert row["created_at"] == workload.records[1].at and row["aggregate_version"] == 2


def test_blob_rows_weigh_their_data_as_the_read_stores_give_it_back() -> None:
    """``data_bytes`` bounds list pages in bytes: never less than the data's text, even where the
    log's compact JSON is much shorter than what PostgreSQL answers (numbers in exponent form)."""
    workload = Workload()
    blob = Blob.create(OWNERS[0], {"text": "x" * 1000}, None, None, [])
    workload._record(blob)
    compact = [1e308, -1e-300, 1.5e16, 12, "1e5"]
    blob.update(compact)
    workload._record(blob)
    blob.migrate("s@2.0.0", {"n": [0.1] * 10})
    workload._record(blob)
    created, updated, migrated = (BlobProjection().changes(r)[0] for r in workload.records)
    assert isinstance(created, Upsert)
    assert created.row["data_bytes"] == len(b'{"text":"' + b"x" * 1000 + b'"}') + 1
    assert updated.fields["data_bytes"] >= len(jsonb_text(compact)) > 600 > 10 * len(orjson.dumps(compact))
    assert migrated.fields["data_bytes"] == json_text_bytes({"n": [0.1] * 10}) >= len(jsonb_text({"n": [0.1] * 10}))
