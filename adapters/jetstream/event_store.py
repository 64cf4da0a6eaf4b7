"""The event store on JetStream: one stream, one subject per aggregate.

* Position = stream sequence. Optimistic concurrency with
  ``Nats-Expected-Last-Subject-Sequence`` (0 = new aggregate); idempotency with
  ``Nats-Msg-Id`` = command id.
* A retry after a lost ack carries the same Msg-Id and the same (now stale)
  expectation, and JetStream answers "wrong last sequence" rather than
  "duplicate": so on 10071 the subject's last message is read and the append
  counts as done when its Msg-Id is ours.
* Loading an aggregate is batched Direct Gets by subject (nats-py has no
  helper for the batch form, so the request is sent here), not a consumer.
  Every batched Direct Get is bounded in bytes (``max_bytes``, see
  ``LOAD_MAX_BYTES``), so no request pulls unbounded data into memory however
  large an aggregate grew: a load continues after the last event received
  until the subject's events are complete; ``read_range`` is one bounded
  request; ``has_events_after`` asks for one event.
* ``open_cursor`` and ``read_all`` read bounded pages while behind and an ordered consumer at
  the tail (``cursor.py``: why).
* An event larger than the server's ``max_payload`` (headers included) is the
  client's problem (``EventTooLarge``, 413), checked before publishing:
  the server would otherwise close the connection on it, and the publish
  would look like an outage.
* An election is not an outage. When the stream's leader is lost, its
  followers wait 4 to 9 s (nats-server's Raft election timeout, not
  configurable) before one of them leads; meanwhile a publish answers "no
  responders" and requests to the leader time out. So every call to the log
  waits and retries for up to ``wait_seconds`` (``INKSTREAM_LOG_WAIT_SECONDS``)
  before it gives up with ``Unavailable`` (503). An append is retried with the
  same ``Nats-Msg-Id`` and the same expected sequence: an attempt that had
  landed makes the retry a duplicate or a "wrong last sequence" whose last
  message is ours, so none lands twice. While the client is reconnecting
  nothing is published (it would only pile up in its buffer).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import orjson
import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.errors import ConnectionClosedError, MaxPayloadError, NoRespondersError
from nats.errors import Error as NatsError
from nats.js import api
from nats.js.errors import APIError, BadRequestError, NotFoundError, ServiceUnavailableError

from adapters.cancellation import raise_if_cancelling
from adapters.jetstream.cursor import PAGE_BYTES as CURSOR_PAGE_BYTES
from adapters.jetstream.cursor import BEHIND_BYTES, JetStreamCursor
from adapters.jetstream.decoding import install
from adapters.jetstream.receive_budget import RECEIVE_BYTES, ReceiveBudget
from adapters.jetstream.span_reader import SpanBroken, open_span
from adapters.telemetry.tracing import Tracing, current_traceparent
from adapters.work import events_read
from commands.ports import Appended, EventTooLarge, Guard, Unavailable
from domain.errors import ConcurrencyError
from domain.ids import is_made_up
from domain.recorded import NewEvent, Recorded

WRONG_LAST_SEQUENCE = 10071
T = TypeVar("T")

KIB = 1024
MIB = 1024 * KIB

LOAD_MAX_BYTES = 4 * MIB
"""The most one batched Direct Get pulls from the log, in bytes as the server counts a message
(subject, headers and payload). The server stops a batch after the message with which it
reached the ``max_bytes`` asked for, so a request asks for one message's room less (the
server's ``max_payload`` and ``_MESSAGE_ROOM``): with the default ``max_payload`` (1 MiB) a
request never pulls more than this. A server configured with a ``max_payload`` over 3 MiB
gets asked for ``LOAD_MAX_BYTES // 4`` (then a request pulls at most that plus one message)."""

_MESSAGE_ROOM = 4 * KIB

ABANDONED_SECONDS = 30.0
"""How long a Direct Get given up on (a timeout) keeps its share of the receive budget unless its
last reply arrives first: the server may still be sending it."""
"""What the server counts for a message beyond ``max_payload``: its subject and record overhead."""

