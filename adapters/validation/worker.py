"""The validation worker: a child process that runs ``JsonSchemaValidator`` for the server.

Started by ``ValidatorPool`` as ``python -m adapters.validation.worker MEMORY_MIB``.
It caps its own address space (``RLIMIT_AS``) so a schema that compiles into
gigabytes kills this process, not the server, then answers requests one at a
time on stdin/stdout until stdin closes. The pool kills it when a request
overruns its budget: jsonschema-rs cannot be interrupted, a process can.

Wire format, both ways: frames of a 4-byte big-endian length and that many
bytes. A request is three frames: a JSON header ``{"op": "check" | "validate",
"key": ...}``, the schema's JSON, the data's JSON (empty for ``check``). An answer is one
JSON frame: ``{"errors": [[path, message], ...]}``, or ``{"failed": reason,
"errors": [...]}`` for a refusal (a schema that cannot be used), with
``"retire": true`` when this process should not be used again. Compiled
schemas are cached by key, as in the server before (the schema is still sent
and parsed each time: 2 ms for 1 MiB, off the server's loop). The first
frame the worker sends is ``{"ready": true}``, after its imports, so that
start-up is not charged to a request's budget.
"""

from __future__ import annotations

import os
import resource
import struct
import sys
import time
from typing import Any, BinaryIO

import orjson

from adapters.validation.json_schema import JsonSchemaValidator
from domain.errors import ValidationFailed

_LENGTH = struct.Struct(">I")


def read_frame(stream: BinaryIO) -> bytes | None:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    body = stream.read(size)
    if len(body) < size:
        return None
    return body


def frame(payload: bytes) -> bytes:
    return _LENGTH.pack(len(payload)) + payload


def _pairs(errors: Any) -> list[list[str]]:
    return [[e.path, e.message] for e in errors]


def answer(validator: JsonSchemaValidator, header: dict[str, Any], schema_json: bytes, data_json: bytes) -> dict[str, Any]:
    key = header.get("key")
    try:
        if header["op"] == "check":
            return {"errors": _pairs(validator.check_schema(orjson.loads(schema_json)))}
        return {"errors": _pairs(validator.validate(key, orjson.loads(schema_json), orjson.loads(data_json)))}
    except ValidationFailed as exc:
        return {"failed": exc.reason, "errors": _pairs(exc.errors)}
    except orjson.JSONDecodeError as exc:
        return {"failed": f"the document cannot be read: {exc}", "errors": []}
    except (TypeError, ValueError) as exc:  # jsonschema-rs refusing a value, e.g. "Recursion limit reached"
        return {"failed": f"the document cannot be validated: {exc}", "errors": []}
    except MemoryError:
        return {"failed": "validation needed more memory than a validation may use", "errors": [], "retire": True}
    except RecursionError:
        return {"failed": "the schema or the document is nested too deeply to validate", "errors": [], "retire": True}


def serve(memory_mib: int) -> None:
    if memory_mib > 0:
        limit = memory_mib * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # The protocol owns the real stdout; anything a library prints goes to stderr instead.
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    stdin = sys.stdin.buffer
    validator = JsonSchemaValidator(cache_size=256)
    out.write(frame(orjson.dumps({"ready": True})))
    out.flush()
    while True:
        header_json = read_frame(stdin)
        schema_json = read_frame(stdin) if header_json is not None else None
        data_json = read_frame(stdin) if schema_json is not None else None
        if data_json is None:
            return
        began = time.process_time()
        reply = answer(validator, orjson.loads(header_json), schema_json, data_json)  # type: ignore[arg-type]
        reply["ms"] = (time.process_time() - began) * 1000  # charged to the request that asked
        out.write(frame(orjson.dumps(reply)))
        out.flush()
        if reply.get("retire"):
            return


if __name__ == "__main__":
    serve(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
