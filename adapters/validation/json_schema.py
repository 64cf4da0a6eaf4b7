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
  others are jsonschema-rs's own, cut to ``MAX_MESSAGE_CHARS`` (they quote the
  value, which may be a megabyte). At most ``MAX_LISTED_ERRORS`` are listed:
  the first ones by path, after a root note that says how many there were.
* Patterns (``pattern``, ``patternProperties``, ``propertyNames`` with a
  ``pattern``, at any depth, through any ``$ref``) run on Rust's ``regex``
  engine, which matches in time linear in the input: a pattern cannot be
  catastrophic. jsonschema-rs's default engine (fancy-regex) backtracks for
  look-around and back-references: ``^((a)\\2?)*b`` took 41 ms per 26-byte
  string, so a 9 KB document of such strings froze the server for 23 s, and its
  backtrack limit bounds one match, not a document (25 ms per string at the
  default limit). Look-around and back-references are therefore refused, at
  registration with the pattern's path and the reason, and a schema already
  in the log that uses them fails validation with that reason (422). One
  compiled pattern may take ``PATTERN_SIZE_LIMIT`` bytes. ``format: regex``
  only checks that a string is a regex (it never runs it). Figures and the
  other options measured: docs/benchmarks.md, "Validation".

This class is synchronous and unbounded: the server runs it in worker
processes with a time budget (``adapters/validation/pool.py``), since
jsonschema-rs holds the GIL and other keywords (a ``$ref`` fan-out, a huge
``enum``) can be expensive with no regex at all.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from typing import Any

import jsonschema_rs

from domain.errors import FieldError, ValidationFailed, listed

PATTERN_SIZE_LIMIT = 1 << 20
"""Bytes one compiled pattern may take (the ``regex`` crate's default is 10 MiB)."""
PATTERN_OPTIONS = jsonschema_rs.RegexOptions(size_limit=PATTERN_SIZE_LIMIT)
MAX_MESSAGE_CHARS = 300

# Syntax only a backtracking engine runs: look-ahead/behind, back-references by number or name.
_BACKTRACKING_SYNTAX = re.compile(r"(?<!\\)\(\?<?[=!]|\\[1-9]|\\k<")

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


def _cut(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 1] + "…"


def _message(error: jsonschema_rs.ValidationError, path: str) -> str:
    kind = error.kind
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Required):
        return _cut(f"{kind.property} is required")
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Type):
        return f"{path or 'value'} must be {' or '.join(kind.types)}"
    return _cut(error.message)


def field_errors(errors: Any) -> list[FieldError]:
    """jsonschema-rs errors as API errors, sorted by path (then message), at most ``MAX_LISTED_ERRORS``.

    Beyond that a list only costs (each error is parsed, sorted and sent by
    the server, and read by nobody), so the first ones by path are kept and a
    root note says how many there were.
    """
    out = []
    for error in errors:
        path = pointer(error.instance_path)
        out.append(FieldError(path, _message(error, path)))
    return listed(out)


def pattern_problem(pattern: str) -> str:
    """Why ``pattern`` is refused, in words its author can act on."""

    def compiles(options: Any) -> bool:
        try:
            jsonschema_rs.validator_for({"pattern": pattern}, pattern_options=options)
        except jsonschema_rs.ValidationError:
            return False
        return True

    too_large = f"is too large once compiled (a pattern may take {PATTERN_SIZE_LIMIT / (1 << 20):g} MiB)"
    if compiles(jsonschema_rs.RegexOptions()):
        return too_large
    if compiles(jsonschema_rs.FancyRegexOptions()):
        if _BACKTRACKING_SYNTAX.search(pattern):
            return (
                "uses look-around or a back-reference, which only a backtracking engine runs; "
                "patterns here must match in linear time, so these are not supported"
            )
        return too_large
    return "is not a valid regular expression"


def _compile_problem(exc: jsonschema_rs.ValidationError) -> FieldError:
    """A schema that fails to compile: where, and why (a refused pattern says why it is refused)."""
    kind = exc.kind
    if isinstance(kind, jsonschema_rs.ValidationErrorKind.Format) and kind.format == "regex":
        return FieldError(pointer(exc.instance_path), f"pattern {_cut(repr(exc.instance))} {pattern_problem(str(exc.instance))}")
    return FieldError(pointer(exc.instance_path), exc.message.splitlines()[0])


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
    return jsonschema_rs.validator_for(schema, validate_formats=True, offline=True, pattern_options=PATTERN_OPTIONS)


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
        unresolvable or remote ``$ref``, a pattern the linear engine refuses):
        that is reported too, since it could never validate anything.
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
            return [_compile_problem(exc)]
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

        A schema that cannot compile raises ``ValidationFailed`` (422) saying
        why: registration refuses those, but the log may hold one registered
        under older rules (a look-around pattern), and its documents are
        neither valid nor invalid.
        """
        try:
            validator = self._validator(schema_key, schema)
        except jsonschema_rs.ValidationError as exc:
            problem = _compile_problem(exc)
            where = f" at {problem.path}" if problem.path else ""
            raise unusable(schema_key, f"{problem.message}{where}") from None
        except (jsonschema_rs.ReferencingError, ValueError) as exc:
            raise unusable(schema_key, str(exc).splitlines()[0]) from None
        if validator.is_valid(data):  # the common case, and it stops at the first failure
            return []
        return field_errors(validator.iter_errors(data))


def unusable(schema_key: str, reason: str) -> ValidationFailed:
    message = f"schema {schema_key} cannot be used: {reason}"
    return ValidationFailed(message, [FieldError("", message)])
