"""Patterns in user schemas: linear-time matching, refused backtracking syntax, bounded error lists.

Issue #9, defect 3: ``^((a)\\2?)*b`` took 23 s on a 9 KB document under
jsonschema-rs's default (backtracking) engine. These tests pin what replaced it.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from adapters.validation import JsonSchemaValidator
from adapters.validation.json_schema import MAX_MESSAGE_CHARS, PATTERN_SIZE_LIMIT, pattern_problem
from domain.errors import MAX_LISTED_ERRORS, FieldError, ValidationFailed

BACKREFERENCE = "^((a)\\2?)*b"
BACKTRACKING = [BACKREFERENCE, "^(?=.*[A-Z]).+$", "^(?!admin).*$", "(?<=x)y", "(?<!x)y", "(a)\\1"]
# Exponential for a backtracking engine on "aaaa…!", linear here.
NESTED = ["^(a+)+$", "^(a|aa)+$", "^(a|a?)+$", "^(\\w+\\s?)*$"]


@pytest.fixture(scope="module")
def validator() -> JsonSchemaValidator:
    return JsonSchemaValidator()


def wherever(pattern: str) -> dict[str, tuple[dict[str, Any], str]]:
    """The pattern in each keyword that runs one, and the path registration must name."""
    key = pattern.replace("~", "~0").replace("/", "~1")
    return {
        "pattern": ({"type": "object", "properties": {"x": {"type": "string", "pattern": pattern}}},
                    "/properties/x/pattern"),
        "patternProperties": ({"patternProperties": {pattern: {"type": "integer"}}}, f"/patternProperties/{key}"),
        "propertyNames": ({"propertyNames": {"pattern": pattern}}, "/propertyNames/pattern"),
        "behind a $ref": ({"$defs": {"p": {"pattern": pattern}}, "items": {"$ref": "#/$defs/p"}}, "/$defs/p/pattern"),
        "additionalProperties": ({"additionalProperties": {"patternProperties": {pattern: {}}}},
                                 f"/additionalProperties/patternProperties/{key}"),
    }  # fmt: skip


@pytest.mark.parametrize("pattern", BACKTRACKING)
@pytest.mark.parametrize("keyword", list(wherever("x")))
def test_look_around_and_back_references_are_refused_with_their_path(
    validator: JsonSchemaValidator, pattern: str, keyword: str
) -> None:
    schema, path = wherever(pattern)[keyword]
    errors = validator.check_schema(schema)
    assert [e.path for e in errors] == [path]
    assert "look-around or a back-reference" in errors[0].message and "linear time" in errors[0].message
    assert repr(pattern) in errors[0].message


@pytest.mark.parametrize("keyword", list(wherever("x")))
def test_a_schema_already_in_the_log_with_such_a_pattern_fails_every_validation_with_the_reason(
    validator: JsonSchemaValidator, keyword: str
) -> None:
    schema, path = wherever(BACKREFERENCE)[keyword]
    started = time.perf_counter()
    with pytest.raises(ValidationFailed) as refused:
        validator.validate(f"old-{keyword}@1.0.0", schema, {"x": "a" * 26, "a" * 26: 1})
    assert time.perf_counter() - started < 1  # it is not run at all
    detail = refused.value.reason
    assert detail.startswith(f"schema old-{keyword}@1.0.0 cannot be used: pattern ")
    assert detail.endswith(f" at {path}") and "look-around or a back-reference" in detail
    assert [e.path for e in refused.value.errors] == [""]


@pytest.mark.parametrize("pattern", NESTED)
def test_nested_quantifiers_match_correctly_in_linear_time(validator: JsonSchemaValidator, pattern: str) -> None:
    """Strings built to make a backtracking engine explode (2^40 paths each), in every keyword at once."""
    schema = {
        "type": "object",
        "properties": {"-items": {"type": "array", "items": {"type": "string", "pattern": pattern}}},
        "patternProperties": {pattern: {"type": "integer"}},
        "propertyNames": {"pattern": f"{pattern}|^-items$"},
    }
    assert validator.check_schema(schema) == []
    evil = "a" * 40 + "!"
    many: dict[str, Any] = {"-items": [evil] * 2_000, "a" * 30: 1}
    many.update({"a" * 40 + str(i) + "!": 0 for i in range(20)})
    started = time.perf_counter()
    errors = validator.validate(f"nested-{pattern}@1.0.0", schema, many)
    assert time.perf_counter() - started < 5  # generous: it takes milliseconds; backtracking, centuries
    # Every evil string fails `pattern` (2,000) and every evil key `propertyNames` (20): more than are listed.
    assert len(errors) == MAX_LISTED_ERRORS + 1
    assert FieldError("", f"2020 errors; only the first {MAX_LISTED_ERRORS} by path are listed") in errors
    # The first by path: the 20 keys (at the root, beside the note), then items in path order.
    assert [e.path for e in errors].count("") == 21
    assert [e.path for e in errors if e.path] == sorted(f"/-items/{i}" for i in range(2000))[:980]
    assert validator.validate(f"nested-{pattern}@1.0.0", schema, {"-items": ["aaaa"], "aaa": 3}) == []
    assert validator.validate(f"nested-{pattern}@1.0.0", schema, {"aaa": "x"}) == [
        FieldError("/aaa", "/aaa must be integer")
    ]


def test_patterns_keep_their_meaning(validator: JsonSchemaValidator) -> None:
    """Unanchored search, classes, Unicode, alternation, as JSON Schema (ECMA-262) defines them for these."""
    cases = [
        ("b", "abc", True), ("^b", "abc", False), ("^\\d{3}-\\d{4}$", "555-1234", True),
        ("^\\d{3}-\\d{4}$", "555-12345", False), ("^[a-z0-9_-]+$", "ok_name-1", True),
        ("^\\p{L}+$", "Éluard", True), ("^(?:cat|dog)s?$", "dogs", True), ("^(?:cat|dog)s?$", "cow", False),
        ("^(?<year>\\d{4})$", "2024", True),
    ]  # fmt: skip
    for pattern, text, matches in cases:
        assert validator.check_schema({"pattern": pattern}) == [], pattern
        assert (validator.validate(f"meaning-{pattern}@1.0.0", {"pattern": pattern}, text) == []) is matches, pattern


def test_reasons_for_refused_patterns() -> None:
    assert "look-around or a back-reference" in pattern_problem("^(?=a)")
    assert pattern_problem("([") == "is not a valid regular expression"
    assert pattern_problem("(\\w{1000}){100}") == f"is too large once compiled (a pattern may take {PATTERN_SIZE_LIMIT >> 20:g} MiB)"


def test_a_huge_pattern_is_refused_at_its_path(validator: JsonSchemaValidator) -> None:
    errors = validator.check_schema({"properties": {"x": {"pattern": "(\\w{1000}){100}"}}})
    assert [e.path for e in errors] == ["/properties/x/pattern"] and "too large once compiled" in errors[0].message


def test_format_regex_only_checks_syntax(validator: JsonSchemaValidator) -> None:
    """``format: regex`` on data never runs the data's regex, so it cannot be catastrophic (ECMA-262 syntax)."""
    schema = {"type": "array", "items": {"type": "string", "format": "regex"}}
    started = time.perf_counter()
    assert validator.validate("fmt@1.0.0", schema, [BACKREFERENCE, "(?=a)b", "(a{1000}){1000}"] * 5000) == []
    assert time.perf_counter() - started < 5
    assert [e.path for e in validator.validate("fmt@1.0.0", schema, ["ok", "(["])] == ["/1"]


def test_messages_quoting_a_huge_value_are_cut(validator: JsonSchemaValidator) -> None:
    errors = validator.validate("cut@1.0.0", {"pattern": "^b"}, "a" * 1_000_000)
    assert len(errors) == 1 and len(errors[0].message) == MAX_MESSAGE_CHARS and errors[0].message.endswith("…")
