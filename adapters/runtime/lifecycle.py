"""Starting and stopping a role's I/O, in order, on one ``AsyncExitStack``.

``start`` connects to NATS, applies the streams and the durable consumers,
opens the read-model stores the role uses (``adapters/runtime/stores.py``:
PostgreSQL migrated, MongoDB indexed, each with its pool or client and its
positions watch), starts the sandbox, builds the graph with ``bootstrap``
(queries go to the store named by ``INKSTREAM_READ_STORE``), and starts the
one shared reader of the log for the roles that need it: one projector runner
per projection and store (roles that project), the live fan-out to /ws and
/v1/events (roles that serve the API) and the trigger dispatcher (roles that
work, which also run the job runner) follow it. Each step pushes its own
cleanup, so the stack stops everything in reverse order, also when a later
step fails.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import asyncpg
import structlog
from nats.aio.client import Client

from adapters.http.probes import ProjectionStatus
from adapters.jetstream.connection import close_nats, connect_nats
from adapters.jetstream.event_store import JetStreamEventStore
from adapters.jetstream.shared_limits import JetStreamCounters, JetStreamMarks
from adapters.security.passwords import Argon2Hasher
from adapters.jetstream.snapshots import JetStreamSnapshots, code_fingerprint
from adapters.jetstream.streams import apply_consumers, apply_streams, load_consumer_specs, load_stream_specs
from adapters.live.hub import LiveHub, LiveLimits
from adapters.positions import PositionBoard
from adapters.processors.base import HttpSessions
from adapters.projector import ProjectorRunner
from adapters.runtime.bootstrap import Services, bootstrap, processor_deps, projections
from adapters.runtime.jobs import JobWorkers, start_job_workers
from adapters.runtime.settings import Settings
from adapters.runtime.stores import STORE_KINDS, ReadStore, StoreKind, open_mongo_store, open_postgres
from adapters.shared_log import SharedLog
from adapters.sandbox.pool import SandboxPool
from adapters.validation.pool import ValidatorPool
from adapters.telemetry.metrics import Metrics
from adapters.telemetry.tracing import Tracing
from domain.schema import Schema

log = structlog.get_logger("inkstream.runtime")

JOB_SANDBOX_QUEUE_SECONDS = 3600.0
"""A runner never starts more jobs than its pool has workers; a wait here is a replacement worker starting."""


def configured_stores(settings: Settings) -> tuple[StoreKind, ...]:
    """The stores a projecting role writes by default: PostgreSQL, and MongoDB when it has a URL."""
    return ("postgres", "mongo") if settings.mongo_url else ("postgres",)


def stores_to_open(settings: Settings, *, project: bool, queries: bool = True,
                   project_into: Iterable[StoreKind] | None = None,
                   also: Iterable[StoreKind] = ()) -> tuple[StoreKind, ...]:
    """The store that answers queries (for a role that serves them), those projected into, and ``also``."""
    wanted = {*also}
    if queries:
        wanted.add(settings.read_store)
    if project:
        wanted.update(configured_stores(settings) if project_into is None else project_into)
    return tuple(k for k in STORE_KINDS if k in wanted)


@dataclass
class Running:
    """A started process: the graph, the stores and connections it runs on, and its projector runners."""

    services: Services
    nats_url: str
    database_url: str
    nc: Client
    stores: dict[StoreKind, ReadStore]
    read_store: StoreKind
    shared_log: SharedLog
    live: LiveHub
    mongo_url: str = ""
    runners: list[ProjectorRunner] = field(default_factory=list)
    jobs: JobWorkers | None = None
    ready_target: int = 0
    _ready: bool = False

    @property
    def watch(self) -> PositionBoard:
        """Positions of the store that answers queries."""
        return self.stores[self.read_store].watch

    @property
    def pool(self) -> asyncpg.Pool | None:
        store = self.stores.get("postgres")
        return store.pool if store else None

    # -- ``adapters.http.operations.Probes`` -------------------------------------------

    def log_connected(self) -> bool:
        return self.nc.is_connected

    async def log_position(self) -> int:
        return await self.services.store.last_position()

    def store_kinds(self) -> tuple[str, ...]:
        return tuple(self.stores)

    async def ping_store(self, kind: str) -> None:
        await self.stores[kind].ping()  # type: ignore[index]

    def projections(self) -> dict[str, dict[str, ProjectionStatus]]:
        out: dict[str, dict[str, ProjectionStatus]] = {}
        for kind, store in self.stores.items():
            runners = [r for r in self.runners if r.store_kind == kind]
            if runners:
                out[kind] = {r.name: ProjectionStatus(r.state.status, r.state.position, r.state.error,
                                                      r.state.error_position) for r in runners}
            else:  # not projected here: report what the store's runners recorded
                out[kind] = {p.name: ProjectionStatus(store.watch.status.get(p.name, "unknown"),
                                                      store.watch.position(p.name))
                             for p in self.services.projections}
        return out

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
    queries: bool = True,
    project_into: Sequence[StoreKind] | None = None,
    also_open: Sequence[StoreKind] = (),
    work: bool = False,
    tracing: Tracing | None = None,
    connect_timeout: float = 30.0,
) -> Running:
    """``project_into``: the stores this process projects into (None: ``configured_stores``);
    ``queries``: it answers queries (from ``INKSTREAM_READ_STORE``); ``also_open``: stores
    opened besides those (``inkstream replay --store``)."""
    kinds = stores_to_open(settings, project=project, queries=queries, project_into=project_into, also=also_open)
    if "mongo" in kinds and not settings.mongo_url:
        raise RuntimeError("MongoDB is asked for (INKSTREAM_READ_STORE=mongo or --store mongo) "
                           "but INKSTREAM_MONGO_URL is not set")
    metrics = Metrics()
    tracing = tracing or Tracing(settings.service_name)
    stack.callback(tracing.shutdown)
    nc = await connect_nats(nats_url)
    stack.push_async_callback(close_nats, nc)
    await apply_streams(nc, load_stream_specs(replicas=settings.stream_replicas, overrides=settings.stream_overrides()))
    await apply_consumers(nc, load_consumer_specs(ack_wait=settings.job_ack_wait_seconds))
    store = JetStreamEventStore(nc, tracing=tracing, on_append=lambda ev: metrics.events_appended.labels(ev.type).inc(),
                                wait_seconds=settings.log_wait_seconds, uncharged_types=(Schema.TYPE,),
                                guards=settings.stream_replicas == 1)
    snapshots, code = None, code_fingerprint()
    if code is not None:
        snapshots = JetStreamSnapshots(nc, code)
        stack.push_async_callback(snapshots.close)

    stores: dict[StoreKind, ReadStore] = {}
    for kind in kinds:
        if kind == "postgres":
            stores[kind] = await open_postgres(stack, database_url, timeout=connect_timeout,
                                               row_cache_bytes=settings.row_cache_bytes)
        else:
            stores[kind] = await open_mongo_store(stack, settings.mongo_url, projections(), timeout=connect_timeout)
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

    http = HttpSessions()
    stack.push_async_callback(http.close)
    job_sandbox = sandbox
    if work:  # js-transform jobs get workers of their own, one per job a runner may run at once
        job_sandbox = SandboxPool(
            workers=settings.job_concurrency,
            timeout_ms=settings.sandbox_timeout_ms,
            max_memory_mb=settings.sandbox_memory_mb,
            queue_seconds=JOB_SANDBOX_QUEUE_SECONDS,
        )
        await job_sandbox.start()
        stack.push_async_callback(_close_sandbox, job_sandbox)

    timeout = settings.shared_limits_timeout_seconds
    # A role that answers no queries (``project --store mongo``) reads, if at all, from what it opened.
    read_store = settings.read_store if settings.read_store in stores else kinds[0]
    reads = stores[read_store]
    hasher = Argon2Hasher(settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism)
    stack.callback(hasher.close)
    services = bootstrap(settings, store=store, read_model=reads.read_model, positions=reads.watch,
                         sandbox=sandbox, validator=validators, hasher=hasher, metrics=metrics, tracing=tracing,
                         processors=processor_deps(settings, job_sandbox, http, checks=sandbox),
                         counters=JetStreamCounters(nc, timeout=timeout), marks=JetStreamMarks(nc, timeout=timeout),
                         snapshots=snapshots)
    shared_log = SharedLog(store)
    hub = LiveHub(shared_log, store, services.codec, live_limits(settings), load=services.repo.state_at)
    running = Running(services, nats_url, database_url, nc, stores, read_store, shared_log, hub,
                      mongo_url=settings.mongo_url)
    running.ready_target = await store.last_position()
    if project or live or work:
        # One reader of the log for every subscriber of this process (see adapters/shared_log.py).
        stack.push_async_callback(_stop_tasks, [asyncio.create_task(shared_log.run(), name="shared-log")])
    if live:
        stack.push_async_callback(_stop_tasks, [asyncio.create_task(hub.run(), name="live-router")])
        async with asyncio.timeout(connect_timeout):
            await hub.started.wait()
    if project:
        into = configured_stores(settings) if project_into is None else project_into
        await _start_projectors(stack, running, [k for k in kinds if k in into])
    if work:
        running.jobs = start_job_workers(stack, services, nc, shared_log, database_url, _stop_tasks,
                                         sandbox=job_sandbox)
    return running


def live_limits(settings: Settings) -> LiveLimits:
    return LiveLimits(
        queue_size=settings.live_queue_size,
        max_connections_per_user=settings.live_max_connections_per_user,
        max_subscriptions_per_user=settings.live_max_subscriptions_per_user,
        heartbeat_seconds=settings.ws_heartbeat_seconds,
        max_message_bytes=settings.ws_max_message_bytes,
        frames_per_second=settings.ws_frames_per_second,
        frames_burst=settings.ws_frames_burst,
        auth_timeout_seconds=settings.ws_auth_timeout_seconds,
        keepalive_seconds=settings.sse_keepalive_seconds,
        queue_bytes=settings.live_queue_bytes,
        user_queue_bytes=settings.live_user_queue_bytes,
        states=settings.live_states,
        states_bytes=settings.live_states_bytes,
        catch_ups_per_user=settings.live_catch_ups_per_user,
        catch_ups_per_process=settings.live_catch_ups_per_process,
        catch_up_read_bytes=settings.live_catch_up_read_bytes,
        catch_up_states_bytes=settings.live_catch_up_states_bytes,
        catch_up_stall_seconds=settings.live_catch_up_stall_seconds,
        catch_up_slice_seconds=settings.live_catch_up_slice_seconds,
    )


async def _start_projectors(stack: AsyncExitStack, running: Running, kinds: Sequence[StoreKind]) -> None:
    services = running.services
    tasks: list[asyncio.Task[None]] = []
    for kind in kinds:
        for projection in services.projections:
            runner = ProjectorRunner(
                projection,
                running.stores[kind].target,
                store=services.store,
                codec=services.codec,
                metrics=services.metrics,
                batch_size=services.settings.projector_batch_size,
                tracer=services.tracing,
                shared_log=running.shared_log,
            )
            running.runners.append(runner)
            tasks.append(asyncio.create_task(runner.run(), name=f"projector-{kind}-{projection.name}"))
    stack.push_async_callback(_stop_tasks, tasks)


async def _close_sandbox(sandbox: SandboxPool) -> None:
    with contextlib.suppress(Exception):
        async with asyncio.timeout(15):
            await sandbox.close()


async def _stop_tasks(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        task.cancel()
    if tasks:
        _, stuck = await asyncio.wait(tasks, timeout=10)
        for task in stuck:  # never hang a shutdown on a task that ignored its cancellation
            log.error("runtime.task_did_not_stop", task=task.get_name())
