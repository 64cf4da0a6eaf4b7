"""Processors as rows; a deleted processor has none (its jobs keep theirs)."""

from __future__ import annotations

from typing import ClassVar

from domain.recorded import Recorded

from projections.changes import Change, Delete, Update, Upsert, touched


class ProcessorProjection:
    name: ClassVar[str] = "processors"
    tables: ClassVar[tuple[str, ...]] = ("processors",)

    def changes(self, record: Recorded) -> list[Change]:
        data, key = record.data, {"id": record.aggregate_id}
        touch = touched(record)
        if record.type == "Processor.Registered":
            row = {
                **key,
                "owner_id": data["owner_id"],
                "name": data["name"],
                "type": data["type"],
                "input_schema": data["input_schema"],
                "output_schema": data["output_schema"],
                "config": data["config"],
                "triggers": data["triggers"],
                "limits": data["limits"],
                "created_at": record.at,
                **touch,
            }
            return [Upsert("processors", ("id",), row)]
        if record.type == "Processor.Updated":
            fields = {"config": data["config"], "triggers": data["triggers"], "limits": data["limits"], **touch}
            return [Update("processors", key, fields)]
        if record.type == "Processor.Deleted":
            return [Delete("processors", key)]
        return []
