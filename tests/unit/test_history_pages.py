"""What reads a whole aggregate history reads it a bounded batch at a time, never as one list.

A job's history is its owner's to make long (cancel and retry, over and over, each failed
attempt's error up to 2000 characters); a migration run records a progress event per batch of
the owner's blobs, with the blobs it changed and its errors. The command answers of both, the
runner's look at a running job and ``inkstream audit`` read such histories: each is checked here
through the watching store of ``test_repository_folds`` (every read bounded in bytes, no record
of an earlier batch alive when the next is read) and compared with what the one-list read gave.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.table import Table

from adapters.cli.audit import COLUMNS, _json_line, _row, print_history
from commands.job_runs import JobReads
from commands.repository import Repository
from domain.base import InkAggregate
from domain.blob import Blob
from domain.errors import DomainError
from domain.ids import new_id
from domain.job import Job
from domain.migration import Migration
from projections.changes import row_after
from projections.documents import JobOut, MigrationOut
from projections.jobs import JobProjection
from projections.migrations import MigrationProjection
from tests.support.memory_store import MemoryEventStore
from tests.unit.test_repository_folds import BATCH, CODEC, KIB, OWNER, WatchingStore, ctx, long_blob

A = Any


def acting(change: Callable[[Any], object]) -> Callable[[InkAggregate | None], InkAggregate]:
    def decide(current: InkAggregate | None) -> InkAggregate:
        assert current is not None
        change(current)
        return current

    return decide


async def new_job(repo: Repository) -> str:
    created = await repo.execute(Job, None, lambda _: Job.request(OWNER, new_id(), 1, "js-transform", new_id(), 1),
                                 ctx())
    return created.aggregate.id_str


JOB_STEPS: dict[str, Callable[[Job, int], object]] = {
    "start": lambda job, _: job.start("runner-1"),
    "attempt_failed": lambda job, size: job.attempt_failed(job.attempts, {"code": "internal", "message": "e" * size},
                                                           1.5),
    "fail": lambda job, size: job.fail({"code": "timeout", "message": "f" * size}, job.attempts),
    "complete": lambda job, _: job.complete(job.attempts, new_id()),
    "cancel": lambda job, size: job.cancel("c" * min(size, 200)),
    "retry": lambda job, _: job.retry(),
}


async def long_job(store: MemoryEventStore, cycles: int) -> str:
    """A job its owner cancelled and retried ``cycles`` times, each attempt failing with a long error."""
    repo = Repository(store, CODEC)
    job_id = await new_job(repo)
    for _ in range(cycles):
        for step in ("start", "attempt_failed", "cancel", "retry"):
            await repo.execute(Job, job_id, acting(lambda job, s=step: JOB_STEPS[s](job, 2000)), ctx())
    return job_id


async def whole(store: MemoryEventStore, aggregate_type: str, aggregate_id: str, until: int | None = None) -> list[A]:
    """What ``Repository.history`` answered: every event, as one list (read around the watching)."""
    return await MemoryEventStore.load(store, aggregate_type, aggregate_id, until_position=until)


async def test_a_job_answer_on_a_long_history_reads_none_of_it() -> None:
    """A job cancelled and retried over and over: a command's answer is the job the command saved, as
    the jobs projection would show it after the whole history, without reading that history."""
    store = WatchingStore()
    job_id = await long_job(store, cycles=40)  # 161 events, ~90 KiB
    writer = Repository(store, CODEC)
    await writer.get_and_keep(Job, job_id)
    store.watch()
    saved = await writer.execute(Job, job_id, acting(lambda job: job.start("runner-2")), ctx())
    answer = JobOut.from_aggregate(saved.aggregate, saved.position)
    assert sum(load["count"] for load in store.loads) == 0, "from the cached job, no history read"
    records = await whole(store, Job.TYPE, job_id)
    assert answer == JobOut.model_validate(row_after(JobProjection(), records))
    assert answer.status == "running" and answer.attempts == 41 and answer.started_at == records[-1].at


async def test_a_migration_answer_after_many_progress_events_is_folded_from_bounded_batches() -> None:
    """A revert's answer follows every progress event of the run: one per batch of blobs, each with
    the blobs it changed (up to 500) and, while fewer than 100 are kept, its errors."""
    store = WatchingStore()
    repo = Repository(store, CODEC)
    run = await repo.execute(Migration, None,
                             lambda _: Migration.request(OWNER, "notes@2.0.0", "notes@1.0.0", None, False), ctx())
    run_id = run.aggregate.id_str
    await repo.execute(Migration, run_id, acting(lambda m: m.start("runner-1", 6000)), ctx())
    for batch in range(12):
        changes = [[new_id(), 1, 2] for _ in range(480)]
        errors = [{"blob_id": new_id(), "path": "/title", "message": "m" * 400} for _ in range(10)]
        await repo.execute(Migration, run_id, acting(lambda m, c=changes, e=errors: m.progress(1, 480, 10, 10, e, c)),
                           ctx())
    await repo.execute(Migration, run_id, acting(lambda m: m.complete(1)), ctx())
    reverted = await repo.execute(Migration, run_id, acting(lambda m: m.request_revert()), ctx())
    records = await whole(store, Migration.TYPE, run_id)
    assert sum(r.size for r in records) > 6 * BATCH

    reader = Repository(store, CODEC, fold_bytes=BATCH)
    store.watch()
    answer = await MigrationOut.from_pages(reader.pages(Migration.TYPE, run_id, until_position=reverted.position))
    store.assert_bounded(BATCH)
    assert len(store.loads) >= 6
    assert answer == MigrationOut.model_validate(row_after(MigrationProjection(), records))
    assert (answer.status, answer.migrated, len(answer.errors)) == ("reverting", 12 * 480, 100)


@st.composite
def job_histories(draw: st.DrawFn) -> list[tuple[str, int]]:
    return draw(st.lists(st.tuples(st.sampled_from(sorted(JOB_STEPS)), st.integers(0, 2000)), max_size=40))


@settings(max_examples=60, deadline=None)
@given(steps=job_histories(), batch=st.integers(1, 6000), cut=st.integers(0, 60))
def test_a_job_answer_from_its_aggregate_is_the_projections_row(steps, batch, cut) -> None:  # type: ignore[no-untyped-def]
    asyncio.run(_compare_job(steps, batch, cut))


async def _compare_job(steps: list[tuple[str, int]], batch: int, cut: int) -> None:
    """After every command, and at any past position (a retried command's answer), the job's answer
    from its aggregate is what the jobs projection makes of the history up to there."""
    store = MemoryEventStore()
    writer = Repository(store, CODEC)
    job_id = await new_job(writer)
    for step, size in steps:
        if step == "start" and size % 3 == 0:  # another job's events between this one's
            await new_job(writer)
        try:
            saved = await writer.execute(Job, job_id, acting(lambda job, s=step, n=size: JOB_STEPS[s](job, n)), ctx())
        except DomainError:
            continue
        history = await whole(store, Job.TYPE, job_id)
        assert JobOut.from_aggregate(saved.aggregate, saved.position) == JobOut.model_validate(
            row_after(JobProjection(), history)), step
    records = await whole(store, Job.TYPE, job_id)
    until = records[min(cut, len(records) - 1)].position
    past = await Repository(store, CODEC, fold_bytes=batch).get(Job, job_id, until_position=until)
    assert past is not None
    assert JobOut.from_aggregate(past.aggregate, past.position) == JobOut.model_validate(
        row_after(JobProjection(), [r for r in records if r.position <= until]))


async def test_a_running_attempt_looks_at_its_job_without_reading_its_history_again() -> None:
    """The runner's look, every watch interval, at whether its attempt is still the job's: the job
    folded once in bounded batches, then one look at the log's end while nothing changed."""
    store = WatchingStore()
    job_id = await long_job(store, cycles=20)
    writer = Repository(store, CODEC)
    started = await writer.execute(Job, job_id, acting(lambda job: job.start("runner-1")), ctx())
    reads = JobReads(Repository(store, CODEC, fold_bytes=BATCH // 8), schemas=None)  # type: ignore[arg-type]
    store.watch()
    first = await reads.job_now(job_id)
    assert first is not None and (first.status, first.attempts) == ("running", started.aggregate.attempts)
    store.assert_bounded(BATCH // 8)
    loads = len(store.loads)
    for _ in range(5):
        assert await reads.job_now(job_id) is first
    assert len(store.loads) == loads, "nothing read while nothing changed"
    await writer.execute(Job, job_id, acting(lambda job: job.cancel()), ctx())
    now = await reads.job_now(job_id)
    assert now is not None and now.status == "cancelled"
    store.assert_bounded(BATCH // 8)


def _old_table(records: list[A], title: str, width: int) -> str:
    """What ``inkstream audit`` printed before: one table of every event."""
    console = Console(file=io.StringIO(), width=width)
    table = Table(title=title)
    for column in COLUMNS:
        table.add_column(column, overflow="fold")
    for r in records:
        table.add_row(*_row(r))
    console.print(table)
    return console.file.getvalue()  # type: ignore[attr-defined]


async def test_audit_prints_a_long_history_as_it_reads_it_in_bounded_batches() -> None:
    store = WatchingStore()
    blob_id, _ = await long_blob(store, updates=120, size=10 * KIB)
    records = await whole(store, Blob.TYPE, blob_id)

    store.watch()
    out, progress = Console(file=io.StringIO(), width=160), Console(file=io.StringIO(), width=100)
    printed = await print_history(store, Blob.TYPE, blob_id, title="blob b", as_json=True, out=out,
                                  progress=progress, max_bytes=BATCH)
    store.assert_bounded(BATCH)
    assert printed == len(records) and len(store.loads) >= 15
    lines = out.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert lines == [_json_line(r) for r in records], "the same lines as before"
    assert [orjson.loads(line)["position"] for line in lines] == [r.position for r in records]
    assert f"{len(records)} events" in progress.file.getvalue()  # type: ignore[attr-defined]

    store.watch()
    out = Console(file=io.StringIO(), width=160)
    assert await print_history(store, Blob.TYPE, blob_id, title="blob b", as_json=False, out=out,
                               max_bytes=BATCH) == len(records)
    store.assert_bounded(BATCH)
    table = out.file.getvalue().splitlines()  # type: ignore[attr-defined]
    old = _old_table(records, "blob b", 160).splitlines()
    assert table == old, "rows of the same width: the very table printed before"

    store.watch()  # one batch: exactly as before, whatever the widths
    short, _ = await long_blob(store, updates=3, size=10)
    out = Console(file=io.StringIO(), width=100)
    await print_history(store, Blob.TYPE, short, title="blob s", as_json=False, out=out)
    assert out.file.getvalue() == _old_table(await whole(store, Blob.TYPE, short), "blob s", 100)  # type: ignore[attr-defined]
    assert await print_history(store, Blob.TYPE, new_id(), title="none", as_json=False, out=out) == 0


async def test_audit_continues_one_table_when_later_batches_hold_wider_cells() -> None:
    store = MemoryEventStore()
    repo = Repository(store, CODEC)
    created = await repo.execute(Blob, None, lambda _: Blob.create(OWNER, {"n": 0}, None, None, []), ctx())
    blob_id = created.aggregate.id_str
    for n in range(30):
        await repo.execute(Blob, blob_id, acting(lambda b, n=n: b.update({"n": n, "pad": "x" * (n * 8)})), ctx())
    records = await whole(store, Blob.TYPE, blob_id)
    out = Console(file=io.StringIO(), width=120)
    await print_history(store, Blob.TYPE, blob_id, title="blob w", as_json=False, out=out, max_bytes=400)
    lines = out.file.getvalue().splitlines()  # type: ignore[attr-defined]
    edges = [line for line in lines if line.startswith(("┏", "┡", "└"))]
    assert [e[0] for e in edges] == ["┏", "┡", "└"], "one top edge, one header rule, one bottom edge"
    assert len({len(line) for line in lines[1:]}) == 1, "every line of the table as wide"
    assert sum(1 for line in lines if "┃ position" in line) == 1, "one header"
    cells = [line.split("│")[1].strip() for line in lines if line.startswith("│")]
    assert [c for c in cells if c] == [str(r.position) for r in records], "every event once, in order"
