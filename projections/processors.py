"""Processors as rows; a deleted processor has none (its jobs keep theirs).

``config_bytes`` weighs what a processor's row can grow by (its config, up to
``MAX_CONFIG_BYTES``, with its triggers and limits; ``projections/sizes.py``):
list pages stop before their items pass ``PAGE_BYTES`` without reading them.
Both events that set those fields carry all three, so no row is read."""

from __future__ import annotations

from typing import Any, ClassVar

from domain.recorded import Recorded

from projections.changes import Change, Delete, Update, Upsert, touched
from projections.sizes import json_text_bytes


def config_bytes(data: dict[str, Any]) -> int:
    """The weight of a processor's config, triggers and limits as JSON text: its row's page weight."""
    return json_text_bytes(data["config"]) + json_text_bytes(data["triggers"]) + json_text_bytes(data["limits"])


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
                "config_bytes": config_bytes(data),
                "created_at": record.at,
                **touch,
            }
            return [Upsert("processors", ("id",), row)]
        if record.type == "Processor.Updated":
            fields = {"config": data["config"], "triggers": data["triggers"], "limits": data["limits"],
                      "config_bytes": config_bytes(data), **touch}
            return [Update("processors", key, fields)]
        if record.type == "Processor.Deleted":
            return [Delete("processors", key)]
        return []
