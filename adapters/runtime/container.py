"""The composition root: the one place that builds the object graph from settings.

Roles pick what they run: the API serves HTTP, the projector role runs the
projector runners, the work role runs the job runner and the trigger
dispatcher (``adapters.runtime.jobs``), ``inkstream up`` runs them all in one
process.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import asyncpg
import structlog
from nats.aio.client import Client

from adapters.http.ratelimit import TokenBucketLimiter
from adapters.http.tokens import TokenService
from adapters.jetstream.connection import connect_nats
from adapters.jetstream.event_store import JetStreamEventStore
from adapters.jetstream.streams import apply_consumers, apply_streams, load_consumer_specs, load_stream_specs
from adapters.postgres.migrations import migrate
from adapters.postgres.pool import OUTAGE_ERRORS, connect, create_pool
from adapters.postgres.projector import ProjectorRunner
from adapters.postgres.watch import ProjectionWatch
from adapters.runtime.settings import Settings
from adapters.security.passwords import Argon2Hasher
from adapters.telemetry.metrics import Metrics
from adapters.telemetry.tracing import Tracing
from commands.repository import Repository
from commands.users import UserCommands
from domain.base import EventCodec
from projections.changes import Projection
from adapters.runtime.jobs import start_job_workers
from adapters.runtime.wiring import Contexts, aggregates, projections, wire_contexts

log = structlog.get_logger("inkstream.runtime")


@dataclass
class Container:
    settings: Settings
    nats_url: str
    database_url: str
    nc: Client
    store: JetStreamEventStore
    codec: EventCodec
    repo: Repository
    pool: asyncpg.Pool
    watch: ProjectionWatch
    metrics: Metrics
    tracing: Tracing
    tokens: TokenService
    user_limiter: TokenBucketLimiter
    anonymous_limiter: TokenBucketLimiter
    login_limiter: TokenBucketLimiter
    users: UserCommands
    projections: list[Projection]
    contexts: Contexts | None = None
    runners: list[ProjectorRunner] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    ready_target: int = 0
    ready: bool = False

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        nats_url: str,
        database_url: str,
        tracing: Tracing | None = None,
        run_projectors: bool = True,
        run_jobs: bool = True,
        connect_timeout: float = 30.0,
    ) -> "Container":
        metrics = Metrics()
        tracing = tracing or Tracing(settings.service_name)
        nc = await connect_nats(nats_url)
        await apply_streams(nc, load_stream_specs(replicas=settings.stream_replicas))
        await apply_consumers(nc, load_consumer_specs(ack_wait=settings.job_ack_wait_seconds))
        store = JetStreamEventStore(
            nc, tracing=tracing, on_append=lambda ev: metrics.events_appended.labels(ev.type).inc()
        )
        codec = EventCodec(aggregates())
        repo = Repository(store, codec)
        await _wait_for_postgres(database_url, connect_timeout)
        conn = await connect(database_url)
        try:
            applied = await migrate(conn)
        finally:
            await conn.close()
        if applied:
            log.info("postgres.migrated", applied=applied)
        pool = await create_pool(database_url, min_size=1, max_size=20)
        watch = ProjectionWatch(database_url)
        await watch.start()
        hasher = Argon2Hasher(settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism)
        container = cls(
            settings=settings,
            nats_url=nats_url,
            database_url=database_url,
            nc=nc,
            store=store,
            codec=codec,
            repo=repo,
            pool=pool,
            watch=watch,
            metrics=metrics,
            tracing=tracing,
            tokens=TokenService(settings.resolve_jwt_secret(), settings.jwt_lifetime_seconds),
            user_limiter=TokenBucketLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
            anonymous_limiter=TokenBucketLimiter(
                settings.anonymous_rate_limit_per_second, settings.anonymous_rate_limit_burst
            ),
            login_limiter=TokenBucketLimiter(settings.login_failures_per_minute / 60.0, settings.login_failures_per_minute),
            users=UserCommands(repo, hasher),
            projections=projections(),
        )
        container.contexts = wire_contexts(container)
        container.ready_target = await store.last_position()
        if run_projectors:
            container.start_projectors()
        if run_jobs:
            container._tasks.extend(start_job_workers(container, container.ctx.jobs))
        return container

    def start_projectors(self) -> None:
        for projection in self.projections:
            runner = ProjectorRunner(
                projection,
                dsn=self.database_url,
                store=self.store,
                codec=self.codec,
                metrics=self.metrics,
                batch_size=self.settings.projector_batch_size,
                tracer=self.tracing,
            )
            self.runners.append(runner)
            self._tasks.append(asyncio.create_task(runner.run(), name=f"projector-{projection.name}"))

    def is_ready(self) -> bool:
        """Streams exist (we applied them) and projections caught up with the log as it was at start."""
        if self.ready:
            return True
        names = [p.name for p in self.projections]
        if self.watch.reached(self.ready_target, names):
            self.ready = True
        return self.ready

    @property
    def ctx(self) -> Contexts:
        assert self.contexts is not None
        return self.contexts

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=10)
            for task in stuck:  # never hang a shutdown on a task that ignored its cancellation
                log.error("runtime.task_did_not_stop", task=task.get_name())
        await self.watch.stop()
        if self.contexts is not None:
            await self.contexts.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await self.pool.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await self.nc.drain()
        self.tracing.shutdown()


async def _wait_for_postgres(dsn: str, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            conn = await asyncpg.connect(dsn, timeout=2)
            await conn.close()
            return
        except (*OUTAGE_ERRORS, asyncpg.PostgresError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"PostgreSQL at {dsn} did not answer within {timeout:.0f} s: {exc}") from exc
            await asyncio.sleep(0.5)
