"""Request middlewares: observability, then authentication and rate limiting as one step."""

from __future__ import annotations

import asyncio
import ipaddress
import random
import time
from typing import Any

import structlog
from aiohttp import web

from adapters.http.api import ACTOR_KEY, TRACEPARENT_KEY
from adapters.http.keys import API, LIMITERS, METRICS, TOKENS, TRACING
from adapters.telemetry.tracing import current_trace_id, current_traceparent, extract
from adapters.http.errors import RateLimited, TokenExpired, Unauthorized
from adapters.http.limits import user_key, written_key
from adapters.work import metered

log = structlog.get_logger("inkstream.http")

CLIENT_GONE = 499
"""The status logged and counted for a request cancelled before it answered (nginx's "client closed
request"): a request whose client left while it waited for its turn is not a server error."""

LONG_LIVED = frozenset({"/ws", "/v1/events"})
"""Live connections last minutes or hours: their duration would drown the request histogram."""


def route_template(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def observability_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Request id, trace span (continuing an incoming ``traceparent``), metrics, access log."""
    tracing, metrics = request.app[TRACING], request.app[METRICS]
    template = route_template(request)
    request_id = request.headers.get("X-Request-Id") or f"{random.getrandbits(128):032x}"  # uuid4: 4 % of a GET
    started = time.perf_counter()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    status = 500
    try:
        if tracing.enabled:
            with tracing.span(f"HTTP {request.method} {template}", extract(request.headers),
                              **{"http.method": request.method, "http.route": template}) as span:
                request[TRACEPARENT_KEY] = current_traceparent()
                structlog.contextvars.bind_contextvars(trace_id=current_trace_id())
                response = await handler(request)
                status = response.status
                span.set_attribute("http.status_code", status)
        else:
            # Nothing exports: the request's trace ids without an OpenTelemetry context (its
            # span and context cost about 25 us of CPU a request); the traceparent reaches the
            # log through the command's Context, the trace id the log lines through structlog.
            request[TRACEPARENT_KEY], trace_id = tracing.entry_ids(request.headers.get("traceparent"))
            structlog.contextvars.bind_contextvars(trace_id=trace_id)
            response = await handler(request)
            status = response.status
        if not response.prepared:  # a streamed export has sent its headers already
            response.headers["X-Request-Id"] = request_id
        return response
    except asyncio.CancelledError:
        status = CLIENT_GONE  # its client went away (or the server is stopping): no answer, and not an error
        raise
    finally:
        elapsed = time.perf_counter() - started
        if template not in ("/metrics",):
            metrics.answered(request.method, template, status, None if template in LONG_LIVED else elapsed)
        if template not in ("/metrics", "/health", "/ready"):
            log.info("http.request", method=request.method, route=template, status=status,
                     ms=round(elapsed * 1000, 2))
        structlog.contextvars.unbind_contextvars("request_id", "trace_id")


WORKER_MS_PER_REQUEST = 10
"""A request's user code and schemas may take this many milliseconds of the worker processes' CPU
(``adapters.work.Work.worker_ms``) for the price of the request; each further this many cost one more
request: a validation of a second, or a migrate's 5 s of transforms, costs 100 or 500 requests, which
hold the user's next requests back."""


def client_of(remote: str | None) -> str:
    """Who a client is for the limits: an IPv4 address as it is, an IPv6 address by its /64 (a client is
    usually handed a whole /64, so counting each of its 2^64 addresses apart would limit nothing)."""
    if remote and ":" in remote:
        try:
            address = ipaddress.IPv6Address(remote.split("%", 1)[0])
        except ValueError:
            return remote
        if address.ipv4_mapped is not None:  # an IPv4 client on a dual-stack socket: that address
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return remote or "unknown"


def address_key(remote: str | None) -> str:
    """The key a client is counted under on the anonymous limit (and its sign-ins in flight)."""
    return f"addr:{client_of(remote)}"


def _needs_auth(request: web.Request) -> bool:
    if request.match_info.http_exception is not None:
        return False
    api = request.app[API]
    op = api.find(request.method, route_template(request))
    return op.auth if op is not None else request.path.startswith("/v1")


def bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("a bearer token is required")
    return token.strip()


@web.middleware
async def access_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Who is asking (the token), and whether they may ask now (rate limits).

    A request with a valid token is limited per user. Everything else under
    ``/v1`` (register, login, a missing, expired or forged token) is limited
    per client address, and that limit is applied before a failed token gets
    its 401: an address over its limit gets 429 whatever it sends, so bad
    tokens cannot be sent without limit. The token is verified first only
    because that is what tells a user's request from an anonymous one; it is
    a local HMAC check of microseconds, and it lets a good token keep its own
    per-user limit on an address that someone else floods.
    """
    limiters = request.app[LIMITERS]
    user: str | None = None
    failure: Unauthorized | TokenExpired | None = None
    if _needs_auth(request):
        try:
            user = request.app[TOKENS].verify(bearer(request))
        except (Unauthorized, TokenExpired) as exc:
            failure = exc
    if user is not None:
        request[ACTOR_KEY] = user
        wait = (await limiters.user.take(user_key(user))).wait if request.path.startswith("/v1") else 0.0
    elif request.path.startswith("/v1") or failure is not None:
        wait = (await limiters.anonymous.take(address_key(request.remote))).wait
    else:
        wait = 0.0
    if wait > 0:
        raise RateLimited("too many requests, slow down", retry_after=wait)
    if failure is not None:
        raise failure
    if user is None or not request.path.startswith("/v1") or route_template(request) in LONG_LIVED:
        return await handler(request)
    if request.can_read_body:
        await _charge_written(request, user)
    return await _metered(request, handler, user)


async def _metered(request: web.Request, handler: Any, user: str) -> web.StreamResponse:
    """A user's request costs one request of their rate limit, and one more for each
    ``events_per_request`` events it made the process read from the log (``adapters.work``), charged
    once it is answered: requests differ a thousandfold in what they cost, and counted only by number
    one account could keep a core busy with the expensive kind. The charge holds the user's next
    requests back like the requests it stands for. Live connections are not metered: they last for
    hours, and what they load is bounded by their own limits."""
    with metered() as work:
        try:
            return await handler(request)
        finally:
            limiters = request.app[LIMITERS]
            extra = max(0, (work.events - 1) // limiters.events_per_request)
            extra += int(work.worker_ms // WORKER_MS_PER_REQUEST)
            if extra > 0:
                await limiters.user.charge(user_key(user), extra)


async def _charge_written(request: web.Request, user: str) -> None:
    """A user's bodies are counted in bytes too (``Limiters.written``): the request rate bounds how
    often one account writes, not how much, and what it writes stays in the log for good. The body
    is read here (aiohttp keeps it for the handler; over ``max_body_bytes`` it is a 413); anonymous
    bodies (register, login) are small and limited per address."""
    size = len(await request.read())
    if size:
        grant = await request.app[LIMITERS].written.take(written_key(user), size)
        if grant.wait > 0:
            raise RateLimited("too many bytes written: slow down", retry_after=grant.wait)
