"""An async client for the inkstream v1 HTTP contract (``docs/api.md``, served as ``/openapi.json``).

Typed with the server's own pydantic answer models; errors are raised as one
exception class per problem ``code`` (:mod:`adapters.client.errors`).

Delivery guarantees
-------------------
* Every ``POST`` carries an ``Idempotency-Key`` (a fresh uuid4 per call unless
  ``idempotency_key=`` is given). On a 503 or a transport failure (connection
  refused or dropped, timeout) the *same* request is sent again with the *same*
  key, so a retried command lands exactly once.
* ``PUT``/``PATCH``/``DELETE`` are retried the same way. Given ``if_match=`` a
  retry whose first attempt did land fails with 412 instead of applying twice;
  without ``if_match`` a retried non-POST is **at-least-once** (a PUT of the same
  data is harmless; a DELETE retried after it landed answers 404).
* ``GET`` is retried the same way (it changes nothing).
* 429 is not retried unless the client was built with ``retry_rate_limited=True``.
* Waits grow exponentially from ``backoff`` (capped at ``max_backoff``, with
  jitter) and are never shorter than the server's ``Retry-After``, which is
  itself capped at ``max_retry_after``. ``retries`` counts retries, so a call
  makes at most ``retries + 1`` attempts; then the last error is raised
  (:class:`UnavailableError` for a 503 or when no answer came).

Read-your-writes
----------------
The client remembers the highest log ``position`` it has seen in a command's
answer (``X-Position``) as ``last_position`` and sends it as ``min_position``
on every query, so it reads its own writes even through another API node.
``consistency="eventual"`` (per call, or as the client's default) answers at
once instead; ``consistency="strong"`` sends no ``min_position`` and lets the
server wait for the log's head (every write anyone made before the query).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar
from urllib.parse import quote

import aiohttp
import orjson
from multidict import CIMultiDictProxy
from pydantic import BaseModel

from adapters.client.errors import InkstreamError, UnavailableError, error_from_answer
from adapters.client.live import LiveEvent, subscribe
from adapters.http.models import HealthOut, LoginOut, ReadyOut, RegisterOut
from adapters.http.models_books import (
    BookChanged,
    BookDeleted,
    BookPage,
    ChapterChanged,
    ChapterRemoved,
)
from adapters.http.models_jobs import (
    BulkRetryOut,
    JobChanged,
    JobPage,
    ProcessorChanged,
    ProcessorDeleted,
    ProcessorPage,
)
from adapters.http.models_migrations import MigrationChanged, MigrationPage
from adapters.http.models_content import (
    BlobChanged,
    BlobDeleted,
    BlobPage,
    BucketChanged,
    BucketDeleted,
    BucketPage,
    HistoryOut,
    SchemaCreated,
    SchemaPage,
    ValidateOut,
)
from projections.documents import (
    BlobOut,
    BookOut,
    BucketOut,
    JobOut,
    MigrationOut,
    ProcessorOut,
    SchemaOut,
    UserOut,
)

__all__ = ["InkstreamClient", "UNSET", "Consistency", "ExportFormat", "FINISHED", "MIGRATION_FINISHED"]

log = logging.getLogger("inkstream.client")

Consistency = Literal["eventual", "strong"]
#: The statuses a job ends in.
FINISHED: Final = frozenset({"completed", "failed", "cancelled"})
#: The statuses a migration run ends in (a revert included).
MIGRATION_FINISHED: Final = frozenset({"completed", "failed", "reverted"})
ExportFormat = Literal["text", "markdown", "html", "epub"]
M = TypeVar("M", bound=BaseModel)

#: Transport failures after which the same request is sent again.
RETRYABLE_ERRORS: Final = (
    aiohttp.ClientConnectionError,  # includes ServerDisconnectedError, ClientConnectorError, ServerTimeoutError
    aiohttp.ClientPayloadError,  # the connection dropped in the middle of the answer
    asyncio.TimeoutError,
)


class _Unset:
    """The sentinel type of ``UNSET``: "not given", as opposed to ``None``."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = _Unset()


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None


