"""``/ws`` and ``GET /v1/events``: the live pushes of ``adapters.live.hub`` over WebSocket and SSE.

Both transports drain one connection's ``Outbox``; what differs is framing,
authentication and how a connection ends. docs/live.md is the protocol.

* ``/ws``: the first message must be ``auth`` (else ``error`` and close 4401;
  a bad token also costs the client address a token of the anonymous limit,
  as on HTTP, and over it the close is 4429). Then ``subscribe`` and
  ``unsubscribe``; every client message takes a token of the user's HTTP rate
  limit. Bad input is an ``error`` and the connection stays open. aiohttp's
  heartbeat pings and closes a peer that stops answering; a message over the
  size limit closes with 1009; a connection that overflows closes with 4408.
* ``/v1/events``: Bearer auth like every /v1 route; errors before the stream
  starts are problem+json answers; then ``id:``/``event:``/``data:`` events
  framed by aiohttp-sse, and a ``: keep-alive`` comment when idle. aiohttp-sse
  does the framing (multi-line data, no line breaks in ids), the headers, and
  aborts a peer whose writes stall; its own ping says ``: ping``, so its
  interval is set out of reach and the contract's comment is written here.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

import structlog
from aiohttp import WSCloseCode, WSMsgType, web
from aiohttp_sse import EventSourceResponse
from pydantic import ValidationError

from adapters.http.api import Api, actor, pydantic_errors, read_query
from adapters.http.disconnect import request_gone
from adapters.http.middleware import address_key, bearer
from adapters.http.errors import BadRequest, RateLimited, TokenExpired, Unauthorized
from adapters.http.keys import LIMITERS, LIVE, METRICS, TOKENS
from adapters.http.limits import user_key
from adapters.http.ratelimit import TokenBucketLimiter
from adapters.http.models_live import AuthIn, ClientMessage, EventsQuery, SubscribeIn, TopicIn
from adapters.http.problems import KNOWN, kind_of
from adapters.live.hub import LiveHub, Subscription
from adapters.live.outbox import Message, Outbox, topic_field
from adapters.telemetry.metrics import Metrics
from domain.ids import is_id
from projections.pushes import BUCKET, JOB, MIGRATION, Topic

log = structlog.get_logger("inkstream.live")

UNAUTHENTICATED, TOO_SLOW, TOO_MANY = 4401, 4408, 4429
AUTH_PINGS = 10
"""Pings or pongs answered before the first message must be ``auth``."""


def error_message(exc: Exception, topic: Topic | None = None) -> Message:
    """``error`` ``{code, message}`` with the same code and phrase a problem answer would carry."""
    kind = kind_of(exc)
    reason = str(getattr(exc, "reason", "") or "")
    data: dict[str, Any] = {"code": kind.code, "message": f"{kind.phrase}: {reason}" if reason else kind.phrase}
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        data["retry_after"] = round(float(retry_after), 3)
    if topic is not None:
        data.update(topic_field(topic))
    return Message("error", data)


def _parse(raw: str, model: type[Any]) -> Any:
    try:
        return model.model_validate_json(raw) if isinstance(raw, str) else model.model_validate(raw)
    except ValidationError as exc:
        errors = pydantic_errors(exc)
        if any(e.message.startswith("Invalid JSON") for e in errors):
            raise BadRequest("malformed JSON") from exc
        raise BadRequest("; ".join(f"{e.path or '/'}: {e.message}" for e in errors[:5]), errors) from exc


def parse_topic(data: TopicIn) -> Topic:
    """Exactly one of ``bucket_id``/``job_id``/``migration_id``, and an id (never a raw token in a subject)."""
    given = [(kind, value) for kind, value in ((BUCKET, data.bucket_id), (JOB, data.job_id),
                                               (MIGRATION, data.migration_id)) if value is not None]
    if len(given) != 1:
        raise BadRequest("give exactly one of bucket_id, job_id and migration_id")
    kind, value = given[0]
    if not is_id(value):
        raise BadRequest(f"{kind}_id {value[:80]!r} is not an id")
    return kind, value


# -- WebSocket -----------------------------------------------------------------------------


async def websocket(request: web.Request) -> web.StreamResponse:
    hub, metrics = request.app[LIVE], request.app[METRICS]
    limits = hub.limits
    # pings are answered here (``autoping=False``), within the connection's frame budget; the heartbeat
    # still sees every frame the client sends
    ws = web.WebSocketResponse(heartbeat=limits.heartbeat_seconds, max_msg_size=limits.max_message_bytes,
                               autoping=False)
    if not ws.can_prepare(request).ok:
        raise BadRequest("/ws speaks WebSocket: send an Upgrade request")
    await ws.prepare(request)
    metrics.websocket_connections.inc()
    try:
        authenticated = await _authenticate(request, ws, hub)
        if authenticated is not None:
            outbox, expires_at = authenticated
            try:
                await _session(request, ws, hub, outbox, metrics, expires_at)
            finally:
                hub.disconnect(outbox)
    finally:
        metrics.websocket_connections.dec()
    return ws


async def _refuse(ws: web.WebSocketResponse, exc: Exception, close_code: int) -> None:
    with contextlib.suppress(Exception):
        await ws.send_str(error_message(exc).text())
        async with asyncio.timeout(2):
            await ws.close(code=close_code, message=kind_of(exc).code.encode())


async def _authenticate(request: web.Request, ws: web.WebSocketResponse,
                        hub: LiveHub) -> tuple[Outbox, float] | None:
    """The first message must be ``auth`` with a good token: the connection's outbox and when
    its token expires, or None (refused and closed)."""
    try:
        async with asyncio.timeout(hub.limits.auth_timeout_seconds):
            first = await ws.receive()
            for _ in range(AUTH_PINGS):  # a client library's keep-alive may come first
                if first.type not in (WSMsgType.PING, WSMsgType.PONG):
                    break
                if first.type == WSMsgType.PING:
                    await ws.pong(first.data)
                first = await ws.receive()
    except TimeoutError:
        await _refuse(ws, Unauthorized("authentication required: send auth first"), UNAUTHENTICATED)
        return None
    if first.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
        return None
    try:
        if first.type != WSMsgType.TEXT:
            raise Unauthorized("the first message must be auth")
        try:
            message = _parse(first.data, ClientMessage)
            if message.type != "auth":
                raise Unauthorized("the first message must be auth")
            token = _parse(message.data, AuthIn).token
        except BadRequest as exc:
            raise Unauthorized(f"the first message must be auth ({exc.reason})") from exc
        user, expires_at = request.app[TOKENS].verify_until(token)
    except (Unauthorized, TokenExpired) as exc:
        # as on HTTP: a failed token spends the client address's anonymous limit first
        wait = (await request.app[LIMITERS].anonymous.take(address_key(request.remote))).wait
        if wait > 0:
            await _refuse(ws, RateLimited("too many failed authentications, slow down", retry_after=wait), TOO_MANY)
        else:
            await _refuse(ws, exc, UNAUTHENTICATED)
        return None
    try:
        outbox = hub.connect(user, "ws")
    except KNOWN as exc:
        await _refuse(ws, exc, TOO_MANY)
        return None
    await ws.send_str(Message("auth.ok", {"user_id": user}).text())
    return outbox, expires_at


async def watch(outbox: Outbox, expires_at: float) -> str:
    """``overflow`` when the connection could not keep up, ``expired`` when its token ran out
    (one task per connection for both)."""
    try:
        async with asyncio.timeout(max(0.0, expires_at - time.time())):
            await outbox.failed.wait()
    except TimeoutError:
        return "expired"
    return "overflow"


async def _session(request: web.Request, ws: web.WebSocketResponse, hub: LiveHub, outbox: Outbox,
                   metrics: Metrics, expires_at: float) -> None:
    watcher = asyncio.create_task(watch(outbox, expires_at))
    tasks = [
        asyncio.create_task(_write_ws(ws, outbox, metrics)),
        asyncio.create_task(_read_ws(request, ws, hub, outbox)),
        watcher,
    ]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    if ws.closed:
        return
    if watcher.done() and not watcher.cancelled() and watcher.result() == "expired":
        await _refuse(ws, TokenExpired("the token is past its expiry"), UNAUTHENTICATED)  # log in, resume
        return
    if outbox.overflowed:
        metrics.live_overflows.labels("ws").inc()
        code, reason = TOO_SLOW, b"too slow: resume with since"
    elif outbox.closed:
        code, reason = WSCloseCode.GOING_AWAY, b"the server is stopping: resume with since"
    else:
        return
    try:
        async with asyncio.timeout(2):
            await ws.close(code=code, message=reason)
    except Exception:  # noqa: BLE001 - a peer that does not read cannot be closed politely
        if request.transport is not None:
            request.transport.abort()


async def _write_ws(ws: web.WebSocketResponse, outbox: Outbox, metrics: Metrics) -> None:
    while True:
        message = await outbox.get()
        if message is None:
            return
        await ws.send_str(message.text())
        if message.is_push:
            metrics.live_pushes.labels("ws", message.type).inc()


async def _read_ws(request: web.Request, ws: web.WebSocketResponse, hub: LiveHub, outbox: Outbox) -> None:
    limiter = request.app[LIMITERS].user
    frames = TokenBucketLimiter(hub.limits.frames_per_second, hub.limits.frames_burst, max_keys=1)
    pending: dict[Topic, asyncio.Task[None]] = {}
    try:
        async for frame in ws:
            # text messages count against the user's request limit (and are answered, with an error past
            # it); every other frame (pings above all, which aiohttp answered unseen) against this budget
            wait = frames.take("frames") if frame.type != WSMsgType.TEXT else 0.0
            if wait > 0:
                too_many = RateLimited(f"too many frames: at most {hub.limits.frames_per_second:g} a second",
                                       retry_after=wait)
                await _refuse(ws, too_many, TOO_MANY)
                return
            if frame.type == WSMsgType.PING:
                await ws.pong(frame.data)
                continue
            if frame.type == WSMsgType.PONG:
                continue
            if frame.type != WSMsgType.TEXT:
                if frame.type == WSMsgType.ERROR:
                    return
                outbox.offer(error_message(BadRequest("messages are JSON text")))
                continue
            wait = (await limiter.take(user_key(outbox.user_id))).wait
            if wait > 0:
                outbox.offer(error_message(RateLimited("too many messages, slow down", retry_after=wait)))
                continue
            try:
                _handle(frame.data, hub, outbox, pending)
            except KNOWN as exc:
                outbox.offer(error_message(exc))
    finally:
        for task in pending.values():
            task.cancel()
        await asyncio.gather(*pending.values(), return_exceptions=True)


def _handle(raw: str, hub: LiveHub, outbox: Outbox, pending: dict[Topic, asyncio.Task[None]]) -> None:
    message = _parse(raw, ClientMessage)
    if message.type == "subscribe":
        data = _parse(message.data, SubscribeIn)
        topic = parse_topic(data)
        running = pending.get(topic)
        if running is None or running.done():  # a subscribe still catching up is not started twice
            task = asyncio.create_task(_subscribe(hub, outbox, topic, data.since))
            pending[topic] = task
            # forgotten once done: subscribes to ids that do not exist used to stay, 900 bytes each, for the
            # connection's life (50 a second for an hour is 160 MB)
            task.add_done_callback(lambda t, topic=topic: pending.pop(topic) if pending.get(topic) is t else None)
    elif message.type == "unsubscribe":
        topic = parse_topic(_parse(message.data, TopicIn))
        task = pending.pop(topic, None)
        if task is not None:
            task.cancel()
        sub = outbox.subscriptions.get(topic)
        if sub is not None:
            hub.close(sub)
        outbox.offer(Message("unsubscribed", {**topic_field(topic), "reason": "unsubscribe"}))
    elif message.type == "auth":
        raise BadRequest("already authenticated")
    else:
        raise BadRequest(f"unknown message type {message.type[:40]!r}: send subscribe or unsubscribe")


async def _subscribe(hub: LiveHub, outbox: Outbox, topic: Topic, since: int | None) -> None:
    try:
        sub = await hub.open(outbox, topic, since)
        try:
            await hub.catch_up(sub)
        except BaseException:
            hub.close(sub)  # the client may subscribe again
            raise
    except KNOWN as exc:
        outbox.offer(error_message(exc, topic))
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - tell the client, keep the connection
        log.exception("live.subscribe_failed", topic=topic)
        outbox.offer(error_message(exc, topic))


# -- server-sent events -----------------------------------------------------------------------------


def _since(request: web.Request, query: EventsQuery) -> int | None:
    raw = request.headers.get("Last-Event-ID")
    if raw is None or not raw.strip():
        return query.since
    try:
        return int(raw.strip())
    except ValueError:
        raise BadRequest("Last-Event-ID must be a log position") from None


async def events(request: web.Request) -> web.StreamResponse:
    """The pushes of one bucket or job as ``text/event-stream``; see docs/live.md."""
    user = actor(request)
    _, expires_at = request.app[TOKENS].verify_until(bearer(request))  # the middleware let it in
    query = read_query(request, EventsQuery)
    topic = parse_topic(TopicIn(bucket_id=query.bucket_id, job_id=query.job_id, migration_id=query.migration_id))
    since = _since(request, query)
    hub, metrics = request.app[LIVE], request.app[METRICS]
    outbox = hub.connect(user, "sse")
    try:
        sub = await hub.open(outbox, topic, since)
        response = EventSourceResponse(sep="\n", ping_interval=10**9, send_timeout=hub.limits.heartbeat_seconds * 1.5)
        await response.prepare(request)
        metrics.sse_connections.inc()
        try:
            await _stream(request, response, hub, sub, metrics, expires_at)
        finally:
            metrics.sse_connections.dec()
        return response
    finally:
        hub.disconnect(outbox)


async def _stream(request: web.Request, response: EventSourceResponse, hub: LiveHub, sub: Subscription,
                  metrics: Metrics, expires_at: float) -> None:
    """Until the client goes, overflows, the subscription ends, or the token expires (the client
    reconnects with a fresh token and ``Last-Event-ID``)."""
    outbox = sub.outbox
    catch_up = asyncio.create_task(hub.catch_up(sub))
    writer = asyncio.create_task(_write_sse(response, outbox, hub.limits.keepalive_seconds, metrics,
                                            lambda: request_gone(request)))
    watcher = asyncio.create_task(watch(outbox, expires_at))
    waiting = {writer, watcher, catch_up}
    try:
        while True:
            done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if done != {catch_up} or catch_up.exception() is not None:
                break  # the replay failed (the log is unreachable: the client reconnects), or the stream ended
    finally:
        for task in (catch_up, writer, watcher):
            task.cancel()
        await asyncio.gather(catch_up, writer, watcher, return_exceptions=True)
    if outbox.overflowed:
        metrics.live_overflows.labels("sse").inc()
    with contextlib.suppress(Exception):
        response.stop_streaming()


async def _write_sse(response: EventSourceResponse, outbox: Outbox, keepalive: float, metrics: Metrics,
                     gone: Callable[[], bool]) -> None:
    """Messages as events; a keep-alive comment after ``keepalive`` s of silence. A client that went
    away is noticed within a second (aiohttp does not cancel the handler), not at the next write."""
    loop = asyncio.get_running_loop()
    idle_since = loop.time()
    while True:
        message = await outbox.get(timeout=min(1.0, keepalive))
        if message is None:
            if outbox.overflowed or outbox.closed or gone():
                return
            if loop.time() - idle_since >= keepalive:
                await response.write(b": keep-alive\n\n")
                idle_since = loop.time()
            continue
        idle_since = loop.time()
        position = str(message.position) if message.position is not None else None
        await response.send(message.data_text(), id=position, event=message.type)
        if message.is_push:
            metrics.live_pushes.labels("sse", message.type).inc()
        if message.type == "unsubscribed":
            return


_EVENTS = (
    "The pushes of one of your buckets (`bucket_id`), jobs (`job_id`) or migration runs (`migration_id`) as "
    "server-sent events, the same as `/ws` sends (see docs/live.md): `blob.created`, `blob.updated`, "
    "`blob.moved`, `blob.deleted` (`{bucket_id, blob_id, position, blob}`), `job.started`, `job.completed`, "
    "`job.failed`, `job.cancelled` (`{job_id, status, input_blob_id, output_blob_id?, error?, position}`) and "
    "`migration.started`, `migration.progressed`, `migration.completed`, `migration.failed`, "
    "`migration.reverting`, `migration.reverted`, `migration.revert_stopped` (`{migration_id, status, dry_run, "
    "total, migrated, failed, skipped, reverted, revert_skipped, error?, position}`). Each event is "
    "`id: <position>`, `event: <type>`, `data: <json>`. The stream opens with `subscribed` (`{position}`: "
    "everything after it follows); with `Last-Event-ID` (or `since`) every matching change after that "
    "position is replayed from the log first, then `caught_up` (`{position}`), then live events, with no "
    "gap and no duplicate. A `: keep-alive` comment is sent every 15 s of silence. `unsubscribed` "
    "(`{reason}`: `deleted`) ends the stream. A client that cannot keep up is disconnected and resumes with "
    "`Last-Event-ID`. 400 for a `since` beyond the log's end or an id that is not an id; 429 over the "
    "per-user limit of live connections or subscriptions."
)


def register_routes(api: Api) -> None:
    api.operation("GET", "/v1/events", summary="Live changes of a bucket or a job (server-sent events)",
                  tag="live", query=EventsQuery, errors=(400, 403, 404), produces=("text/event-stream",),
                  description=_EVENTS)(events)


def install_websocket(app: web.Application) -> None:
    """``/ws`` is not an OpenAPI operation (OpenAPI cannot describe its protocol: docs/live.md does).
    On shutdown every live connection ends at once instead of holding the server's stop."""
    app.router.add_get("/ws", websocket, name="websocket")

    async def end_live_connections(app: web.Application) -> None:
        app[LIVE].shutdown()

    app.on_shutdown.append(end_live_connections)