H_TYPE = "Ink-Type"
H_VERSION = "Ink-Version"
H_CLASS_VERSION = "Ink-Class-Version"
H_ACTOR = "Ink-Actor"
H_COMMAND = "Ink-Command-Id"
H_AT = "Ink-At"
H_TRACEPARENT = "traceparent"
H_MSG_ID = "Nats-Msg-Id"


log = structlog.get_logger("inkstream.eventstore")


class _Transient(Exception):
    """The log could not answer now (no leader, no responders): worth another try."""


def transient(exc: BaseException) -> bool:
    """Whether a failure talking to NATS may pass by itself: a timeout, no responders (no stream
    leader), a 503 from the JetStream API, a connection being re-established. A request the
    server refused (400, 404, 413) or a client closed on purpose is not."""
    if isinstance(exc, (ConnectionClosedError, MaxPayloadError)):
        return False
    if isinstance(exc, APIError):
        return isinstance(exc, ServiceUnavailableError) or exc.code == 503
    return isinstance(exc, (_Transient, NatsError, asyncio.TimeoutError, OSError))


@dataclass
class _Batch:
    """The replies to one batched Direct Get request, as they arrive."""

    done: asyncio.Future[None]
    records: list[Recorded] = field(default_factory=list)
    more: bool = False
    error: str | None = None
    abandoned: bool = False
    """Given up on: its messages are not decoded, only its end awaited."""


def subject_for(aggregate_type: str, aggregate_id: str, prefix: str = "ink") -> str:
    return f"{prefix}.{aggregate_type}.{aggregate_id}"


def message_size(payload: bytes, headers: dict[str, str]) -> int:
    """What the server counts against ``max_payload``: the payload and the encoded headers
    (``NATS/1.0``, one ``key: value`` line each, a blank line)."""
    header_bytes = len(b"NATS/1.0\r\n\r\n") + sum(
        len(k.encode()) + len(v.encode()) + len(b": \r\n") for k, v in headers.items()
    )
    return len(payload) + header_bytes


def _too_large(size: int, limit: int) -> EventTooLarge:
    return EventTooLarge(f"the event would be {size} bytes, over the event log's limit of {limit} bytes", limit)


def _parse_time(value: str | None, position: int) -> datetime:
    """An event's time is part of the event: one without it is corrupt (replays must be deterministic)."""
    if not value:
        raise ValueError(f"the event at position {position} has no {H_AT} header")
    return datetime.fromisoformat(value)


def to_recorded(subject: str, position: int, headers: dict[str, str] | None, payload: bytes) -> Recorded:
    """The envelope of one stored message."""
    headers = headers or {}
    get = headers.get
    _, aggregate_type, aggregate_id = subject.split(".", 2)
    # positional, in Recorded's field order: every event read goes through here
    return Recorded(
        position, aggregate_type, aggregate_id, get(H_TYPE, ""), int(get(H_VERSION, "0")),
        _parse_time(get(H_AT), position), orjson.loads(payload) if payload else {},
        int(get(H_CLASS_VERSION, "1")), get(H_ACTOR) or None, get(H_COMMAND) or None,
        get(H_TRACEPARENT) or None, headers, len(payload),
    )


