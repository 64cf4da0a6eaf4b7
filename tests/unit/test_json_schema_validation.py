"""The jsonschema-rs validator: every error, at its JSON Pointer, in readable words."""

from __future__ import annotations

import socket
import threading
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.validation import JsonSchemaValidator
from adapters.validation.json_schema import pointer
from domain.errors import FieldError, ValidationFailed

BOOK = {
    "type": "object",
    "required": ["title", "chapters"],
    "properties": {
        "title": {"type": "string"},
        "year": {"type": "integer"},
        "chapters": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["title"],
                "properties": {"title": {"type": "string"}, "words": {"type": "integer"}},
            },
        },
    },
}

_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=4) | st.floats(allow_nan=False, allow_infinity=False)
_any = st.recursive(_scalars, lambda c: st.lists(c, max_size=2) | st.dictionaries(st.text(max_size=3), c, max_size=2), max_leaves=4)


def _is(kind: str, value: Any) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, float) and value.is_integer())
    if kind == "array":
        return isinstance(value, list)
    return isinstance(value, dict)


def wrong(kind: str) -> st.SearchStrategy[Any]:
    return _any.filter(lambda v: not _is(kind, v))


def field(kind: str, good: st.SearchStrategy[Any]) -> st.SearchStrategy[tuple[str, Any]]:
    """("ok", value), ("missing", None) or ("wrong", value of another type)."""
    return st.one_of(
        good.map(lambda v: ("ok", v)), st.just(("missing", None)), wrong(kind).map(lambda v: ("wrong", v))
    )


chapters = st.lists(
    st.one_of(
        st.tuples(field("string", st.text(max_size=5)), field("integer", st.integers(0, 9))),
        wrong("object").map(lambda v: ("not-object", v)),
    ),
    max_size=4,
)
documents = st.tuples(
    field("string", st.text(max_size=5)),
    field("integer", st.integers()),
    st.one_of(chapters.map(lambda c: ("ok", c)), st.just(("missing", None)), wrong("array").map(lambda v: ("wrong", v))),
)


def build(doc: tuple[Any, ...]) -> tuple[Any, list[FieldError]]:
    """The document and the errors it must produce, worked out independently of jsonschema-rs."""
    (title_state, title), (year_state, year), (chapters_state, chapter_specs) = doc
    data: dict[str, Any] = {}
    expected: list[FieldError] = []

    def put(container: dict[str, Any], at: str, name: str, kind: str, state: str, value: Any, required: bool) -> None:
        if state == "missing":
            if required:
                expected.append(FieldError(at, f"{name} is required"))
            return
        container[name] = value
        if state == "wrong":
            expected.append(FieldError(f"{at}/{name}", f"{at}/{name} must be {kind}"))

    put(data, "", "title", "string", title_state, title, True)
    put(data, "", "year", "integer", year_state, year, False)
    if chapters_state == "ok":
        items: list[Any] = []
        for n, spec in enumerate(chapter_specs):
            at = f"/chapters/{n}"
            if spec[0] == "not-object":
                items.append(spec[1])
                expected.append(FieldError(at, f"{at} must be object"))
                continue
            item: dict[str, Any] = {}
            (t_state, t), (w_state, w) = spec
            put(item, at, "title", "string", t_state, t, True)
            put(item, at, "words", "integer", w_state, w, False)
            items.append(item)
        data["chapters"] = items
    else:
        put(data, "", "chapters", "array", chapters_state, chapter_specs, True)
    return data, sorted(expected, key=lambda e: (e.path, e.message))


@pytest.fixture(scope="module")
def validator() -> JsonSchemaValidator:
    return JsonSchemaValidator()


@settings(max_examples=300, deadline=None)
@given(documents)
def test_every_error_is_reported_at_its_path(doc: tuple[Any, ...]) -> None:
    validator = JsonSchemaValidator()
    data, expected = build(doc)
    errors = validator.validate("book@1.0.0", BOOK, data)
    assert errors == expected
    assert errors == sorted(errors, key=lambda e: (e.path, e.message))
    for error in errors:
        if error.message.endswith(" is required"):
            name = error.message.removesuffix(" is required")
            assert isinstance(_resolve(data, error.path), dict) and name not in _resolve(data, error.path)
        else:
            assert error.message.startswith(error.path + " must be ")
            _resolve(data, error.path)  # the path names a value that exists


def _resolve(data: Any, path: str) -> Any:
    for token in path.split("/")[1:]:
        token = token.replace("~1", "/").replace("~0", "~")
        data = data[int(token)] if isinstance(data, list) else data[token]
    return data


