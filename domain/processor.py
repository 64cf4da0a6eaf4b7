"""Processors: a user's registered transformation from input blobs to output blobs.

A processor names its type (``text-expansion``, ``js-transform``, or one a
team adds through the ``inkstream.processors`` entry points), the schemas of
what it takes and makes, a type-specific ``config``, optional ``triggers``
(blob events of its owner that request a job by themselves) and ``limits``.

Whether a type exists and whether a config suits it is the type's business
(the handler asks the catalog before deciding); the aggregate checks what is
the same for every type: shapes, sizes and ranges. Every number and string
accepted here must fit the read model's columns (PostgreSQL ``integer``,
``text``, ``jsonb``): a command the write side accepts must always project.
"""

from __future__ import annotations

import copy
import re
from typing import Any

import orjson
from eventsourcing.domain import event

from domain.errors import FieldError, NotFound, ValidationFailed, storable_errors
from domain.base import InkAggregate
from domain.ids import is_id
from domain.schema import parse_schema_id

MAX_NAME = 200
TYPE_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}\Z")
MAX_CONFIG_BYTES = 256 * 1024
MAX_TRIGGERS = 16
MAX_TRIGGERED_PROCESSORS = 16
"""Processors with triggers one user may have. One blob change requests a job of each that matches,
and each of the (at most 16, the chain's budget) outputs one of each other, refused or not: with P
of them that is P + 16·(P − 1) jobs for one write, through the one dispatcher every user shares."""
TRIGGER_EVENTS = ("blob.created", "blob.updated")
MAX_SCHEMA_ID = 200

DEFAULT_TIMEOUT_SECONDS = 30
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_MAX_MEMORY_MB = 64
LIMIT_RANGES: dict[str, tuple[int, int]] = {
    "timeout_seconds": (1, 3600),
    "max_attempts": (1, 100),
    "max_memory_mb": (16, 1024),
}
DEFAULT_LIMITS: dict[str, int] = {
    "timeout_seconds": DEFAULT_TIMEOUT_SECONDS,
    "max_attempts": DEFAULT_MAX_ATTEMPTS,
    "max_memory_mb": DEFAULT_MAX_MEMORY_MB,
}


def _fail(errors: list[FieldError]) -> None:
    if errors:
        raise ValidationFailed("; ".join(f"{e.path or '/'}: {e.message}" for e in errors[:5]), errors)


def name_errors(name: object) -> list[FieldError]:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        return [FieldError("/name", f"name must be a non-blank string of at most {MAX_NAME} characters")]
    return storable_errors(name, "/name")


def type_errors(type_: object) -> list[FieldError]:
    if not isinstance(type_, str) or not TYPE_RE.match(type_):
        return [FieldError("/type", "type must be a processor type name such as js-transform")]
    return []


def schema_ref_errors(path: str, value: object, *, resolved: bool) -> list[FieldError]:
    """None, or a schema id: ``name@version`` when ``resolved``, else a bare name too."""
    if value is None:
        return []
    try:
        _, version = parse_schema_id(value)  # type: ignore[arg-type]
    except ValueError:
        version, ok = None, False
    else:
        ok = len(value) <= MAX_SCHEMA_ID  # type: ignore[arg-type]
    if not ok or (resolved and version is None):
        return [FieldError(path, "must be a schema version id (name@version)" if resolved else "must be a schema id")]
    return []


def config_errors(config: object) -> list[FieldError]:
    """An object of storable JSON, at most ``MAX_CONFIG_BYTES`` encoded."""
    if not isinstance(config, dict):
        return [FieldError("/config", "config must be an object")]
    errors = storable_errors(config, "/config")
    if errors:
        return errors
    try:
        size = len(orjson.dumps(config))
    except TypeError:
        return [FieldError("/config", "config must be JSON")]
    if size > MAX_CONFIG_BYTES:
        return [FieldError("/config", f"config must be at most {MAX_CONFIG_BYTES} bytes as JSON")]
    return []


def check_limits(limits: object, base: dict[str, int] | None = None) -> dict[str, int]:
    """``limits`` over ``base`` (the defaults when None): every value an integer in its range."""
    merged = dict(DEFAULT_LIMITS if base is None else base)
    if limits is None:
        return merged
    if not isinstance(limits, dict):
        _fail([FieldError("/limits", "limits must be an object")])
    assert isinstance(limits, dict)
    errors: list[FieldError] = []
    for key, value in limits.items():
        if key not in LIMIT_RANGES:
            errors.append(FieldError(f"/limits/{key}", f"{key} is not a limit"))
            continue
        low, high = LIMIT_RANGES[key]
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            errors.append(FieldError(f"/limits/{key}", f"{key} must be an integer from {low} to {high}"))
            continue
        merged[key] = value
    _fail(errors)
    return merged


