"""Routes as data, and the request/answer helpers every route shares.

Each route is declared once as an ``Operation`` (method, path, models,
statuses); the same declarations install the aiohttp routes and generate
``/openapi.json``, so the document cannot drift from the code. Cross-cutting
rules of API.md (JSON bodies, unknown fields, ``Idempotency-Key``,
``X-Position``, ``ETag``/``If-Match``, read-your-writes, paging) live here once.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from adapters.http.errors import BadRequest, Unauthorized
from adapters.http.json_depth import nests_deeper_than
from commands.authorization import ensure_same_user
from commands.repository import Context
from domain.errors import MAX_LISTED_ERRORS, FieldError, PreconditionFailed
from domain.ids import new_id
from domain.limits import MAX_JSON_DEPTH

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
M = TypeVar("M", bound=BaseModel)

ACTOR_KEY: web.RequestKey[str] = web.RequestKey("actor", str)
TRACEPARENT_KEY: web.RequestKey[str | None] = web.RequestKey("traceparent", object)  # type: ignore[arg-type]
BODY_DIGEST_KEY: web.RequestKey[str] = web.RequestKey("body_digest", str)


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    auth: bool = True
    query: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    produces: tuple[str, ...] = ("application/json",)
    description: str = ""

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


@dataclass
class Api:
    operations: list[Operation] = field(default_factory=list)

    def add(self, op: Operation) -> None:
        self.operations.append(op)

    def operation(self, method: str, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add(Operation(method=method, path=path, handler=handler, **kwargs))
            return handler

        return register

    def install(self, app: web.Application) -> None:
        for op in self.operations:
            app.router.add_route(op.method, op.path, op.handler, name=op.operation_id)

    def find(self, method: str, route_path: str) -> Operation | None:
        for op in self.operations:
            if op.method == method and op.path == route_path:
                return op
        return None


# -- requests ------------------------------------------------------------------


async def read_json(request: web.Request) -> Any:
    """The body as JSON: absent, nested deeper than ``MAX_JSON_DEPTH`` or malformed → 400.

    The depth is checked here, once for every route, on the bytes and before
    parsing: no code ever walks a value nested deeper, and a deep body is
    refused without building it (parsing 1 MiB of nested arrays takes orjson
    about ten times as long as measuring it; see ``adapters.http.json_depth``).
    """
    raw = await request.read()
    if not raw:
        raise BadRequest("a JSON body is required")
    request[BODY_DIGEST_KEY] = hashlib.sha256(raw).hexdigest()
    if nests_deeper_than(raw, MAX_JSON_DEPTH):
        raise BadRequest(f"JSON nested deeper than {MAX_JSON_DEPTH} levels (objects and arrays inside each other)")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc}") from exc


def _pointer(loc: Iterable[Any]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in loc)


def pydantic_errors(exc: ValidationError) -> list[FieldError]:
    """The body's structural errors, sorted by path; past ``MAX_LISTED_ERRORS`` only their number.

    ``exc.errors()`` builds a dict per error: for 100,000 unknown keys in a
    1 MiB body that alone held the loop for a fifth of a second, and the request
    models' lists fail fast (``Field(fail_fast=True)``: the first wrong item only)
    for the same reason.
    """
    count = exc.error_count()
    if count > MAX_LISTED_ERRORS:
        return [FieldError("", f"{count} errors; too many to list (an answer lists at most {MAX_LISTED_ERRORS})")]
    out = []
    for err in exc.errors(include_url=False):
        loc = [p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
        path = _pointer(loc)
        if err["type"] == "extra_forbidden":
            message = f"{loc[-1]} is not allowed"
        elif err["type"] == "missing":
            message = f"{loc[-1]} is required"
            path = _pointer(loc[:-1])
        else:
            message = err["msg"]
        out.append(FieldError(path, message))
    return sorted(out, key=lambda e: (e.path, e.message))


async def read_body(request: web.Request, model: type[M]) -> M:
    """The body as ``model``: malformed JSON, wrong types, unknown fields → 400."""
    data = await read_json(request)
    try:
        body = model.model_validate(data)
    except ValidationError as exc:
        errors = pydantic_errors(exc)
        summary = "; ".join(f"{e.path or '/'}: {e.message}" for e in errors[:5])
        raise BadRequest(summary, errors) from exc
    ensure_same_user(actor_or_none(request), getattr(body, "user_id", None))
    return body


def read_query(request: web.Request, model: type[M]) -> M:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        errors = pydantic_errors(exc)
        raise BadRequest("; ".join(f"{e.path}: {e.message}" for e in errors[:5]), errors) from exc


def actor_or_none(request: web.Request) -> str | None:
    return request.get(ACTOR_KEY)


def actor(request: web.Request) -> str:
    user = request.get(ACTOR_KEY)
    if not user:
        raise Unauthorized("authentication required")
    return user


def command_id(request: web.Request) -> str:
    """The log's Msg-Id for this command.

    With an ``Idempotency-Key`` it is derived from the key, the acting user
    (or client address), the path and the body, so a retry lands once, two
    users' keys never collide, and a key reused with another body is another
    command (not a silent replay of the first answer); without a key every
    request is a new command.
    """
    key = request.headers.get("Idempotency-Key")
    if not key:
        return new_id()
    who = actor_or_none(request) or (request.remote or "anonymous")
    body = request.get(BODY_DIGEST_KEY, "")
    digest = hashlib.sha256(f"{who}\x00{request.method}\x00{request.path}\x00{key}\x00{body}".encode()).hexdigest()
    return f"idem-{digest[:40]}"


def context(request: web.Request) -> Context:
    return Context(actor=actor_or_none(request), command_id=command_id(request), traceparent=request.get(TRACEPARENT_KEY),
                   fresh=not request.headers.get("Idempotency-Key"))


_ENTITY_TAG = re.compile(r'(?:W/)?"([0-9]{1,18})"')


def if_match(request: web.Request) -> int | None:
    """``If-Match`` as an expected version (None when absent or ``*``).

    Every listed tag must be one of ours (``"N"``, ASCII digits: ``int()`` alone would read ``"1_0"`` as 10 or
    ``"٣"`` as 3). A command checks one expected version, so a list naming several different versions is refused
    rather than compared by its first entry only; the refusal changes nothing and says why.
    """
    fields = request.headers.getall("If-Match", [])
    if not fields:
        return None
    value = ", ".join(fields)  # repeated fields are one list (RFC 9110, 5.3)
    if value.strip() == "*":
        return None
    versions = set()
    for tag in value.split(","):
        found = _ENTITY_TAG.fullmatch(tag.strip())
        if found is None:
            raise PreconditionFailed(f"If-Match {value[:80]!r} does not match any version")
        versions.add(int(found.group(1)))
    if len(versions) != 1:
        raise PreconditionFailed(f"If-Match {value[:80]!r} names several versions; send the one you last read")
    return versions.pop()


def etag(version: int) -> str:
    return f'"{version}"'


# -- answers -------------------------------------------------------------------


def json_response(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json", headers=headers)


def _fields(doc: BaseModel | dict[str, Any]) -> dict[str, Any]:
    return doc.model_dump(mode="json", by_alias=True) if isinstance(doc, BaseModel) else doc


def command_answer(doc: BaseModel | dict[str, Any], position: int, status: int = 200, version: int | None = None,
                   **extra: Any) -> web.Response:
    """A command's answer: the document it changed, its log ``position`` in the body and ``X-Position``."""
    headers = {"X-Position": str(position)}
    if version is not None:
        headers["ETag"] = etag(version)
    return json_response({**_fields(doc), **extra, "position": position}, status, headers)


def resource_answer(doc: BaseModel | dict[str, Any], version: int | None = None) -> web.Response:
    """A query's answer: the document, with its version as ``ETag`` when it has one."""
    headers = {"ETag": etag(version)} if version is not None else None
    return json_response(_fields(doc), 200, headers)


def page_answer(items: list[BaseModel], next_cursor: str | None) -> web.Response:
    return json_response({"items": [_fields(i) for i in items], "next_cursor": next_cursor})
