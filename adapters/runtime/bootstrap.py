"""The composition root: the one place that builds the object graph.

``bootstrap`` is pure construction, in the manner of cosmicpython's
``bootstrap.py``: it takes the edges that do I/O (the log, the read model,
the sandbox...) as arguments, so production (``lifecycle.start``), the CLI and
the tests build the same graph and differ only in what they pass in. Nothing
here connects, starts or stops anything; that is ``lifecycle``'s job.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.http.limits import Limiters, LimitSettings, local_limiters, shared_limiters
from adapters.http.login_guard import Marks
from adapters.http.ratelimit import Counters
from adapters.http.tokens import TokenService
from adapters.processors.base import HttpSessions, ProcessorDeps
from adapters.processors.catalog import ProcessorCatalog
from adapters.read_your_writes import ReadYourWrites
from adapters.runtime.settings import Settings
from adapters.security.passwords import Argon2Hasher
from adapters.telemetry.metrics import Metrics
from adapters.telemetry.tracing import Tracing
from adapters.work import unmetered
from commands.blobs import BlobHandlers
from commands.books import BookHandlers
from commands.buckets import BucketHandlers
from commands.bus import CommandBus
from commands.job_runs import JobReads, JobRunHandlers
from commands.jobs import JobHandlers
from commands.migrations import MigrationHandlers, MigrationReads
from commands.ports import EventStore, PasswordHasher, Sandbox, SchemaValidator, SnapshotStore
from commands.processors import ProcessorHandlers
from commands.repository import Repository
from commands.schemas import SchemaHandlers, SchemaRegistry
from commands.users import UserHandlers
from domain.base import EventCodec, InkAggregate
from domain.blob import Blob
from domain.book import Book
from domain.bucket import Bucket
from domain.job import Job
from domain.migration import Migration
from domain.processor import Processor
from domain.schema import Schema
from domain.user import User
from projections.blobs import BlobProjection
from projections.books import BooksProjection
from projections.buckets import BucketProjection
from projections.changes import Projection
from projections.commands import CommandsProjection
from projections.jobs import JobProjection
from projections.migrations import MigrationProjection
from projections.processors import ProcessorProjection
from projections.read_model import ProjectionPositions, ReadModel
from projections.schemas import SchemaProjection
from projections.users import UsersProjection


def aggregates() -> list[type[InkAggregate]]:
    return [User, Schema, Bucket, Blob, Book, Processor, Job, Migration]


def snapshotting() -> list[type[InkAggregate]]:
    """The aggregates loaded from snapshots: those that grow long (a blob edited many times, a
    book written chapter by chapter, a job its owner cancels and retries over and over, a
    processor whose config is updated again and again: the job runner loads it for every job).
    Others stay short, are bounded (a schema's versions: ``Limits.schema_versions``), or hold
    state that is not plain JSON (``domain/snapshot.py``): a schema's versions, a migration
    run's sets and pairs."""
    return [Blob, Book, Job, Processor]


def projections() -> list[Projection]:
    return [
        UsersProjection(), SchemaProjection(), BucketProjection(), BlobProjection(), BooksProjection(),
        ProcessorProjection(), JobProjection(), MigrationProjection(), CommandsProjection(),
    ]


def processor_deps(settings: Settings, sandbox: Sandbox, http: HttpSessions | None = None,
                   checks: Sandbox | None = None) -> ProcessorDeps:
    """What processor types are made with: the sandbox jobs run in, the one registrations'
    checks run in (``checks``, default the same), one HTTP session, the model endpoint's settings."""
    return ProcessorDeps(
        sandbox=sandbox,
        checks=checks,
        http=http or HttpSessions(),
        llm_base_url=settings.llm_base_url,
        llm_api_key=settings.llm_api_key,
        llm_timeout_seconds=settings.llm_timeout_seconds,
        llm_max_retries=settings.llm_max_retries,
    )


@dataclass(frozen=True)
class Services:
    """Everything a role uses, built once per process."""

    settings: Settings
    store: EventStore
    codec: EventCodec
    repo: Repository
    bus: CommandBus
    reads: ReadYourWrites
    tokens: TokenService
    limiters: Limiters
    metrics: Metrics
    tracing: Tracing
    projections: tuple[Projection, ...]
    processor_types: ProcessorCatalog
    job_reads: JobReads
    migration_reads: MigrationReads


def bootstrap(
    settings: Settings,
    *,
    store: EventStore,
    read_model: ReadModel,
    positions: ProjectionPositions,
    sandbox: Sandbox,
    validator: SchemaValidator,
    hasher: PasswordHasher | None = None,
    metrics: Metrics | None = None,
    tracing: Tracing | None = None,
    processors: ProcessorDeps | None = None,
    counters: Counters | None = None,
    marks: Marks | None = None,
    snapshots: SnapshotStore | None = None,
) -> Services:
    """``counters`` and ``marks`` (shared through NATS) make the rate and login limits hold across
    every API process; without them each process keeps its own."""
    metrics = metrics or Metrics()
    tracing = tracing or Tracing(settings.service_name)
    hasher = hasher or Argon2Hasher(settings.argon2_time_cost, settings.argon2_memory_kib,
                                    settings.argon2_parallelism)
    codec = EventCodec(aggregates())
    repo = Repository(store, codec, cache_bytes=settings.write_cache_bytes,
                      read_cache_bytes=settings.read_cache_bytes, snapshots=snapshots,
                      snapshotting=snapshotting(), snapshot_after=settings.snapshot_after_events,
                      rung_events=settings.snapshot_rung_events,
                      commands=read_model, unmetered=unmetered)
    metrics.watch_loads(repo)
    limits = settings.limits()
    reads = ReadYourWrites(read_model, positions, store, settings.read_wait_seconds)
    schemas = SchemaRegistry(repo, validator)
    processor_types = ProcessorCatalog.discover(processors or processor_deps(settings, sandbox))
    contexts = (
        UserHandlers(repo, hasher),
        SchemaHandlers(repo, schemas, validator, sandbox, limits),
        BucketHandlers(repo, reads),
        BlobHandlers(repo, schemas, sandbox, limits),
        BookHandlers(repo, limits),
        ProcessorHandlers(repo, schemas, processor_types, reads),
        JobHandlers(repo, processor_types, reads),
        JobRunHandlers(repo, schemas, limits),
        MigrationHandlers(repo, schemas, reads, limits),
    )
    bus = CommandBus({command: handler for context in contexts for command, handler in context.handlers().items()},
                     tracing)
    limits_settings = LimitSettings(
        settings.rate_limit_per_second, settings.rate_limit_burst,
        settings.anonymous_rate_limit_per_second, settings.anonymous_rate_limit_burst,
        settings.login_failures_per_minute, settings.login_account_failures_per_minute,
        settings.login_known_address_days * 86400,
        settings.exports_per_user, settings.exports_per_process,
        settings.pages_per_user, settings.pages_per_process, settings.pages_waiting_per_user,
        settings.write_bytes_per_second, settings.write_bytes_burst, settings.rate_limit_events_per_request,
        settings.export_stall_seconds, settings.export_memory_mb * 1024 * 1024,
        settings.sign_in_rate_per_second, settings.sign_in_burst,
    )  # fmt: skip
    jwt_secret = settings.resolve_jwt_secret()
    limiters = (
        shared_limiters(limits_settings, counters, marks, jwt_secret, settings.shared_limits_timeout_seconds)
        if counters is not None and marks is not None
        else local_limiters(limits_settings)
    )
    return Services(
        settings=settings,
        store=store,
        codec=codec,
        repo=repo,
        bus=bus,
        reads=reads,
        tokens=TokenService(jwt_secret, settings.jwt_lifetime_seconds),
        limiters=limiters,
        metrics=metrics,
        tracing=tracing,
        projections=tuple(projections()),
        processor_types=processor_types,
        job_reads=JobReads(repo, schemas),
        migration_reads=MigrationReads(repo, schemas, reads, limits),
    )
