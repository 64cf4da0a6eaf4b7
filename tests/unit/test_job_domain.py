"""The job state machine and the processor's rules, pure."""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.base import EventCodec, InkAggregate
from domain.errors import Conflict, DomainError, ValidationFailed
from domain.ids import hashed_id, new_id
from domain.job import FULL_BUDGET, MAX_DEPTH, MAX_ERROR_MESSAGE, OVER_BUDGET, Job, job_error
from domain.snapshot import Taken, restore, take
from domain.processor import Processor, check_limits, check_triggers
from domain.recorded import Recorded
from projections.changes import row_after
from projections.jobs import JobProjection

CODEC = EventCodec([Job, Processor])
OUT = new_id()
BOOM = {"code": "sandbox_error", "message": "boom"}


def new_job(**kwargs: Any) -> Job:
    return Job.request(new_id(), new_id(), 1, "js-transform", new_id(), 1, **kwargs)


def records_of(aggregate: InkAggregate, log: list[Recorded]) -> None:
    for event in aggregate.collect_events():
        encoded = CODEC.encode(event, actor=None)
        log.append(Recorded(len(log) + 1, aggregate.TYPE, aggregate.id_str, encoded.type, encoded.version,
                            datetime.now(timezone.utc), copy.deepcopy(encoded.data), encoded.class_version))


def test_a_job_runs_pending_running_completed() -> None:
    job = new_job()
    assert (job.status, job.attempts, job.run) == ("pending", 0, 1)
    job.start("r1")
    assert (job.status, job.attempts, job.runner) == ("running", 1, "r1")
    output = new_id()
    job.complete(1, output)
    assert (job.status, job.output_blob_id, job.finished) == ("completed", output, True)
    with pytest.raises(Conflict):
        job.cancel()
    with pytest.raises(Conflict):
        job.retry()
    with pytest.raises(Conflict):
        job.start("r2")


def test_a_failed_attempt_leaves_the_job_pending_and_only_its_attempt_may_record_an_outcome() -> None:
    job = new_job()
    job.start("r1")
    job.attempt_failed(1, BOOM, 1.0)
    assert (job.status, job.attempts, job.last_error, job.error) == ("pending", 1, BOOM, None)
    job.start("r1")
    with pytest.raises(Conflict):
        job.complete(1, new_id())  # attempt 1 is over: its result cannot land
    job.fail(BOOM, 2)
    assert (job.status, job.error) == ("failed", BOOM)


def test_a_start_on_a_running_job_takes_over_the_abandoned_attempt() -> None:
    job = new_job()
    job.start("r1")
    job.start("r2")
    assert (job.status, job.attempts, job.runner) == ("running", 2, "r2")
    events = job.collect_events()
    assert CODEC.encode(events[-1], actor=None).data["recovered_attempt"] == 1


def test_retry_opens_a_new_run_with_a_fresh_budget_and_the_same_versions() -> None:
    job = new_job()
    job.start("r")
    job.fail(BOOM, 1)
    job.retry()
    assert (job.status, job.run, job.attempts, job.run_attempts, job.error) == ("pending", 2, 1, 0, None)
    assert (job.processor_version, job.input_version) == (1, 1)
    job.cancel()
    job.retry()
    assert job.run == 3


def test_a_chain_too_deep_fails_before_any_attempt() -> None:
    job = new_job(depth=9)
    assert job.chain_too_deep
    job.fail(job_error("chain_too_deep", "too deep"))
    assert (job.status, job.attempts) == ("failed", 0)
    with pytest.raises(ValidationFailed):
        new_job(depth=10)


def test_a_job_carries_its_chains_budget_and_one_over_it_fails_before_any_attempt() -> None:
    assert (new_job().budget, new_job().spawn_budget) == (FULL_BUDGET, FULL_BUDGET)  # a user's: the full budget
    assert (new_job(depth=2, budget=3).spawn_budget, new_job(budget=0).over_budget) == (3, False)
    refused = new_job(depth=2, budget=OVER_BUDGET)
    assert refused.over_budget and refused.spawn_budget == 0
    refused.fail(job_error("chain_too_deep", "budget spent"))
    assert (refused.status, refused.attempts) == ("failed", 0)
    for bad in (OVER_BUDGET - 1, FULL_BUDGET + 1, None, True, "3", 2.0):
        with pytest.raises(ValidationFailed):
            new_job(budget=bad)


def test_the_budget_is_in_the_requested_event_class_version_2() -> None:
    job = new_job(depth=1, budget=4)
    log: list[Recorded] = []
    records_of(job, log)
    assert (log[0].class_version, log[0].data["budget"]) == (2, 4)
    rebuilt: Any = CODEC.rebuild(log)
    assert (rebuilt.budget, rebuilt.spawn_budget, rebuilt.over_budget) == (4, 4, False)


