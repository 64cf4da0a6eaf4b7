"""``SchemaValidator`` on jsonschema-rs.

* Offline: ``offline=True`` disables every remote or file ``$ref`` retrieval
  (jsonschema-rs refuses with "Retrieval is disabled"); the draft meta-schemas
  ship inside the library, so checking a document needs no network either.
  A ``$schema`` that is not one of the five known drafts is refused up front:
  handing it to jsonschema-rs would make it try to fetch that URI.
* One compiled validator per ``schema_key`` (a ``name@version``, immutable),
  in a bounded LRU, so a hot schema compiles once.
* Every error is reported, with the instance location as a JSON Pointer and a
  readable message; messages for ``required`` and ``type`` are rewritten, the
  others are jsonschema-rs's own.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import jsonschema_rs

from domain.errors import FieldError

# Canonical meta-schema URIs, keyed by the $schema value without scheme and "#".
_DRAFTS: dict[str, str] = {
    "json-schema.org/draft-04/schema": "http://json-schema.org/draft-04/schema#",
    "json-schema.org/draft-06/schema": "http://json-schema.org/draft-06/schema#",
    "json-schema.org/draft-07/schema": "http://json-schema.org/draft-07/schema#",
    "json-schema.org/draft/2019-09/schema": "https://json-schema.org/draft/2019-09/schema",
    "json-schema.org/draft/2020-12/schema": "https://json-schema.org/draft/2020-12/schema",
}
DEFAULT_DRAFT = "https://json-schema.org/draft/2020-12/schema"


def pointer(parts: list[str | int]) -> str:
    """RFC 6901: the root is "", every token escaped ("~" -> "~0", "/" -> "~1")."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _message(error: jsonschema_rs.ValidationError, path: str) -> str:
    kind = error.kind
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
        return f"{kind.property} is required"
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Type):
        return f"{path or 'value'} must be {' or '.join(kind.types)}"
    return error.message


def field_errors(errors: Any) -> list[FieldError]:
    """jsonschema-rs errors as API errors, sorted by path (then message)."""
    out = []
    for error in errors:
        path = pointer(error.instance_path)
        out.append(FieldError(path, _message(error, path)))
    return sorted(out, key=lambda e: (e.path, e.message))


def meta_schema_uri(schema: dict[str, Any]) -> str | None:
    """The draft's meta-schema for a document (2020-12 without ``$schema``); None if unknown."""
    declared = schema.get("$schema")
    if declared is None:
        return DEFAULT_DRAFT
    if not isinstance(declared, str):
        return None
    key = declared.split("://", 1)[-1].rstrip("#")
    return _DRAFTS.get(key)


def _compile(schema: Any) -> jsonschema_rs.Validator:
    return jsonschema_rs.validator_for(schema, validate_formats=True, offline=True)


class JsonSchemaValidator:
    """Implements ``commands.ports.SchemaValidator``."""

    def __init__(self, cache_size: int = 1024) -> None:
        self._cache: OrderedDict[str, jsonschema_rs.Validator] = OrderedDict()
        self._cache_size = cache_size
        self._meta: dict[str, jsonschema_rs.Validator] = {}
        self._lock = threading.Lock()

    def _meta_validator(self, uri: str) -> jsonschema_rs.Validator:
        validator = self._meta.get(uri)
        if validator is None:
            validator = _compile({"$schema": uri, "$ref": uri})
            self._meta[uri] = validator
        return validator

    def check_schema(self, schema: dict[str, Any]) -> list[FieldError]:
        """Errors of the document against its draft's meta-schema, paths inside the document.

        A document the meta-schema accepts can still fail to compile (an
        unresolvable or remote ``$ref``, a regex jsonschema-rs rejects): that
        is reported too, since it could never validate anything.
        """
        if not isinstance(schema, dict):
            return [FieldError("", "a JSON Schema must be an object")]
        uri = meta_schema_uri(schema)
        if uri is None:
            return [FieldError("/$schema", "must be the URI of JSON Schema draft 4, 6, 7, 2019-09 or 2020-12")]
        errors = field_errors(self._meta_validator(uri).iter_errors(schema))
        if errors:
            return errors
        try:
            _compile(schema)
        except jsonschema_rs.ValidationError as exc:
            return [FieldError(pointer(exc.instance_path), exc.message.splitlines()[0])]
        except (jsonschema_rs.ReferencingError, ValueError) as exc:
            return [FieldError("", str(exc).splitlines()[0])]
        return []

    def _validator(self, schema_key: str, schema: dict[str, Any]) -> jsonschema_rs.Validator:
        with self._lock:
            validator = self._cache.get(schema_key)
            if validator is not None:
                self._cache.move_to_end(schema_key)
                return validator
        validator = _compile(schema)
        with self._lock:
            self._cache[schema_key] = validator
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return validator

    def validate(self, schema_key: str, schema: dict[str, Any], data: Any) -> list[FieldError]:
        """Every error of ``data``; ``schema_key`` must name one immutable schema (``name@version``).

        A schema that cannot compile (registration refuses those) fails every
        document with one root error rather than with an exception.
        """
        try:
            validator = self._validator(schema_key, schema)
        except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError) as exc:
            return [FieldError("", f"schema {schema_key} cannot be used: {str(exc).splitlines()[0]}")]
        return field_errors(validator.iter_errors(data))
