"""Running a migration run (and its revert) on a job runner.

A run's work message is ``Migration.Requested`` (its revert's,
``Migration.RevertRequested``) on the runners' shared consumer, so a run is
at-least-once like a job: a runner killed mid-run stops heartbeating, the
message is redelivered and another runner takes the run over (a new
attempt). What makes that safe is the log, not the message:

* The blobs come from the read model, once it has reached the log's current
  position: the owner's blobs on the source version (in the bucket and its
  sub-buckets). Each is then read from the log, transformed, validated and
  written with the version read as the expected version
  (``WriteMigratedBlob``), so an editor's change made meanwhile is never
  overwritten: the blob is retried once at the end, then ``skipped``.
* Transforms run in the sandbox in batches (``call_many``: many documents per
  sandbox call, an error per document), each step of the chain in order; a
  result that is not an object, or that the target schema refuses, fails
  that blob only, with its path and message.
* Progress is one ``Migration.Progressed`` per batch (counts, the first 100
  errors, and which blobs the batch changed from which version to which:
  what a revert puts back). A run taken over finds the blobs already moved
  by the lost attempt (on the target, written by this run) and records them.
* A revert puts back every blob the run changed that is still at the version
  the run wrote, as a new ``Blob.Migrated`` (``revert``) with that version
  expected; the rest are skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import structlog

from adapters.telemetry.metrics import Metrics
from adapters.work import Bill, billed

from commands.migrations import (
    Chain,
    CompleteMigration,
    CompleteRevert,
    FailMigration,
    MigrationReads,
    RecordMigrationProgress,
    RecordRevertProgress,
    StartMigration,
    StartRevert,
    StopRevert,
    WriteMigratedBlob,
    blob_write_id,
)
from commands.ports import Sandbox, SandboxError
from commands.repository import Context
from commands.schemas import MIGRATE_FUNCTION
from domain.blob import Blob
from domain.errors import ConcurrencyError, DomainError, NotFound, ValidationFailed
from domain.limits import encoded_size
from domain.migration import PENDING, REVERTING, RUNNING, Migration, migration_error

log = structlog.get_logger("inkstream.migrations")

MIGRATION_EVENTS = frozenset({"Migration.Requested", "Migration.RevertRequested"})
MAX_ATTEMPTS = 5
ERRORS_PER_BLOB = 5
VALIDATIONS_AT_ONCE = 4


@dataclass(frozen=True)
class MigrationOptions:
    batch_size: int = 100
    """Blobs per batch: one sandbox call per step of the chain and one progress event per batch."""
    writes_at_once: int = 16
    ack_wait: float = 30.0
    per_blob_sandbox_calls: bool = False
    """One sandbox call per blob (all of a batch at once) instead of one per batch: the baseline
    ``bench/migrations.py`` measures batching against."""


class _Stop(Exception):
    """The run moved on under this runner (another runner took it over, or it finished)."""


@dataclass
class _Batch:
    migrated: int = 0
    failed: int = 0
    skipped: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)
    changes: list[list[Any]] = field(default_factory=list)
    again: list[str] = field(default_factory=list)  # changed meanwhile: retried once at the end


Record = Callable[[Any, Context | None], Awaitable[Any]]
Durably = Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]]


class MigrationExecutor:
    """Runs one migration message; answers what the runner does with it (``"ack"``, ``"term"``,
    ``"let_go"`` or ``"nak"``)."""

    def __init__(self, reads: MigrationReads, sandbox: Sandbox, record: Record, durably: Durably,
                 options: MigrationOptions | None = None, metrics: Metrics | None = None, *,
                 bill_written: Bill | None = None) -> None:
        self._metrics = metrics
        self._bill_written = bill_written
        self._reads = reads
        self._sandbox = sandbox
        self._record = record
        self._durably = durably
        self._options = options or MigrationOptions()

    # -- the message ------------------------------------------------------------------------------

    async def process(self, migration_id: str, kind: str, runner_id: str, actor: str, request: int = 1) -> str:
        """``request``: for a revert's message, which request of the revert it carries (its ``run``)."""
        saved = await self._durably(lambda: self._reads.migration(migration_id))
        if saved is None:
            return "ack"
        run = saved.aggregate
        forward = kind == "Migration.Requested"
        if forward and run.status not in (PENDING, RUNNING):
            return "ack"
        if not forward and (run.status != REVERTING or request != run.revert_run):
            return "ack"  # done, or the message of an earlier request of a revert asked again
        started = run.status == RUNNING or (not forward and run.revert_started)
        if started and _age(run) < self._options.ack_wait:
            return "let_go"  # its runner holds it (a duplicate delivery)
        try:
            if forward and run.attempts >= MAX_ATTEMPTS:
                await self._quietly(FailMigration(migration_id, f"attempt {run.attempts} stopped answering and "
                                                                f"all {MAX_ATTEMPTS} attempts are used"))
                return "term"
            if not forward and run.revert_attempts >= MAX_ATTEMPTS:
                # Stopped, not left ``reverting`` for good: the owner sees why and may ask again (it goes on).
                await self._quietly(StopRevert(
                    migration_id, f"the revert stopped: attempt {run.revert_attempts} stopped answering and all "
                                  f"{MAX_ATTEMPTS} attempts are used; {run.reverted} blobs were put back and "
                                  f"{run.revert_skipped} skipped so far; request the revert again to go on",
                    run.attempts))
                return "term"
            if forward:
                await self._run(run, runner_id, actor)
            else:
                await self._revert(run, runner_id, actor)
        except _Stop:
            return "ack"
        return "ack"

    async def _quietly(self, command: Any) -> Any:
        try:
            return await self._record(command, None)
        except DomainError:
            raise _Stop() from None

    # -- a run ------------------------------------------------------------------------------------

    async def _run(self, run: Migration, runner_id: str, actor: str) -> None:
        migration_id = run.id_str
        takeover = run.status == RUNNING
        chain = await self._durably(lambda: self._reads.chain(run))
        if chain is None:
            await self._quietly(FailMigration(migration_id, "no chain of migrations leads from "
                                                            f"{run.from_schema_id} to {run.schema_id} any more"))
            return
        position = await self._durably(self._reads.last_position)
        blob_ids = await self._durably(lambda: self._reads.finder.migration_candidates(
            run.owner_id, [run.from_schema_id], run.bucket_id, position))
        total = len(blob_ids)
        written: set[str] = set()  # on the target already: those a lost attempt wrote are recorded
        if takeover:
            on_target = await self._durably(lambda: self._reads.finder.migration_candidates(
                run.owner_id, [run.schema_id], run.bucket_id, position))
            written = {b for b in on_target if b not in run.changed}
            blob_ids = blob_ids + [b for b in on_target if b in written]
        started = (await self._quietly(StartMigration(migration_id, runner_id, total))).aggregate
        attempt = started.attempts
        log.info("migrations.started", migration_id=migration_id, total=len(blob_ids), attempt=attempt,
                 dry_run=run.dry_run)
        again: list[str] = []
        size = self._options.batch_size
        for i in range(0, len(blob_ids), size):
            batch = await self._batch(started, chain, blob_ids[i:i + size], actor, final=False, written=written)
            again.extend(batch.again)
            await self._progress(migration_id, attempt, batch, run.dry_run)
        if again:  # changed while the run went on: once more, then skipped
            for i in range(0, len(again), size):
                await self._progress(migration_id, attempt,
                                     await self._batch(started, chain, again[i:i + size], actor, final=True),
                                     run.dry_run)
        await self._quietly(CompleteMigration(migration_id, attempt))
        log.info("migrations.completed", migration_id=migration_id)

    async def _progress(self, migration_id: str, attempt: int, batch: _Batch, dry_run: bool) -> None:
        if batch.migrated + batch.failed + batch.skipped == 0 and not batch.changes:
            return
        await self._quietly(RecordMigrationProgress(migration_id, attempt, batch.migrated, batch.failed,
                                                    batch.skipped, batch.errors, batch.changes))
        for outcome, n in (("migrated", batch.migrated), ("failed", batch.failed), ("skipped", batch.skipped)):
            self._count(outcome, n, dry_run)

    def _count(self, outcome: str, n: int, dry_run: bool = False) -> None:
        if self._metrics is not None and n:
            self._metrics.migration_blobs.labels(outcome, "true" if dry_run else "false").inc(n)

    async def _batch(self, run: Migration, chain: Chain, blob_ids: list[str], actor: str, final: bool,
                     written: set[str] | None = None) -> _Batch:
        """Read, transform, validate and (unless dry) write one batch of blobs. ``written``: blobs found on
        the target when the run was taken over; those this run wrote are recorded, the others left alone."""
        out = _Batch()
        blobs = await asyncio.gather(*(self._durably(lambda b=b: self._reads.blob(b)) for b in blob_ids))
        todo: list[Blob] = []
        for blob_id, blob in zip(blob_ids, blobs):
            if blob_id in run.changed:
                continue  # recorded by a previous attempt
            if (blob is not None and not blob.deleted and blob.schema_id == run.schema_id
                    and blob.migration_id == run.id_str and not run.dry_run):
                # written by another attempt of this run (one taken over, or still finishing a write) and
                # never recorded: its last change is that write (an edit or a move forgets the run)
                out.migrated += 1
                out.changes.append([blob_id, blob.version - 1, blob.version])
                continue
            if written and blob_id in written:
                continue  # on the target before this run: none of its business
            if blob is None or blob.deleted or blob.owner_id != run.owner_id:
                self._changed(out, blob_id, final)
            elif blob.schema_id == run.from_schema_id:
                todo.append(blob)
            else:
                self._changed(out, blob_id, final)
        results = await self._transform(chain, [b.data for b in todo])
        validating = asyncio.Semaphore(VALIDATIONS_AT_ONCE)  # a few at once: the API validates on the same pool

        async def check(result: Any) -> list[Any]:
            async with validating:
                return await self._durably(lambda: self._reads.check(chain.target, result))

        checks = await asyncio.gather(*(check(r) for r in results if not isinstance(r, SandboxError)))
        found = iter(checks)
        ready: list[tuple[Blob, Any]] = []
        for blob, result in zip(todo, results):
            if isinstance(result, SandboxError):
                out.failed += 1
                out.errors.append(migration_error(blob.id_str, "", str(result)))
                continue
            problems = next(found)
            if problems:
                out.failed += 1
                out.errors.extend(migration_error(blob.id_str, e.path, e.message) for e in problems[:ERRORS_PER_BLOB])
                continue
            ready.append((blob, result))
        if run.dry_run:
            out.migrated += len(ready)
            return out
        gate = asyncio.Semaphore(self._options.writes_at_once)

        async def write(blob: Blob, data: Any) -> None:
            command = WriteMigratedBlob(blob.id_str, blob.version, chain.target.id, data, run.id_str)
            ctx = Context(actor, blob_write_id(run.id_str, blob.id_str, blob.version, False))
            async with gate:
                try:
                    saved = await self._record(command, ctx)
                except (ConcurrencyError, NotFound):
                    self._changed(out, blob.id_str, final)
                    return
                except ValidationFailed as exc:  # too large for the log, or not storable
                    out.failed += 1
                    out.errors.extend(migration_error(blob.id_str, e.path, e.message)
                                      for e in (exc.errors or [])[:ERRORS_PER_BLOB])
                    return
            out.migrated += 1
            out.changes.append([blob.id_str, blob.version, saved.aggregate.version])

        await asyncio.gather(*(write(b, d) for b, d in ready))
        # what the run wrote counts against its owner's written bytes, as bodies would (one request
        # migrates thousands of blobs, and a transform may grow each to the blob limit)
        landed = {change[0] for change in out.changes}
        bytes_written = sum(encoded_size(data) for blob, data in ready if blob.id_str in landed)
        await billed(self._bill_written, run.owner_id, bytes_written, "migrated blobs")
        return out

    @staticmethod
    def _changed(out: _Batch, blob_id: str, final: bool) -> None:
        if final:
            out.skipped += 1
        else:
            out.again.append(blob_id)

    async def _transform(self, chain: Chain, documents: list[Any]) -> list[Any]:
        """Each step of the chain over every document still going, one sandbox call per step."""
        results: list[Any] = list(documents)
        for step in chain.steps:
            assert step.migration is not None
            going = [i for i, r in enumerate(results) if not isinstance(r, SandboxError)]
            if not going:
                break
            source = step.migration["transform"]
            if self._options.per_blob_sandbox_calls:
                outcomes = await asyncio.gather(*(self._call_one(source, results[i]) for i in going))
            else:
                outcomes = await self._durably(lambda s=source, g=going: self._sandbox.call_many(
                    s, MIGRATE_FUNCTION, [results[i] for i in g]))
            for i, outcome in zip(going, outcomes):
                if isinstance(outcome, SandboxError):
                    results[i] = SandboxError(f"the migration to {chain.target.name}@{step.version} failed: {outcome}")
                elif not isinstance(outcome, dict):
                    results[i] = SandboxError(f"the migration to {chain.target.name}@{step.version} returned "
                                              f"{_kind(outcome)}, not an object")
                else:
                    results[i] = outcome
        return results

    async def _call_one(self, source: str, document: Any) -> Any:
        try:
            return await self._durably(lambda: self._sandbox.call(source, MIGRATE_FUNCTION, document))
        except SandboxError as exc:
            return exc

    # -- a revert ----------------------------------------------------------------------------------

    async def _revert(self, run: Migration, runner_id: str, actor: str) -> None:
        migration_id = run.id_str
        started = (await self._quietly(StartRevert(migration_id, runner_id))).aggregate
        attempt = started.attempts
        items = [(b, v) for b, v in started.changed.items() if b not in started.revert_done]
        size = self._options.batch_size
        for i in range(0, len(items), size):
            reverted: list[str] = []
            skipped: list[str] = []
            sizes = await asyncio.gather(*(self._revert_one(started, b, before, after, actor, reverted, skipped)
                                           for b, (before, after) in items[i:i + size]))
            # a revert writes every blob back: one request, so it is charged like the run's writes
            await billed(self._bill_written, started.owner_id, sum(sizes), "reverted blobs")
            await self._quietly(RecordRevertProgress(migration_id, attempt, reverted, skipped))
            self._count("reverted", len(reverted))
            self._count("revert_skipped", len(skipped))
        await self._quietly(CompleteRevert(migration_id, attempt))
        log.info("migrations.reverted", migration_id=migration_id)

    async def _revert_one(self, run: Migration, blob_id: str, before: int, after: int, actor: str,
                          reverted: list[str], skipped: list[str]) -> int:
        """Put one blob back; the bytes written (0 when nothing was)."""
        blob = await self._durably(lambda: self._reads.blob(blob_id))
        if blob is None or blob.deleted:
            skipped.append(blob_id)
            return 0
        if blob.version == after + 1 and blob.migration_id == run.id_str and blob.schema_id == run.from_schema_id:
            reverted.append(blob_id)  # put back by a lost attempt of this revert
            return 0
        if blob.version != after:
            skipped.append(blob_id)  # changed since the run
            return 0
        previous = await self._durably(lambda: self._reads.blob_at(blob_id, before))
        if previous is None or previous.schema_id is None:
            skipped.append(blob_id)
            return 0
        command = WriteMigratedBlob(blob_id, after, previous.schema_id, previous.data, run.id_str, revert=True)
        try:
            await self._record(command, Context(actor, blob_write_id(run.id_str, blob_id, after, True)))
        except DomainError:
            skipped.append(blob_id)
            return 0
        reverted.append(blob_id)
        return encoded_size(previous.data)


def _age(run: Migration) -> float:
    return (datetime.now(timezone.utc) - run.modified_on).total_seconds()


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__

