"""Starting and stopping a role's I/O, in order, on one ``AsyncExitStack``.

``start`` connects to NATS, applies the streams, waits for PostgreSQL and
migrates it, opens the pool and the read-your-writes watch, starts the
sandbox, builds the graph with ``bootstrap``, and starts the one shared
reader of the log for the roles that need it: the projector runners (roles
that project) and the live fan-out to /ws and /v1/events (roles that serve
the API) follow it. Each step pushes its own cleanup, so
the stack stops everything in reverse order, also when a later step fails.
"""

from __future__ import annotations

import asyncio
import contextlib
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import asyncpg
import structlog
from nats.aio.client import Client

from adapters.http.probes import ProjectionStatus
from adapters.jetstream.connection import close_nats, connect_nats
from adapters.jetstream.event_store import JetStreamEventStore
from adapters.jetstream.shared_limits import JetStreamCounters, JetStreamMarks
from adapters.jetstream.streams import apply_streams, load_stream_specs
from adapters.live.hub import LiveHub, LiveLimits
from adapters.postgres.migrations import migrate
from adapters.postgres.pool import OUTAGE_ERRORS, connect, create_pool
from adapters.postgres.projector import ProjectorRunner
from adapters.postgres.read_model import PostgresReadModel
from adapters.postgres.watch import ProjectionWatch
from adapters.runtime.bootstrap import Services, bootstrap
from adapters.runtime.settings import Settings
from adapters.shared_log import SharedLog
from adapters.sandbox.pool import SandboxPool
from adapters.validation.pool import ValidatorPool
from adapters.telemetry.metrics import Metrics
from adapters.telemetry.redaction import without_password
from adapters.telemetry.tracing import Tracing

log = structlog.get_logger("inkstream.runtime")


@dataclass
class Running:
    """A started process: the graph, the connections it runs on, and its projector runners."""

    services: Services
    nats_url: str
    database_url: str
    nc: Client
    pool: asyncpg.Pool
    watch: ProjectionWatch
    shared_log: SharedLog
    live: LiveHub
    runners: list[ProjectorRunner] = field(default_factory=list)
    ready_target: int = 0
    _ready: bool = False

    # -- ``adapters.http.operations.Probes`` -------------------------------------------

    def log_connected(self) -> bool:
        return self.nc.is_connected

    async def log_position(self) -> int:
        return await self.services.store.last_position()

    async def ping_read_store(self) -> None:
        async with self.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    def projections(self) -> dict[str, ProjectionStatus]:
        if self.runners:
            return {r.name: ProjectionStatus(r.state.status, r.state.position, r.state.error, r.state.error_position)
                    for r in self.runners}
        # an API-only process: report what the runners recorded
        return {p.name: ProjectionStatus(self.watch.status.get(p.name, "unknown"), self.watch.position(p.name))
                for p in self.services.projections}

    def ready(self) -> bool:
        if not self._ready:
            self._ready = self.watch.reached(self.ready_target, [p.name for p in self.services.projections])
        return self._ready