def check_triggers(triggers: object, *, resolved: bool = False) -> list[dict[str, Any]]:
    """Normalised ``[{on, bucket_id, schema_id}]`` (absent filters are None).

    Whether the bucket is the owner's and the schema exists needs the log, so
    the handler checks that; here only the shape (``resolved``: each schema id
    is ``name@version``, as the handler recorded it).
    """
    if triggers is None:
        return []
    if not isinstance(triggers, list):
        _fail([FieldError("/triggers", "triggers must be an array")])
    assert isinstance(triggers, list)
    if len(triggers) > MAX_TRIGGERS:
        _fail([FieldError("/triggers", f"a processor has at most {MAX_TRIGGERS} triggers")])
    errors: list[FieldError] = []
    out: list[dict[str, Any]] = []
    for i, trigger in enumerate(triggers):
        path = f"/triggers/{i}"
        if not isinstance(trigger, dict):
            errors.append(FieldError(path, "a trigger must be an object"))
            continue
        unknown = sorted(set(trigger) - {"on", "bucket_id", "schema_id"})
        errors += [FieldError(f"{path}/{k}", f"{k} is not allowed") for k in unknown]
        on = trigger.get("on")
        if on not in TRIGGER_EVENTS:
            errors.append(FieldError(f"{path}/on", f"on must be one of {', '.join(TRIGGER_EVENTS)}"))
        bucket_id = trigger.get("bucket_id")
        if bucket_id is not None and not is_id(bucket_id):
            errors.append(FieldError(f"{path}/bucket_id", "bucket_id must be a bucket id"))
        schema_id = trigger.get("schema_id")
        errors += schema_ref_errors(f"{path}/schema_id", schema_id, resolved=resolved)
        out.append({"on": on, "bucket_id": bucket_id, "schema_id": schema_id})
    _fail(errors)
    return out


class Processor(InkAggregate):
    TYPE = "processor"

    @classmethod
    def register(
        cls,
        owner_id: str,
        name: object,
        type: object,
        input_schema: object,
        output_schema: object,
        config: object,
        triggers: object,
        limits: object,
    ) -> Processor:
        """Schema ids as the handler resolved them (``name@version``); ``limits`` over the defaults."""
        _fail(name_errors(name) + type_errors(type) + config_errors(config)
              + schema_ref_errors("/input_schema", input_schema, resolved=True)
              + schema_ref_errors("/output_schema", output_schema, resolved=True))
        checked_triggers = check_triggers(triggers, resolved=True)
        checked_limits = check_limits(limits)
        assert isinstance(name, str) and isinstance(type, str) and isinstance(config, dict)
        return cls(
            owner_id=owner_id,
            name=name,
            type=type,
            input_schema=input_schema,
            output_schema=output_schema,
            config=copy.deepcopy(config),
            triggers=checked_triggers,
            limits=checked_limits,
        )

    @event("Registered")
    def __init__(
        self,
        owner_id: str,
        name: str,
        type: str,
        input_schema: str | None,
        output_schema: str | None,
        config: dict[str, Any],
        triggers: list[dict[str, Any]],
        limits: dict[str, int],
    ) -> None:
        self.owner_id = owner_id
        self.name = name
        self.type = type
        self.input_schema = input_schema
        self.output_schema = output_schema
        self.config = copy.deepcopy(config)
        self.triggers = copy.deepcopy(triggers)
        self.limits = {**DEFAULT_LIMITS, **limits}
        self.deleted = False

    def ensure_live(self) -> None:
        if self.deleted:
            raise NotFound(f"processor {self.id_str}")

    def update(self, config: object = None, triggers: object = None, limits: object = None) -> None:
        """A PATCH: ``None`` keeps a field (``limits`` change the ones they name); one event
        carries the resulting values."""
        self.ensure_live()
        if config is None and triggers is None and limits is None:
            _fail([FieldError("", "config, triggers or limits is required")])
        if config is not None:
            _fail(config_errors(config))
        assert config is None or isinstance(config, dict)
        self._updated(
            config=copy.deepcopy(self.config if config is None else config),
            triggers=copy.deepcopy(self.triggers) if triggers is None else check_triggers(triggers, resolved=True),
            limits=check_limits(limits, self.limits),
        )

    @event("Updated")
    def _updated(self, config: dict[str, Any], triggers: list[dict[str, Any]], limits: dict[str, int]) -> None:
        self.config = copy.deepcopy(config)
        self.triggers = copy.deepcopy(triggers)
        self.limits = {**DEFAULT_LIMITS, **limits}

    def delete(self) -> None:
        self.ensure_live()
        self._deleted()

    @event("Deleted")
    def _deleted(self) -> None:
        self.deleted = True
