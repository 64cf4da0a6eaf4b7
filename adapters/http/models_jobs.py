"""Request, query and answer models of the Processors and Jobs routes.

Requests forbid unknown fields and use strict types (a wrong type is a 400);
value rules (a known type, a config its type accepts, limits in range, a
trigger's event) are the domain's and the processor types' (422). The ranges
below document those rules. Answers are the documents of
``projections.documents`` (``ProcessorOut``, ``JobOut``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from adapters.http.models import Answer, ListQuery, Request
from adapters.http.models_content import DeletedMixin
from domain.processor import LIMIT_RANGES, MAX_NAME, MAX_TRIGGERS, TRIGGER_EVENTS
from projections.documents import JobOut, ProcessorOut


def _range(name: str, default: int, what: str) -> Any:
    low, high = LIMIT_RANGES[name]
    return Field(default=None, json_schema_extra={"minimum": low, "maximum": high},
                 description=f"{what} (default {default}; {low} to {high}).")


def _user_id() -> Any:
    return Field(default=None, description="Optional; when given it must be your own user id (else 403).")


# -- requests ---------------------------------------------------------------------------


class TriggerIn(Request):
    on: str = Field(json_schema_extra={"enum": list(TRIGGER_EVENTS)},
                    description="The blob event of yours that requests a job.")
    bucket_id: str | None = Field(default=None, description="Only blobs in this bucket (yours).")
    schema_id: str | None = Field(default=None, description="Only blobs of this schema (`name@version`, or a bare "
                                                            "name for its latest version when the trigger is saved).")


class LimitsIn(Request):
    timeout_seconds: int | None = _range("timeout_seconds", 30, "Time limit of one attempt, in seconds")
    max_attempts: int | None = _range("max_attempts", 5, "Attempts in one run (retries included)")
    max_memory_mb: int | None = _range("max_memory_mb", 64, "Memory limit of a js-transform, in MB")


class ProcessorIn(Request):
    name: str = Field(json_schema_extra={"minLength": 1, "maxLength": MAX_NAME, "pattern": r"\S"})
    type: str = Field(description="`text-expansion`, `js-transform`, or a type this deployment added.")
    input_schema: str | None = Field(default=None, description="Jobs take only blobs of this schema.")
    output_schema: str | None = Field(default=None, description="Output blobs get this schema and are validated "
                                                                "against it.")
    config: dict[str, Any] = Field(description="Per type: text-expansion `{model, prompt?}`; js-transform "
                                               "`{source}` defining `function process(data)`.")
    triggers: list[TriggerIn] | None = Field(default=None, fail_fast=True, json_schema_extra={"maxItems": MAX_TRIGGERS})
    limits: LimitsIn | None = None
    user_id: str | None = _user_id()


class ProcessorPatch(Request):
    config: dict[str, Any] | None = Field(default=None, description="Replaces the whole config.")
    triggers: list[TriggerIn] | None = Field(default=None, fail_fast=True, json_schema_extra={"maxItems": MAX_TRIGGERS},
                                             description="Replaces every trigger (`[]` removes them).")
    limits: LimitsIn | None = Field(default=None, description="The limits given change; the others stay.")
    user_id: str | None = _user_id()


class JobIn(Request):
    processor_id: str
    input_blob_id: str
    user_id: str | None = _user_id()


class BulkRetryIn(Request):
    processor_id: str
    user_id: str | None = _user_id()


# -- queries ----------------------------------------------------------------------------


class ProcessorListQuery(ListQuery):
    pass


class JobListQuery(ListQuery):
    processor_id: str | None = Field(default=None, description="Only this processor's jobs (yours).")
    status: Literal["pending", "running", "completed", "failed", "cancelled"] | None = Field(
        default=None, description="Only jobs in this status."
    )


# -- answers -------------------------------------------------------------------------------


class ProcessorChanged(ProcessorOut):
    position: int


class ProcessorDeleted(ProcessorChanged, DeletedMixin):
    pass


class ProcessorPage(Answer):
    items: list[ProcessorOut]
    next_cursor: str | None = None


class JobChanged(JobOut):
    """A command's answer: ``position`` is that command's (the job's last change)."""


class JobPage(Answer):
    items: list[JobOut]
    next_cursor: str | None = None


class BulkRetryOut(Answer):
    retried: int
    position: int