def _if_match(value: int | str | None) -> str | None:
    """``If-Match``: a resource ``version`` (int) becomes its ETag ``"N"``; a string is sent as given."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError("if_match must be a version (int) or an ETag (str)")
    return f'"{value}"' if isinstance(value, int) else value


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


class InkstreamClient:
    """``async with InkstreamClient("http://localhost:8000") as ink: ...``

    ``token``: a JWT to send as ``Authorization: Bearer``; ``register`` and
    ``login`` store the one they get. ``session``: an ``aiohttp.ClientSession``
    to use (the client does not close it); without one the client opens and
    closes its own. ``timeout``: seconds per attempt.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        session: aiohttp.ClientSession | None = None,
        retries: int = 5,
        backoff: float = 0.2,
        timeout: float = 10,
        max_backoff: float = 5.0,
        max_retry_after: float = 30.0,
        retry_rate_limited: bool = False,
        consistency: Consistency | None = None,
    ) -> None:
        if retries < 0:
            raise ValueError("retries must be >= 0")
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self.max_backoff = max_backoff
        self.max_retry_after = max_retry_after
        self.retry_rate_limited = retry_rate_limited
        self.consistency: Consistency | None = consistency
        self.last_position: int | None = None
        self.user_id: str | None = None
        self._session = session
        self._owns_session = session is None

    # -- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> InkstreamClient:
        self._ensure_session()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or (self._owns_session and self._session.closed):
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    def session(self) -> aiohttp.ClientSession:
        """The HTTP session calls (and live subscriptions) go through."""
        return self._ensure_session()

    def backoff_delay(self, attempt: int, retry_after: float | None = None) -> float:
        """The wait before retry number ``attempt`` (from 0), as the module docstring says."""
        return self._delay(attempt, retry_after)

    def observe_position(self, position: int | None) -> None:
        """Raise ``last_position`` to ``position`` (never lowers it)."""
        if position is not None and (self.last_position is None or position > self.last_position):
            self.last_position = position

    # -- the one request path ------------------------------------------------------------

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        delay = min(self.max_backoff, self.backoff * (2**attempt)) * random.uniform(0.5, 1.0)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        return delay

    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: Any = UNSET,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        if_match: int | str | None = None,
        query: bool = False,
        consistency: Consistency | None = None,
        accept: tuple[int, ...] = (),
    ) -> _Answer:
        """Send one call, retrying as the module docstring says; 2xx (or ``accept``) → the answer, else raise."""
        session = self._ensure_session()
        headers: dict[str, str] = {"Accept": "application/json, application/problem+json;q=0.9, */*;q=0.5"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data: bytes | None = None
        if body is not UNSET:
            data = orjson.dumps(body)
            headers["Content-Type"] = "application/json"
        if method == "POST":
            headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
        elif idempotency_key is not None:
            raise ValueError("idempotency_key is only meaningful on POST")
        tag = _if_match(if_match)
        if tag is not None:
            headers["If-Match"] = tag
        query_params = {k: str(v) for k, v in _drop_none(params or {}).items()}
        if query:
            mode = consistency or self.consistency
            if mode is not None:
                query_params["consistency"] = mode
            if mode is None and self.last_position is not None:
                query_params["min_position"] = str(self.last_position)
        url = self.base_url + path
        timeout = aiohttp.ClientTimeout(total=self.timeout)

        attempt = 0
        while True:
            try:
                async with session.request(
                    method, url, data=data, params=query_params or None, headers=headers, timeout=timeout
                ) as response:
                    answer = _Answer(response.status, response.headers, await response.read())
            except RETRYABLE_ERRORS as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if attempt >= self.retries:
                    raise UnavailableError(
                        f"unavailable: {method} {path} got no answer after {attempt + 1} attempt(s) ({reason})",
                        status=None,
                    ) from exc
                delay = self._delay(attempt, None)
                log.debug("inkstream.retry method=%s path=%s attempt=%d reason=%s delay=%.3f",
                          method, path, attempt + 1, reason, delay)
            else:
                if 200 <= answer.status < 300 or answer.status in accept:
                    if 200 <= answer.status < 300 and method != "GET":
                        self._observe(answer)
                    return answer
                error = error_from_answer(answer.status, answer.headers, answer.body)
                retryable = answer.status == 503 or (answer.status == 429 and self.retry_rate_limited)
                if not retryable or attempt >= self.retries:
                    raise error
                delay = self._delay(attempt, error.retry_after)
                log.debug("inkstream.retry method=%s path=%s attempt=%d status=%d delay=%.3f",
                          method, path, attempt + 1, answer.status, delay)
            attempt += 1
            await asyncio.sleep(delay)

    def _observe(self, answer: _Answer) -> None:
        raw = answer.headers.get("X-Position")
        position: int | None = None
        if raw is not None:
            try:
                position = int(raw)
            except ValueError:
                position = None
        if position is None and answer.body[:1] == b"{":
            try:
                value = orjson.loads(answer.body).get("position")
            except orjson.JSONDecodeError:
                value = None
            position = value if isinstance(value, int) else None
        self.observe_position(position)

    async def _model(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        return model.model_validate((await self._send(method, path, **kwargs)).json())

    async def _get(self, model: type[M], path: str, consistency: Consistency | None, **params: Any) -> M:
        return await self._model(model, "GET", path, params=params, query=True, consistency=consistency)

    # -- operations -------------------------------------------------------------------------

    async def health(self) -> HealthOut:
        """``GET /health``: 200 healthy or 503 unhealthy, both returned (a 503 is an answer here, not retried)."""
        return await self._model(HealthOut, "GET", "/health", accept=(503,))

    async def ready(self) -> ReadyOut:
        """``GET /ready``: ``ready`` is false (503) until streams exist and projections caught up."""
        return await self._model(ReadyOut, "GET", "/ready", accept=(503,))

    # -- auth ---------------------------------------------------------------------------------

    async def register(self, email: str, password: str, username: str, *,
                       idempotency_key: str | None = None) -> RegisterOut:
        """Register a user and use its token from now on."""
        out = await self._model(RegisterOut, "POST", "/v1/auth/register", idempotency_key=idempotency_key,
                                body={"email": email, "password": password, "username": username})
        self.token, self.user_id = out.token, out.user_id
        return out

    async def login(self, email: str, password: str, *, idempotency_key: str | None = None) -> LoginOut:
        """Log in and use the token from now on."""
        out = await self._model(LoginOut, "POST", "/v1/auth/login", idempotency_key=idempotency_key,
                                body={"email": email, "password": password})
        self.token, self.user_id = out.token, out.user_id
        return out

    async def me(self, *, consistency: Consistency | None = None) -> UserOut:
        return await self._get(UserOut, "/v1/auth/me", consistency)

    # -- schemas --------------------------------------------------------------------------------

    async def register_schema(self, name: str, version: str, schema: dict[str, Any],
                              migration: dict[str, Any] | None = None, *,
                              idempotency_key: str | None = None) -> SchemaCreated:
        """``migration``: ``{"from_version": ..., "transform": "function migrate(data) {...}"}``."""
        body = _drop_none({"name": name, "version": version, "schema": schema, "migration": migration})
        return await self._model(SchemaCreated, "POST", "/v1/schemas", body=body, idempotency_key=idempotency_key)

    async def get_schema(self, schema_id: str, *, consistency: Consistency | None = None) -> SchemaOut:
        """``schema_id``: ``name@version``, or a bare name for its latest version."""
        return await self._get(SchemaOut, f"/v1/schemas/{_seg(schema_id)}", consistency)

    async def list_schema_versions(self, name: str, *, limit: int | None = None, cursor: str | None = None,
                                   consistency: Consistency | None = None) -> SchemaPage:
        """The versions of ``name``, newest first."""
        return await self._get(SchemaPage, "/v1/schemas", consistency, name=name, limit=limit, cursor=cursor)

    async def validate(self, schema_id: str, data: Any, *, idempotency_key: str | None = None) -> ValidateOut:
        return await self._model(ValidateOut, "POST", f"/v1/schemas/{_seg(schema_id)}/validate",
                                 body={"data": data}, idempotency_key=idempotency_key)

    # -- buckets ----------------------------------------------------------------------------------

    async def create_bucket(self, name: str, type: str, parent_id: str | None = None, *,  # noqa: A002
                            idempotency_key: str | None = None) -> BucketChanged:
        body = _drop_none({"name": name, "type": type, "parent_id": parent_id})
        return await self._model(BucketChanged, "POST", "/v1/buckets", body=body, idempotency_key=idempotency_key)

    async def get_bucket(self, bucket_id: str, *, consistency: Consistency | None = None) -> BucketOut:
        return await self._get(BucketOut, f"/v1/buckets/{_seg(bucket_id)}", consistency)

    async def list_buckets(self, parent_id: str | None = None, *, limit: int | None = None,
                           cursor: str | None = None, consistency: Consistency | None = None) -> BucketPage:
        """The children of ``parent_id``; without it, your root buckets. Oldest first."""
        return await self._get(BucketPage, "/v1/buckets", consistency, parent_id=parent_id, limit=limit,
                               cursor=cursor)

    async def update_bucket(self, bucket_id: str, *, name: str | None = None,
                            parent_id: str | None | _Unset = UNSET,
                            if_match: int | str | None = None) -> BucketChanged:
        """Rename and/or move. ``parent_id=None`` moves the bucket to the root; leaving it out keeps it."""
        body: dict[str, Any] = _drop_none({"name": name})
        if not isinstance(parent_id, _Unset):
            body["parent_id"] = parent_id
        return await self._model(BucketChanged, "PATCH", f"/v1/buckets/{_seg(bucket_id)}", body=body,
                                 if_match=if_match)

    async def delete_bucket(self, bucket_id: str, *, if_match: int | str | None = None) -> BucketDeleted:
        """Refused (409) while the bucket holds blobs or child buckets."""
        return await self._model(BucketDeleted, "DELETE", f"/v1/buckets/{_seg(bucket_id)}", if_match=if_match)

    # -- blobs --------------------------------------------------------------------------------------

    async def create_blob(self, data: Any, schema_id: str | None = None, processor_id: str | None = None,
                          bucket_ids: list[str] | None = None, *,
                          idempotency_key: str | None = None) -> BlobChanged:
        body = {"data": data, **_drop_none({"schema_id": schema_id, "processor_id": processor_id,
                                            "bucket_ids": bucket_ids})}
        return await self._model(BlobChanged, "POST", "/v1/blobs", body=body, idempotency_key=idempotency_key)

    async def get_blob(self, blob_id: str, as_of: int | None = None, *,
                       consistency: Consistency | None = None) -> BlobOut:
        """The blob, or with ``as_of`` (a log position) the blob as it was then."""
        return await self._get(BlobOut, f"/v1/blobs/{_seg(blob_id)}", consistency, as_of=as_of)

    async def list_blobs(self, bucket_id: str | None = None, schema_id: str | None = None, *,
                         limit: int | None = None, cursor: str | None = None,
                         consistency: Consistency | None = None) -> BlobPage:
        """Your blobs, oldest first; optionally only those in ``bucket_id`` and/or of ``schema_id``."""
        return await self._get(BlobPage, "/v1/blobs", consistency, bucket_id=bucket_id, schema_id=schema_id,
                               limit=limit, cursor=cursor)

    async def update_blob(self, blob_id: str, data: Any, *, if_match: int | str | None = None) -> BlobChanged:
        """Replace the blob's data (validated against its schema)."""
        return await self._model(BlobChanged, "PUT", f"/v1/blobs/{_seg(blob_id)}", body={"data": data},
                                 if_match=if_match)

    async def move_blob(self, blob_id: str, from_bucket_id: str, to_bucket_id: str, *,
                        if_match: int | str | None = None, idempotency_key: str | None = None) -> BlobChanged:
        return await self._model(BlobChanged, "POST", f"/v1/blobs/{_seg(blob_id)}/move",
                                 body={"from_bucket_id": from_bucket_id, "to_bucket_id": to_bucket_id},
                                 if_match=if_match, idempotency_key=idempotency_key)

    async def migrate_blob(self, blob_id: str, schema_id: str, *, if_match: int | str | None = None,
                           idempotency_key: str | None = None) -> BlobChanged:
        """Migrate the blob to another version of its schema; 422 when there is no path or the result is invalid."""
        return await self._model(BlobChanged, "POST", f"/v1/blobs/{_seg(blob_id)}/migrate",
                                 body={"schema_id": schema_id}, if_match=if_match, idempotency_key=idempotency_key)

    async def delete_blob(self, blob_id: str, *, if_match: int | str | None = None) -> BlobDeleted:
        return await self._model(BlobDeleted, "DELETE", f"/v1/blobs/{_seg(blob_id)}", if_match=if_match)

    async def blob_history(self, blob_id: str, *, limit: int | None = None, cursor: str | None = None,
                           consistency: Consistency | None = None) -> HistoryOut:
        """A page of the blob's events, read from the log, oldest first: ``limit`` (1-500, the
        server's default 50) events at most, fewer when their data would pass 2 MiB, and
        ``next_cursor`` for the next page (None on the last). Every event:
        ``ink.iter_pages(ink.blob_history, blob_id)``."""
        return await self._get(HistoryOut, f"/v1/blobs/{_seg(blob_id)}/history", consistency, limit=limit,
                               cursor=cursor)

    # -- books ------------------------------------------------------------------------------------------

    async def create_book(self, title: str, metadata: dict[str, Any] | None = None,
                          chapters: list[dict[str, Any]] | None = None, *,
                          idempotency_key: str | None = None) -> BookChanged:
        """``chapters``: ``[{"title": ..., "content": ...}]``, in order; all or nothing."""
        body = _drop_none({"title": title, "metadata": metadata, "chapters": chapters})
        return await self._model(BookChanged, "POST", "/v1/books", body=body, idempotency_key=idempotency_key)

    async def list_books(self, *, limit: int | None = None, cursor: str | None = None,
                         consistency: Consistency | None = None) -> BookPage:
        """Your books, oldest first (chapters without their contents)."""
        return await self._get(BookPage, "/v1/books", consistency, limit=limit, cursor=cursor)

    async def get_book(self, book_id: str, *, consistency: Consistency | None = None) -> BookOut:
        """The book with its chapters in order (``{id, title, order, content}``)."""
        return await self._get(BookOut, f"/v1/books/{_seg(book_id)}", consistency)

    async def update_book(self, book_id: str, *, title: str | None = None, metadata: dict[str, Any] | None = None,
                          if_match: int | str | None = None) -> BookChanged:
        """Retitle and/or replace the whole metadata object (None keeps either)."""
        return await self._model(BookChanged, "PATCH", f"/v1/books/{_seg(book_id)}",
                                 body=_drop_none({"title": title, "metadata": metadata}), if_match=if_match)

    async def delete_book(self, book_id: str, *, if_match: int | str | None = None) -> BookDeleted:
        return await self._model(BookDeleted, "DELETE", f"/v1/books/{_seg(book_id)}", if_match=if_match)

    async def add_chapter(self, book_id: str, title: str, content: str, order: int | None = None, *,
                          if_match: int | str | None = None, idempotency_key: str | None = None) -> ChapterChanged:
        """``order``: 1-based place to insert at; without it the chapter is appended.

        ``if_match`` is the *book's* version (``book_version`` of chapter answers).
        """
        body = _drop_none({"title": title, "content": content, "order": order})
        return await self._model(ChapterChanged, "POST", f"/v1/books/{_seg(book_id)}/chapters", body=body,
                                 if_match=if_match, idempotency_key=idempotency_key)

    async def update_chapter(self, book_id: str, chapter_id: str, *, title: str | None = None,
                             content: str | None = None, if_match: int | str | None = None) -> ChapterChanged:
        return await self._model(ChapterChanged, "PATCH", f"/v1/books/{_seg(book_id)}/chapters/{_seg(chapter_id)}",
                                 body=_drop_none({"title": title, "content": content}), if_match=if_match)

    async def delete_chapter(self, book_id: str, chapter_id: str, *,
                             if_match: int | str | None = None) -> ChapterRemoved:
        return await self._model(ChapterRemoved, "DELETE",
                                 f"/v1/books/{_seg(book_id)}/chapters/{_seg(chapter_id)}", if_match=if_match)

    async def reorder_chapters(self, book_id: str, chapter_ids: list[str], *, if_match: int | str | None = None,
                               idempotency_key: str | None = None) -> BookChanged:
        """``chapter_ids`` must be a permutation of the book's current chapters (else 422)."""
        return await self._model(BookChanged, "POST", f"/v1/books/{_seg(book_id)}/chapters/reorder",
                                 body={"chapter_ids": chapter_ids}, if_match=if_match,
                                 idempotency_key=idempotency_key)

    async def export_book(self, book_id: str, format: ExportFormat, *,  # noqa: A002
                          consistency: Consistency | None = None) -> bytes:
        """The exported file itself: ``text``, ``markdown``, ``html`` or ``epub``."""
        answer = await self._send("GET", f"/v1/books/{_seg(book_id)}/export", params={"format": format},
                                  query=True, consistency=consistency)
        return answer.body

    # -- processors ---------------------------------------------------------------------------------

    async def register_processor(self, name: str, type: str, config: dict[str, Any], *,  # noqa: A002
                                 input_schema: str | None = None, output_schema: str | None = None,
                                 triggers: list[dict[str, Any]] | None = None,
                                 limits: dict[str, int] | None = None,
                                 idempotency_key: str | None = None) -> ProcessorChanged:
        """``type``: ``text-expansion`` (config ``{model, prompt?}``) or ``js-transform`` (config ``{source}``
        defining ``function process(data)``). ``triggers``: ``[{"on": "blob.created" | "blob.updated",
        "bucket_id"?, "schema_id"?}]``; ``limits``: ``{timeout_seconds?, max_attempts?, max_memory_mb?}``."""
        body = {"name": name, "type": type, "config": config,
                **_drop_none({"input_schema": input_schema, "output_schema": output_schema, "triggers": triggers,
                              "limits": limits})}
        return await self._model(ProcessorChanged, "POST", "/v1/processors", body=body,
                                 idempotency_key=idempotency_key)

    async def list_processors(self, *, limit: int | None = None, cursor: str | None = None,
                              consistency: Consistency | None = None) -> ProcessorPage:
        """Your processors, oldest first."""
        return await self._get(ProcessorPage, "/v1/processors", consistency, limit=limit, cursor=cursor)

    async def get_processor(self, processor_id: str, *, consistency: Consistency | None = None) -> ProcessorOut:
        return await self._get(ProcessorOut, f"/v1/processors/{_seg(processor_id)}", consistency)

    async def update_processor(self, processor_id: str, *, config: dict[str, Any] | None = None,
                               triggers: list[dict[str, Any]] | None = None, limits: dict[str, int] | None = None,
                               if_match: int | str | None = None) -> ProcessorChanged:
        """Replace the config and/or the triggers, change some limits; ``version`` goes up by one."""
        body = _drop_none({"config": config, "triggers": triggers, "limits": limits})
        return await self._model(ProcessorChanged, "PATCH", f"/v1/processors/{_seg(processor_id)}", body=body,
                                 if_match=if_match)

    async def delete_processor(self, processor_id: str, *, if_match: int | str | None = None) -> ProcessorDeleted:
        """Its pending and running jobs are cancelled."""
        return await self._model(ProcessorDeleted, "DELETE", f"/v1/processors/{_seg(processor_id)}",
                                 if_match=if_match)

    # -- jobs -----------------------------------------------------------------------------------------

    async def request_job(self, processor_id: str, input_blob_id: str, *,
                          idempotency_key: str | None = None) -> JobChanged:
        """Run a processor on a blob: the job, ``pending`` (202). See ``wait_for_job``."""
        return await self._model(JobChanged, "POST", "/v1/jobs", idempotency_key=idempotency_key,
                                 body={"processor_id": processor_id, "input_blob_id": input_blob_id})

    async def get_job(self, job_id: str, *, consistency: Consistency | None = None) -> JobOut:
        return await self._get(JobOut, f"/v1/jobs/{_seg(job_id)}", consistency)

    async def list_jobs(self, processor_id: str | None = None, status: str | None = None, *,
                        limit: int | None = None, cursor: str | None = None,
                        consistency: Consistency | None = None) -> JobPage:
        """Your jobs, newest first; optionally of one processor and/or in one status."""
        return await self._get(JobPage, "/v1/jobs", consistency, processor_id=processor_id, status=status,
                               limit=limit, cursor=cursor)

    async def cancel_job(self, job_id: str, *, idempotency_key: str | None = None) -> JobChanged:
        """Cancel a pending or running job (a running one is stopped, its result discarded); 409 once finished."""
        return await self._model(JobChanged, "POST", f"/v1/jobs/{_seg(job_id)}/cancel",
                                 idempotency_key=idempotency_key)

    async def retry_job(self, job_id: str, *, idempotency_key: str | None = None) -> JobChanged:
        """A failed or cancelled job runs again (202, ``pending``); 409 otherwise."""
        return await self._model(JobChanged, "POST", f"/v1/jobs/{_seg(job_id)}/retry",
                                 idempotency_key=idempotency_key)

    async def retry_failed_jobs(self, processor_id: str, *, idempotency_key: str | None = None) -> BulkRetryOut:
        """Every failed job of the processor runs again; ``retried`` counts them."""
        return await self._model(BulkRetryOut, "POST", "/v1/jobs/retry", body={"processor_id": processor_id},
                                 idempotency_key=idempotency_key)

    async def wait_for_job(self, job_id: str, *, timeout: float = 60.0, live: bool = True,
                           interval: float = 0.05, max_interval: float = 1.0) -> JobOut:
        """The job once it has finished (``completed``, ``failed`` or ``cancelled``: check ``status``).

        Reads the job first (``consistency=strong``: found even when another client
        requested it); unless it has finished, follows the job's live updates (``/ws``,
        ``job.completed|failed|cancelled``) and reads it again once one arrives (``strong``:
        as of that event at least; an earlier run's failure of a retried job is read as the
        pending job it now is, and waited past). Without live updates (``live=False``, or when the
        connection fails again and again) it polls with a growing ``interval``. The client's
        read-your-writes position moves to the job's, so reading its output blob next sees
        it. Raises ``TimeoutError`` when the job has not finished within ``timeout``.
        """
        try:
            async with asyncio.timeout(timeout):
                job = await self._finished(job_id, live, interval, max_interval)
        except TimeoutError:
            raise TimeoutError(f"job {job_id} has not finished after {timeout:g} s") from None
        self.observe_position(job.position)  # the next reads see what the job made (its output blob)
        return job

    async def _finished(self, job_id: str, live: bool, interval: float, max_interval: float) -> JobOut:
        job = await self.get_job(job_id, consistency="strong")
        if job.status in FINISHED:
            return job
        if live:
            try:
                return await self._follow_job(job_id)
            except InkstreamError as exc:
                if exc.status is not None and exc.code != "unavailable":
                    raise
                log.debug("inkstream.wait_for_job live updates failed (%s); polling", exc)
        return await self._poll_job(job_id, interval, max_interval)

    async def _follow_job(self, job_id: str) -> JobOut:
        async with contextlib.aclosing(self.subscribe(job_id=job_id, since=0, max_reconnects=3)) as events:
            async for event in events:
                if event.type not in ("job.completed", "job.failed", "job.cancelled"):
                    continue
                job = await self.get_job(job_id, consistency="strong")  # the read model has the event
                if job.status in FINISHED:
                    return job
        raise InkstreamError(f"unavailable: the live updates of job {job_id} ended", status=None,
                             code="unavailable")

    async def _poll_job(self, job_id: str, interval: float, max_interval: float) -> JobOut:
        while True:
            job = await self.get_job(job_id, consistency="eventual")
            if job.status in FINISHED:
                return job
            await asyncio.sleep(interval)
            interval = min(interval * 1.5, max_interval)

    # -- migration runs ------------------------------------------------------------------------------

    async def request_migration(self, schema_id: str, from_version: str, *, bucket_id: str | None = None,
                                dry_run: bool = True, idempotency_key: str | None = None) -> MigrationChanged:
        """Move your blobs on ``name@from_version`` to ``schema_id`` (202, ``pending``); dry by default.
        See ``wait_for_migration``."""
        body = _drop_none({"schema_id": schema_id, "from_version": from_version, "bucket_id": bucket_id})
        body["dry_run"] = dry_run
        return await self._model(MigrationChanged, "POST", "/v1/migrations", body=body,
                                 idempotency_key=idempotency_key)

    async def get_migration(self, migration_id: str, *, consistency: Consistency | None = None) -> MigrationOut:
        return await self._get(MigrationOut, f"/v1/migrations/{_seg(migration_id)}", consistency)

    async def list_migrations(self, *, limit: int | None = None, cursor: str | None = None,
                              consistency: Consistency | None = None) -> MigrationPage:
        """Your migration runs, newest first."""
        return await self._get(MigrationPage, "/v1/migrations", consistency, limit=limit, cursor=cursor)

    async def revert_migration(self, migration_id: str, *, idempotency_key: str | None = None) -> MigrationChanged:
        """Put back every blob a completed run changed and nobody changed since (202, ``reverting``)."""
        return await self._model(MigrationChanged, "POST", f"/v1/migrations/{_seg(migration_id)}/revert",
                                 idempotency_key=idempotency_key)

    async def wait_for_migration(
        self, migration_id: str, *, until: frozenset[str] = MIGRATION_FINISHED, timeout: float = 300.0,
        interval: float = 0.05, max_interval: float = 0.5,
        on_progress: Callable[[MigrationOut], None] | None = None,
    ) -> MigrationOut:
        """The run once its status is one of ``until`` (by default: it ended, ``completed``,
        ``failed`` or ``reverted``), calling ``on_progress`` with each new state on the way.
        The client's read-your-writes position moves to the run's, so reading its blobs next
        sees what it wrote. Raises ``TimeoutError`` when that has not happened within ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                run = await self.get_migration(migration_id, consistency="strong")
                seen = -1
                while True:
                    if run.version != seen and on_progress is not None:
                        on_progress(run)
                    seen = run.version
                    if run.status in until:
                        break
                    await asyncio.sleep(interval)
                    interval = min(interval * 1.5, max_interval)
                    run = await self.get_migration(migration_id, consistency="eventual")
        except TimeoutError:
            raise TimeoutError(f"migration {migration_id} has not finished after {timeout:g} s") from None
        self.observe_position(run.position)
        return run

    # -- live updates ------------------------------------------------------------------------------

    def subscribe(self, *, bucket_id: str | None = None, job_id: str | None = None, since: int | None = None,
                  heartbeat: float = 20.0, max_reconnects: int | None = None,
                  migration_id: str | None = None) -> AsyncIterator[LiveEvent]:
        """Every change of one of your buckets (or jobs, or migration runs), live: ``async for event in ink.subscribe(bucket_id=B)``.

        Over ``/ws``. ``since``: start after this log position (a command answer's ``position``),
        replaying what happened since from the log; without it, from the moment of subscribing.
        A dropped connection (or a close for reading too slowly) reconnects by itself with
        backoff and resumes with ``since`` = the last position delivered; events are delivered
        in order and exactly once (de-duplicated by position). ``max_reconnects``: give up
        after this many failures in a row (None: never). The iteration ends when the bucket is
        deleted; it raises ``UnauthorizedError``/``TokenExpiredError``, ``ForbiddenError`` or
        ``NotFoundError`` when the server refuses.
        """
        return subscribe(self, bucket_id=bucket_id, job_id=job_id, since=since, heartbeat=heartbeat,
                         max_reconnects=max_reconnects, migration_id=migration_id)

    # -- paging -------------------------------------------------------------------------------------

    async def iter_pages(self, list_method: Callable[..., Awaitable[Any]], *args: Any,
                         **kwargs: Any) -> AsyncIterator[Any]:
        """Every item of a list, page after page: ``async for b in ink.iter_pages(ink.list_blobs, bucket_id=B)``.

        ``list_method`` is one of the client's ``list_*`` methods (or ``blob_history``); its arguments
        follow (``cursor`` is managed here). Items are models or dicts, as the
        method answers.
        """
        kwargs.pop("cursor", None)
        cursor: str | None = None
        while True:
            page = await list_method(*args, cursor=cursor, **kwargs)
            items = page["items"] if isinstance(page, dict) else page.items
            for item in items:
                yield item
            cursor = page.get("next_cursor") if isinstance(page, dict) else page.next_cursor
            if not cursor:
                return


def _seg(value: str) -> str:
    """An id as one path segment (ids are opaque: escape anything that is not URL-safe)."""
    return quote(value, safe="@-._~")