def test_exact_messages(validator: JsonSchemaValidator) -> None:
    data = {"chapters": [{"title": "One"}, {"words": "many"}, "three"], "year": "1999"}
    assert validator.validate("book@1.0.0", BOOK, data) == [
        FieldError("", "title is required"),
        FieldError("/chapters/1", "title is required"),
        FieldError("/chapters/1/words", "/chapters/1/words must be integer"),
        FieldError("/chapters/2", "/chapters/2 must be object"),
        FieldError("/year", "/year must be integer"),
    ]
    assert validator.validate("book@1.0.0", BOOK, []) == [FieldError("", "value must be object")]
    assert validator.validate("book@1.0.0", BOOK, {"title": "T", "chapters": []}) == []


def test_other_keywords_keep_jsonschema_rs_messages_and_pointers_are_escaped(validator: JsonSchemaValidator) -> None:
    schema = {
        "type": "object",
        "properties": {"a/b~c": {"type": ["string", "null"]}, "n": {"minimum": 3}, "mail": {"format": "email"}},
        "additionalProperties": False,
    }
    errors = validator.validate("misc@1.0.0", schema, {"a/b~c": 1, "n": 1, "mail": "no", "extra": 0})
    assert [e.path for e in errors] == ["", "/a~1b~0c", "/mail", "/n"]
    assert errors[1].message == "/a~1b~0c must be null or string"
    assert "less than the minimum of 3" in errors[3].message
    assert "email" in errors[2].message
    assert pointer(["x", 0, "a/b"]) == "/x/0/a~1b"


def test_compiled_once_per_key(validator: JsonSchemaValidator) -> None:
    strict = {"type": "string"}
    assert validator.validate("cache@1.0.0", strict, 1) != []
    # The same key is the same (immutable) version: the first compilation is reused.
    assert validator.validate("cache@1.0.0", {"type": "integer"}, 1) != []
    small = JsonSchemaValidator(cache_size=1)
    small.validate("a@1.0.0", strict, "x")
    small.validate("b@1.0.0", {"type": "integer"}, 1)
    assert small.validate("a@1.0.0", {"type": "integer"}, "x") != []  # evicted, recompiled


@pytest.mark.parametrize(
    "uri",
    ["http://json-schema.org/draft-04/schema#", "http://json-schema.org/draft-06/schema#",
     "http://json-schema.org/draft-07/schema#", "https://json-schema.org/draft/2019-09/schema",
     "https://json-schema.org/draft/2020-12/schema", None],
)  # fmt: skip
def test_check_schema_per_draft(validator: JsonSchemaValidator, uri: str | None) -> None:
    good: dict[str, Any] = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    bad: dict[str, Any] = {"type": "object", "properties": {"a": {"type": "text"}}, "minimum": "1"}
    if uri is not None:
        good["$schema"] = bad["$schema"] = uri
    assert validator.check_schema(good) == []
    assert [e.path for e in validator.check_schema(bad)] == ["/minimum", "/properties/a/type"]


def test_draft4_rules_apply_to_draft4_documents(validator: JsonSchemaValidator) -> None:
    draft4 = {"$schema": "http://json-schema.org/draft-04/schema#", "exclusiveMinimum": True}
    assert validator.check_schema(draft4) != []  # draft 4: exclusiveMinimum needs minimum
    assert validator.check_schema({"exclusiveMinimum": 3}) == []  # 2020-12: a number


def test_unknown_meta_schema_and_non_objects_are_refused(validator: JsonSchemaValidator) -> None:
    assert validator.check_schema({"$schema": "http://example.com/my-meta"})[0].path == "/$schema"
    assert validator.check_schema({"$schema": 4})[0].path == "/$schema"
    assert validator.check_schema([]) == [FieldError("", "a JSON Schema must be an object")]  # type: ignore[arg-type]
    assert validator.check_schema({"pattern": "(["})[0].path == "/pattern"
    assert validator.check_schema({"$ref": "#/$defs/missing"}) != []


def test_remote_and_file_refs_are_refused_without_touching_the_network(validator: JsonSchemaValidator) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    connections: list[Any] = []

    def accept() -> None:
        try:
            connections.append(listener.accept())
        except OSError:
            pass

    thread = threading.Thread(target=accept)
    thread.start()
    try:
        remote = {"type": "object", "properties": {"a": {"$ref": f"http://127.0.0.1:{port}/a.json"}}}
        errors = validator.check_schema(remote)
        assert len(errors) == 1 and "Retrieval is disabled" in errors[0].message
        assert "Retrieval is disabled" in validator.check_schema({"$ref": "file:///etc/passwd"})[0].message
        with pytest.raises(ValidationFailed, match="schema remote@1.0.0 cannot be used: .*Retrieval is disabled"):
            validator.validate("remote@1.0.0", remote, {"a": 1})
        meta = {"$schema": f"http://127.0.0.1:{port}/meta"}
        assert validator.check_schema(meta)[0].path == "/$schema"
    finally:
        thread.join()
        listener.close()
    assert connections == []