def test_a_version_1_requested_event_is_upcast_to_no_budget_which_leaves_what_the_depth_limit_left() -> None:
    """A job requested before budgets existed: its ``Requested`` (class version 1) has no
    ``budget``. It reads as None, and its output may trigger ``MAX_DEPTH - depth`` jobs below it."""
    job_id = new_id()
    data = {"owner_id": new_id(), "processor_id": new_id(), "processor_version": 1, "processor_type": "js-transform",
            "input_blob_id": new_id(), "input_version": 1, "trigger": None, "depth": 3}
    at = datetime.now(timezone.utc)
    v1 = Recorded(1, "job", job_id, "Job.Requested", 1, at, copy.deepcopy(data), class_version=1)
    assert CODEC.upcast(v1).data == {**data, "budget": None} and CODEC.upcast(v1).class_version == 2
    old: Any = CODEC.rebuild([v1, Recorded(2, "job", job_id, "Job.Started", 2, at,
                                           {"attempt": 1, "run": 1, "runner": "r", "recovered_attempt": None})])
    assert (old.budget, old.depth, old.status, old.over_budget) == (None, 3, "running", False)
    assert old.spawn_budget == MAX_DEPTH - 3
    old.complete(1, OUT)  # an old job still runs to its end
    assert old.status == "completed"
    assert row_after(JobProjection(), [v1]) is not None  # and projects as before
    # a snapshot of it taken before budgets existed has no budget either
    taken = take(CODEC.rebuild([v1]), v1)  # type: ignore[arg-type]
    assert taken is not None
    state = {k: v for k, v in taken.state.items() if k != "budget"}
    restored = restore(Job, job_id, Taken(taken.position, taken.version, taken.command_id, state))
    assert (restored.budget, restored.spawn_budget) == (None, MAX_DEPTH - 3)


def test_a_triggered_job_has_the_derived_id() -> None:
    job_id = hashed_id("job-trigger", "p:42")
    trigger = {"on": "blob.created", "blob_id": new_id(), "position": 42}
    assert new_job(job_id=job_id, trigger=trigger, depth=1).id == job_id
    for bad in ({"on": "blob.created"}, {**trigger, "position": 2**63}, {**trigger, "on": "blob.moved"}):
        with pytest.raises(ValidationFailed):
            new_job(trigger=bad, depth=1)


def test_errors_are_bounded_storable_and_coded() -> None:
    error = job_error("nonsense", "a\x00b\ud800" + "x" * 5000)
    assert error["code"] == "internal" and "\x00" not in error["message"] and "\ud800" not in error["message"]
    assert len(error["message"]) == MAX_ERROR_MESSAGE
    job = new_job()
    job.start("r\x00")
    with pytest.raises(ValidationFailed):
        job.attempt_failed(1, BOOM, float("nan"))
    job.attempt_failed(1, "not a dict", 1)
    assert job.last_error == {"code": "internal", "message": "not a dict"}


def test_limits_default_merge_and_stay_in_range() -> None:
    assert check_limits(None) == {"timeout_seconds": 30, "max_attempts": 5, "max_memory_mb": 64}
    assert check_limits({"max_attempts": 2}, {"timeout_seconds": 5, "max_attempts": 3, "max_memory_mb": 64}) == {
        "timeout_seconds": 5, "max_attempts": 2, "max_memory_mb": 64}
    for bad in ({"timeout_seconds": 0}, {"timeout_seconds": 3601}, {"max_attempts": True}, {"max_attempts": 2**40},
                {"max_memory_mb": 1.5}, {"retries": 1}):
        with pytest.raises(ValidationFailed):
            check_limits(bad)


def test_triggers_are_normalised_and_checked() -> None:
    bucket = new_id()
    assert check_triggers([{"on": "blob.created", "bucket_id": bucket}]) == [
        {"on": "blob.created", "bucket_id": bucket, "schema_id": None}]
    for bad in ([{"on": "blob.moved"}], [{"on": "blob.created", "bucket_id": "x"}], ["x"],
                [{"on": "blob.created", "extra": 1}], [{"on": "blob.created"}] * 17):
        with pytest.raises(ValidationFailed):
            check_triggers(bad)


def test_a_processor_update_keeps_what_is_not_given() -> None:
    processor = Processor.register(new_id(), "p", "js-transform", None, None, {"source": "a"}, [],
                                   check_limits(None))
    processor.update(limits=check_limits({"max_attempts": 1}))
    assert processor.config == {"source": "a"} and processor.limits["max_attempts"] == 1
    assert processor.version == 2
    with pytest.raises(ValidationFailed):
        processor.update()
    processor.delete()
    with pytest.raises(DomainError):
        processor.update(config={"source": "b"})


steps = st.lists(st.sampled_from(["start", "fail_attempt", "complete", "fail", "cancel", "retry"]), max_size=25)


@settings(max_examples=200, deadline=None)
@given(steps)
def test_the_projection_of_any_history_agrees_with_the_aggregate(plan: list[str]) -> None:
    log: list[Recorded] = []
    job = new_job()
    records_of(job, log)
    for step in plan:
        try:
            if step == "start":
                job.start("r")
            elif step == "fail_attempt":
                job.attempt_failed(job.attempts, BOOM, 0.5)
            elif step == "complete":
                job.complete(job.attempts, OUT)
            elif step == "fail":
                job.fail(BOOM, job.attempts if job.status == "running" else None)
            elif step == "cancel":
                job.cancel()
            else:
                job.retry()
        except DomainError:
            assert not job.collect_events()  # a refused command records nothing
            continue
        records_of(job, log)
        assert job.status != "completed" or job.error is None
    row = row_after(JobProjection(), log)
    assert row is not None
    assert (row["status"], row["attempts"], row["output_blob_id"], row["error"]) == (
        job.status, job.attempts, job.output_blob_id, job.error)
    assert CODEC.rebuild(log).__dict__.keys() == job.__dict__.keys()
    assert (row["finished_at"] is not None) == job.finished