async def start(
    stack: AsyncExitStack,
    settings: Settings,
    *,
    nats_url: str,
    database_url: str,
    project: bool,
    live: bool = False,
    commands: bool = True,
    tracing: Tracing | None = None,
    connect_timeout: float = 30.0,
) -> Running:
    metrics = Metrics()
    tracing = tracing or Tracing(settings.service_name)
    stack.callback(tracing.shutdown)
    nc = await connect_nats(nats_url)
    stack.push_async_callback(close_nats, nc)
    await apply_streams(nc, load_stream_specs(replicas=settings.stream_replicas, overrides=settings.stream_overrides()))
    store = JetStreamEventStore(nc, tracing=tracing, on_append=lambda ev: metrics.events_appended.labels(ev.type).inc(),
                                wait_seconds=settings.log_wait_seconds)

    await _wait_for_postgres(database_url, connect_timeout)
    conn = await connect(database_url)
    try:
        applied = await migrate(conn)
    finally:
        await conn.close()
    if applied:
        log.info("postgres.migrated", applied=applied)
    pool = await create_pool(database_url, min_size=1, max_size=20)
    stack.push_async_callback(_close_pool, pool)
    watch = ProjectionWatch(database_url)
    await watch.start()
    stack.push_async_callback(watch.stop)
    sandbox = SandboxPool(
        workers=settings.sandbox_workers,
        timeout_ms=settings.sandbox_timeout_ms,
        max_memory_mb=settings.sandbox_memory_mb,
        queue_seconds=settings.sandbox_queue_seconds,
    )
    if commands:  # V8 up in each worker before commands are served; other roles start workers only if used
        await sandbox.start()
    stack.push_async_callback(_close_sandbox, sandbox)
    validators = ValidatorPool(settings.validation_workers, settings.validation_budget_ms,
                               settings.validation_memory_mib)
    stack.push_async_callback(validators.aclose)

    timeout = settings.shared_limits_timeout_seconds
    services = bootstrap(settings, store=store, read_model=PostgresReadModel(pool), positions=watch,
                         sandbox=sandbox, validator=validators, metrics=metrics, tracing=tracing,
                         counters=JetStreamCounters(nc, timeout=timeout), marks=JetStreamMarks(nc, timeout=timeout))
    shared_log = SharedLog(store)
    hub = LiveHub(shared_log, store, services.codec, live_limits(settings))
    running = Running(services, nats_url, database_url, nc, pool, watch, shared_log, hub)
    running.ready_target = await store.last_position()
    if project or live:
        # One reader of the log for every subscriber of this process (see adapters/shared_log.py).
        stack.push_async_callback(_stop_tasks, [asyncio.create_task(shared_log.run(), name="shared-log")])
    if live:
        stack.push_async_callback(_stop_tasks, [asyncio.create_task(hub.run(), name="live-router")])
        async with asyncio.timeout(connect_timeout):
            await hub.started.wait()
    if project:
        await _start_projectors(stack, running)
    return running


def live_limits(settings: Settings) -> LiveLimits:
    return LiveLimits(
        queue_size=settings.live_queue_size,
        max_connections_per_user=settings.live_max_connections_per_user,
        max_subscriptions_per_user=settings.live_max_subscriptions_per_user,
        heartbeat_seconds=settings.ws_heartbeat_seconds,
        max_message_bytes=settings.ws_max_message_bytes,
        auth_timeout_seconds=settings.ws_auth_timeout_seconds,
        keepalive_seconds=settings.sse_keepalive_seconds,
    )


async def _start_projectors(stack: AsyncExitStack, running: Running) -> None:
    services = running.services
    tasks: list[asyncio.Task[None]] = []
    for projection in services.projections:
        runner = ProjectorRunner(
            projection,
            dsn=running.database_url,
            store=services.store,
            codec=services.codec,
            metrics=services.metrics,
            batch_size=services.settings.projector_batch_size,
            tracer=services.tracing,
            shared_log=running.shared_log,
        )
        running.runners.append(runner)
        tasks.append(asyncio.create_task(runner.run(), name=f"projector-{projection.name}"))
    stack.push_async_callback(_stop_tasks, tasks)


async def _stop_tasks(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    if tasks:
        _, stuck = await asyncio.wait(tasks, timeout=10)
        for task in stuck:  # never hang a shutdown on a task that ignored its cancellation
            log.error("runtime.task_did_not_stop", task=task.get_name())


async def _close_sandbox(sandbox: SandboxPool) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(15):
            await sandbox.close()


async def _close_pool(pool: asyncpg.Pool) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(5):
            await pool.close()


async def _wait_for_postgres(dsn: str, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            conn = await asyncpg.connect(dsn, timeout=2)
            await conn.close()
            return
        except (*OUTAGE_ERRORS, asyncpg.PostgresError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"PostgreSQL at {without_password(dsn)} did not answer within {timeout:.0f} s: {exc}") from exc
            await asyncio.sleep(0.5)