class JetStreamEventStore:
    """Implements ``commands.ports.EventStore``."""

    def __init__(
        self,
        nc: Client,
        *,
        stream: str = "INK",
        prefix: str = "ink",
        publish_timeout: float = 2.0,
        load_batch: int = 1000,
        on_append: Callable[[NewEvent], None] | None = None,
        tracing: Tracing | None = None,
        wait_seconds: float = 0.0,
        receive_bytes: int = RECEIVE_BYTES,
        uncharged_types: Collection[str] = (),
        guards: bool = True,
    ) -> None:
        """``uncharged_types``: aggregates every user's requests read (schemas, which anyone may write
        against): reading them is not counted as the request's work (``adapters.work``), or one user
        could make others pay for the history of a schema they made long.

        ``guards``: whether creations are guarded (``commands.ports.Guard``); only on a stream of one
        replica. On a replicated stream nats-server lets one message checked against a subject be in
        flight at a time (a second is refused with 10164 until the first is committed), so guarding
        every blob filed in a bucket on that bucket would make a bucket's concurrent creations refuse
        each other."""
        self.guards = guards
        self._nc = nc
        self._uncharged = frozenset(uncharged_types)
        install(nc)  # faster header parsing, the same headers
        self._js = nc.jetstream(timeout=publish_timeout)
        self._stream = stream
        self._prefix = prefix
        self._publish_timeout = publish_timeout
        self._load_batch = load_batch
        self._on_append = on_append
        self._tracing = tracing
        self._replies: Any = None
        self._inbox = ""
        self._tokens = itertools.count(1)
        self._waiting: dict[str, _Batch] = {}
        self._wait_seconds = wait_seconds
        self._receiving = ReceiveBudget(receive_bytes)

    @property
    def stream(self) -> str:
        return self._stream

    async def _patiently(self, what: str, attempt: Callable[[float], Awaitable[T]]) -> T:
        """``attempt(timeout)`` until it succeeds, fails for good, or ``wait_seconds`` have passed.

        Transient failures are retried after 50 ms, doubling to 500 ms; while
        the client is reconnecting it is not asked at all. The last transient
        failure after the deadline becomes ``Unavailable``.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_seconds
        delay, tries = 0.05, 0
        while True:
            raise_if_cancelling()
            if self._nc.is_closed:
                raise Unavailable("the event log connection is closed")
            remaining = deadline - loop.time()
            if not self._nc.is_connected:
                if remaining > 0:
                    await asyncio.sleep(min(delay, remaining))
                    continue
                if tries or self._wait_seconds > 0:
                    raise Unavailable("the event log is unreachable")
            tries += 1
            try:
                timeout = min(self._publish_timeout, max(0.25, remaining)) if self._wait_seconds else self._publish_timeout
                return await attempt(timeout)
            except Exception as exc:
                if not transient(exc):
                    raise
                raise_if_cancelling()  # a cancellation nats-py turned into a timeout: stop, do not retry
                remaining = deadline - loop.time()
                if remaining <= 0:
                    if tries > 1:
                        log.warning("eventstore.gave_up", call=what, tries=tries, error=type(exc).__name__)
                    raise Unavailable("the event log is unreachable") from exc
                if tries == 1:
                    log.info("eventstore.waiting", call=what, error=type(exc).__name__, wait=self._wait_seconds)
                await asyncio.sleep(min(delay, remaining))
                delay = min(delay * 2, 0.5)

    async def append(
        self,
        aggregate_type: str,
        aggregate_id: str,
        event: NewEvent,
        expected_position: int,
        command_id: str,
        guard: Guard | None = None,
    ) -> Appended:
        if guard is not None and (expected_position != 0 or not is_made_up(aggregate_id) or not self.guards):
            raise ValueError("a guarded append creates an aggregate with a made-up id, on a store that guards")
        span = (
            self._tracing.span("eventstore.append", **{"ink.aggregate_type": aggregate_type, "ink.event_type": event.type})
            if self._tracing is not None
            else contextlib.nullcontext()
        )
        with span:
            # the append's own span is the parent the projector's span continues
            traceparent = self._traceparent(event)
            subject = subject_for(aggregate_type, aggregate_id, self._prefix)
            headers = {
                H_MSG_ID: command_id,
                "Nats-Expected-Stream": self._stream,
                "Nats-Expected-Last-Subject-Sequence": str(expected_position if guard is None else guard.position),
                H_TYPE: event.type,
                H_VERSION: str(event.version),
                H_CLASS_VERSION: str(event.class_version),
                H_COMMAND: command_id,
                H_AT: event.at.isoformat(),
            }
            if guard is not None:  # the server checks the guard's subject instead of the new one's
                headers["Nats-Expected-Last-Subject-Sequence-Subject"] = subject_for(
                    guard.aggregate_type, guard.aggregate_id, self._prefix)
            if event.actor:
                headers[H_ACTOR] = event.actor
            if traceparent:
                headers[H_TRACEPARENT] = traceparent
            payload = orjson.dumps(event.data)
            size, limit = message_size(payload, headers), self._nc.max_payload
            if size > limit:
                raise _too_large(size, limit)

            async def publish(timeout: float) -> api.PubAck:
                # every attempt the same message: same Msg-Id, same expected sequence
                return await self._js.publish(subject, payload, timeout=timeout, headers=headers)

            try:
                ack = await self._patiently("append", publish)
            except MaxPayloadError as exc:  # the limit changed under us (a reconnect to another server)
                raise _too_large(size, self._nc.max_payload) from exc
            except BadRequestError as exc:
                if exc.err_code != WRONG_LAST_SEQUENCE:
                    raise Unavailable(f"the log refused the event: {exc.description}") from exc
                # our own earlier attempt (an ack lost in a leader change), or another writer
                mine = await self._last_if_mine(subject, command_id)
                if mine is not None:
                    return Appended(mine, duplicate=True)
                changed = (aggregate_type, aggregate_id) if guard is None else (guard.aggregate_type, guard.aggregate_id)
                raise ConcurrencyError("{} {} changed concurrently".format(*changed)) from exc
            except (NatsError, APIError, asyncio.TimeoutError, OSError) as exc:
                raise Unavailable("the event log is unreachable") from exc
            if self._on_append is not None and not ack.duplicate:
                self._on_append(event)
            return Appended(ack.seq, duplicate=bool(ack.duplicate), size=len(payload))

    def _charged(self, aggregate_type: str) -> bool:
        """Whether reading ``aggregate_type`` counts as the request's work (``uncharged_types``)."""
        return aggregate_type not in self._uncharged

    def _traceparent(self, event: NewEvent) -> str | None:
        """What the event's trace continues from: the append's own span when this process
        records spans; else the command's traceparent (an HTTP request sets no OpenTelemetry
        context when nothing exports), else the context the caller runs in (a job's run)."""
        if self._tracing is None:
            return event.traceparent
        if self._tracing.enabled or event.traceparent is None:
            return current_traceparent()
        return event.traceparent

    async def _last_if_mine(self, subject: str, command_id: str) -> int | None:
        try:
            last = await self._patiently(
                "last", lambda timeout: self._js.get_last_msg(self._stream, subject, direct=True)
            )
        except NotFoundError:
            return None
        except (NatsError, APIError, asyncio.TimeoutError) as exc:
            raise Unavailable("the event log is unreachable") from exc
        if last.headers and last.headers.get(H_MSG_ID) == command_id:
            return int(last.seq or 0)
        return None

    def _ask_bytes(self, budget: int | None = None) -> int:
        """The ``max_bytes`` of one batched Direct Get: ``LOAD_MAX_BYTES`` less one message's room
        (the server sends the message that crosses it), and no more than what is left of a
        caller's ``budget`` (the one message past it is dropped by the caller)."""
        ceiling = max(LOAD_MAX_BYTES // 4, LOAD_MAX_BYTES - self._nc.max_payload - _MESSAGE_ROOM)
        return ceiling if budget is None else max(1, min(ceiling, budget))

    async def load(
        self, aggregate_type: str, aggregate_id: str, *, until_position: int | None = None, from_position: int = 1,
        limit: int | None = None, max_bytes: int | None = None,
    ) -> list[Recorded]:
        if limit is not None and limit < 1:
            return []
        return (await self._load(aggregate_type, aggregate_id, from_position, until_position, limit, max_bytes))[0]

    async def load_page(
        self, aggregate_type: str, aggregate_id: str, *, from_position: int = 1, until_position: int | None = None,
        max_bytes: int, limit: int | None = None,
    ) -> tuple[list[Recorded], bool]:
        return await self._load(aggregate_type, aggregate_id, from_position, until_position, limit, max_bytes)

    async def _load(
        self, aggregate_type: str, aggregate_id: str, from_position: int, until_position: int | None,
        limit: int | None, max_bytes: int | None,
    ) -> tuple[list[Recorded], bool]:
        subject = subject_for(aggregate_type, aggregate_id, self._prefix)
        start = max(from_position, 1)
        charged = self._charged(aggregate_type)
        try:
            return await self._patiently(
                "load",
                lambda timeout: self._direct_get_pages(subject, start, until_position, limit, max_bytes, timeout,
                                                       charged),
            )
        except (NatsError, asyncio.TimeoutError, OSError) as exc:
            raise Unavailable("the event log is unreachable") from exc

    async def has_events_after(self, aggregate_type: str, aggregate_id: str, position: int) -> bool:
        """One Direct Get of at most one message: the subject's first after ``position``."""
        request = {"seq": max(position, 0) + 1, "next_by_subj": subject_for(aggregate_type, aggregate_id, self._prefix),
                   "batch": 1, "max_bytes": 1}  # fmt: skip
        try:
            records, _ = await self._patiently(
                "has_events_after", lambda timeout: self._direct_get(request, timeout, self._charged(aggregate_type))
            )
        except (NatsError, asyncio.TimeoutError, OSError) as exc:
            raise Unavailable("the event log is unreachable") from exc
        return bool(records)

    async def last_before(self, aggregate_type: str, aggregate_id: str, position: int) -> Recorded | None:
        """One Direct Get of the subject's last message up to ``position`` (``multi_last`` with
        ``up_to_seq``). The server answers nothing for a ``position`` past the stream's last
        sequence, so then another asks for the subject's last message, which is the answer when it
        is at or before ``position``. When it is after, the log has grown past ``position`` since
        the first question (an append in between), and the first question, asked again, answers."""
        if position < 1:
            return None
        subject = subject_for(aggregate_type, aggregate_id, self._prefix)
        bounded = {"multi_last": [subject], "batch": 1, "up_to_seq": position}

        charged = self._charged(aggregate_type)

        async def ask(request: dict[str, Any]) -> Recorded | None:
            records, _ = await self._patiently("last_before",
                                               lambda timeout: self._direct_get(request, timeout, charged))
            return records[-1] if records else None

        try:
            found = await ask(bounded)
            if found is not None:
                return found
            last = await ask({"multi_last": [subject], "batch": 1})
            if last is None or last.position <= position:
                return last
            return await ask(bounded)
        except (NatsError, asyncio.TimeoutError, OSError) as exc:
            raise Unavailable("the event log is unreachable") from exc

    async def _direct_get_pages(
        self, subject: str, start: int, until_position: int | None, limit: int | None, max_bytes: int | None,
        timeout: float, charged: bool = True,
    ) -> tuple[list[Recorded], bool]:
        """The subject's events from ``start`` (to ``until_position``): all of them, or a page of at
        most ``limit`` events and ``max_bytes`` of event data (the first event always), and whether
        more may follow. Each request is bounded (``_ask_bytes``); the next one continues after the
        last event received."""
        records: list[Recorded] = []
        used = 0
        while True:
            count = self._load_batch if limit is None else min(self._load_batch, limit - len(records))
            if until_position is not None:
                # nats-server honours ``up_to_seq`` only with ``multi_last``: a batch runs on past it, to
                # ``count`` events, which the loop below drops. No more than the positions up to it can match.
                count = min(count, until_position - start + 1)
                if count < 1:
                    return records, False
            budget = None if max_bytes is None else max_bytes - used
            request: dict[str, Any] = {"seq": start, "next_by_subj": subject, "batch": count,
                                       "max_bytes": self._ask_bytes(budget)}
            if until_position is not None:
                request["up_to_seq"] = until_position
            batch, more = await self._direct_get(request, timeout, charged)
            for record in batch:
                if until_position is not None and record.position > until_position:
                    return records, False
                if max_bytes is not None and records and used + record.size > max_bytes:
                    return records, True  # the page is full: the next event would take it past max_bytes
                records.append(record)
                used += record.size
            if not more or not batch:
                return records, False
            if until_position is not None and batch[-1].position >= until_position:
                return records, False
            if (limit is not None and len(records) >= limit) or (max_bytes is not None and used >= max_bytes):
                return records, True
            start = batch[-1].position + 1

    async def read_range(
        self, aggregate_type: str, from_position: int, until_position: int, *,
        aggregate_id: str | None = None, limit: int = 1000, max_bytes: int | None = None,
    ) -> list[Recorded]:
        """One batched Direct Get with a subject filter (``ink.blob.>`` or one subject) and ``up_to_seq``,
        bounded in bytes (``LOAD_MAX_BYTES``, or the caller's ``max_bytes`` when smaller: the server stops
        after the message that reaches it, and always sends one): it may answer fewer than ``limit`` events."""
        if from_position > until_position:
            return []
        subject = subject_for(aggregate_type, aggregate_id if aggregate_id is not None else ">", self._prefix)
        request = {"seq": max(from_position, 1), "next_by_subj": subject, "batch": limit, "up_to_seq": until_position,
                   "max_bytes": self._ask_bytes(max_bytes)}  # fmt: skip
        try:
            records, _ = await self._patiently(
                "read_range", lambda timeout: self._direct_get(request, timeout, self._charged(aggregate_type))
            )
        except (NatsError, asyncio.TimeoutError, OSError) as exc:
            raise Unavailable("the event log is unreachable") from exc
        return [r for r in records if r.position <= until_position]

    async def read_span(self, from_position: int, to_position: int) -> AsyncIterator[list[Recorded]]:
        """On a raw connection of its own (``span_reader.py``: nats-py's per-message work was
        most of a rebuild's time), else, or for what it did not read, one ordered consumer
        in batches of up to 1,000. (Pipelined batched Direct Gets, and a second ordered
        consumer opened ahead on the next segment, both measured slower.)"""
        position = max(from_position, 1) - 1
        if position >= to_position:
            return
        raw = await open_span(self._nc, self._stream, position + 1, to_position, to_recorded)
        if raw is not None:
            try:
                async for batch in raw:
                    position = batch[-1].position
                    yield batch
            except SpanBroken as exc:
                log.warning("eventstore.span_fallback", reason=str(exc), position=position)
            finally:
                await raw.aclose()  # type: ignore[attr-defined]
        if position >= to_position:
            return
        cursor = await self.open_cursor(position + 1)
        try:
            while position < to_position:
                batch = await cursor.next_batch(1000, timeout=None)
                if batch and batch[-1].position > to_position:
                    batch = [r for r in batch if r.position <= to_position]
                if batch:
                    position = batch[-1].position
                    yield batch
        finally:
            await cursor.close()

    async def _direct_get(self, request: dict[str, Any], timeout: float, charged: bool = True) -> tuple[list[Recorded], bool]:
        """One batched Direct Get: (records, more pending). Replies come to one
        shared inbox subscription (no SUB/UNSUB per load) and are collected by a
        callback, not a task per message. What it read is counted here, in the
        caller's context, when ``charged`` (``adapters.work``): never in
        ``_on_reply``, which runs in the subscription's task (started in the
        context of whichever request read first)."""
        if self._replies is None:
            self._inbox = self._nc.new_inbox()
            self._replies = await self._nc.subscribe(f"{self._inbox}.*", cb=self._on_reply)
        token = str(next(self._tokens))
        batch = _Batch(asyncio.get_running_loop().create_future())
        # what its replies may weigh: the bytes asked for, and the message that crosses them
        held = await self._receiving.acquire(int(request.get("max_bytes", LOAD_MAX_BYTES)) + self._nc.max_payload
                                             + _MESSAGE_ROOM)
        released = False

        def release(*_: object) -> None:
            nonlocal released
            if not released:
                released = True
                self._waiting.pop(token, None)
                self._receiving.release(held)

        sent = False
        self._waiting[token] = batch
        try:
            await self._nc.publish(
                f"$JS.API.DIRECT.GET.{self._stream}", orjson.dumps(request), reply=f"{self._inbox}.{token}"
            )
            sent = True
            async with asyncio.timeout(timeout):
                await asyncio.shield(batch.done)
        finally:
            if batch.done.done() or not sent:
                release()
            else:  # given up on (a timeout, a cancellation): its replies may still be on their way
                batch.abandoned = True
                batch.records.clear()
                batch.done.add_done_callback(release)
                asyncio.get_running_loop().call_later(ABANDONED_SECONDS, release)
        if batch.error:
            raise _Transient(batch.error)
        if charged:
            events_read(len(batch.records))
        return batch.records, batch.more

    async def _on_reply(self, msg: Msg) -> None:
        batch = self._waiting.get(msg.subject.rsplit(".", 1)[-1])
        if batch is None or batch.done.done():
            return
        headers = msg.headers or {}
        status = headers.get("Status")
        if status is None:
            if batch.abandoned:
                return
            batch.records.append(self._from_direct(msg))
            batch.more = headers.get("Nats-Num-Pending", "0") != "0"
            return
        if status not in ("204", "404"):
            batch.error = f"direct get answered status {status}"
        batch.done.set_result(None)

    @staticmethod
    def _from_direct(msg: Msg) -> Recorded:
        headers = msg.headers or {}
        return to_recorded(headers["Nats-Subject"], int(headers["Nats-Sequence"]), headers, msg.data)

    async def event_at(self, position: int) -> Recorded | None:
        try:
            raw = await self._patiently("event_at", lambda timeout: self._js.get_msg(self._stream, seq=position, direct=True))
        except NotFoundError:
            return None
        except (NatsError, APIError, asyncio.TimeoutError) as exc:
            raise Unavailable("the event log is unreachable") from exc
        return to_recorded(raw.subject or "", int(raw.seq or position), raw.headers, raw.data or b"")

    async def last_position(self) -> int:
        """The stream's last sequence, from its leader (a follower may not have the latest write yet)."""
        try:
            return await self._patiently("last_position", self._last_sequence)
        except (NatsError, APIError, asyncio.TimeoutError) as exc:
            raise Unavailable("the event log is unreachable") from exc

    async def _last_sequence(self, timeout: float) -> int:
        """``STREAM.INFO`` with only the last sequence read from the answer: nats-py's
        ``stream_info`` builds the whole configuration into objects first, about a third of the
        CPU of every read-your-writes lookup."""
        try:
            msg = await self._nc.request(f"$JS.API.STREAM.INFO.{self._stream}", b"", timeout=timeout)
        except NoRespondersError as exc:  # no stream leader (yet): as nats-py's own request says
            raise ServiceUnavailableError from exc
        answer = orjson.loads(msg.data)
        if "error" in answer:
            APIError.from_error(answer["error"])  # raises the error's own class (503: transient)
        return int(answer["state"]["last_seq"])

    async def open_cursor(self, from_position: int = 1, *, behind_bytes: int = BEHIND_BYTES) -> JetStreamCursor:
        """The log from ``from_position`` on: bounded pages while behind, then an ordered consumer
        at the tail (see ``cursor.py``)."""
        return JetStreamCursor(self._log_page, self._follow_tail, to_recorded, from_position,
                               behind_bytes=behind_bytes)

    async def _log_page(self, position: int, count: int) -> tuple[list[Recorded], bool]:
        """One batched Direct Get of the whole log from ``position``: a cursor's page (with no subject
        filter, which the server answers faster: the stream holds nothing but events)."""
        request = {"seq": position, "batch": count, "max_bytes": self._ask_bytes(CURSOR_PAGE_BYTES)}
        try:
            return await self._patiently("read_page", lambda timeout: self._direct_get(request, timeout))
        except (NatsError, asyncio.TimeoutError, OSError) as exc:
            raise Unavailable("the event log is unreachable") from exc

    async def _follow_tail(self, position: int, callback: Callable[[Msg], Awaitable[None]]) -> Any:
        if position <= 1:
            config = api.ConsumerConfig(deliver_policy=api.DeliverPolicy.ALL)
        else:
            config = api.ConsumerConfig(deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=position)
        return await self._js.subscribe(
            f"{self._prefix}.>", stream=self._stream, ordered_consumer=True, config=config, cb=callback
        )

    async def read_all(self, from_position: int = 1) -> AsyncIterator[Recorded]:  # type: ignore[override]
        """Every event from ``from_position`` on, in order, then live ones; never ends."""
        cursor = await self.open_cursor(from_position)
        try:
            while True:
                for record in await cursor.next_batch(1000, timeout=None):
                    yield record
        finally:
            await cursor.close()
