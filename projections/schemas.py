"""Schema versions as rows: one per ``name@version``, with a semver sort key.

``major``/``minor``/``patch`` and ``pre`` (``SemVer.pre_sort_key``, compared
with ``COLLATE "C"``) let SQL order versions by semver precedence, newest
first. ``version`` holds the semantic version (the API's field), so the
aggregate's event count goes to ``aggregate_version``. The numeric parts come
clamped to the ``bigint`` range (``SemVer.sort_columns``), so even a version
the log took in before the domain bounded them projects. ``schema_bytes``
weighs the schema and its migration (``projections/sizes.py``), which bounds
a page of versions in bytes.
"""

from __future__ import annotations

from typing import ClassVar

from domain.recorded import Recorded
from domain.schema import SemVer, schema_id

from projections.changes import Change, Upsert
from projections.sizes import json_text_bytes


class SchemaProjection:
    name: ClassVar[str] = "schemas"
    tables: ClassVar[tuple[str, ...]] = ("schemas",)

    def changes(self, record: Recorded) -> list[Change]:
        if record.type not in ("Schema.Created", "Schema.VersionAdded"):
            return []
        data = record.data
        major, minor, patch, pre = SemVer.parse(data["version"]).sort_columns()
        row = {
            "id": schema_id(data["name"], data["version"]),
            "name": data["name"],
            "version": data["version"],
            "owner_id": data["owner_id"],
            "schema": data["schema"],
            "migration": data.get("migration"),
            "schema_bytes": json_text_bytes(data["schema"]) + json_text_bytes(data.get("migration")),
            "major": major,
            "minor": minor,
            "patch": patch,
            "pre": pre,
            "created_at": record.at,
            "aggregate_version": record.version,
            "position": record.position,
        }
        return [Upsert("schemas", ("id",), row)]
