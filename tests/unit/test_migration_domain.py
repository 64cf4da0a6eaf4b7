"""The migration run's transitions: who may record what, and what a revert may touch."""

from __future__ import annotations

import pytest

from domain.base import EventCodec
from domain.errors import Conflict, ValidationFailed
from domain.ids import new_id
from domain.migration import MAX_ERRORS, Migration, migration_error
from projections.changes import row_after
from projections.migrations import MigrationProjection


def _run(dry_run: bool = False) -> Migration:
    return Migration.request("owner", "p@2.0.0", "p@1.0.0", None, dry_run)


def test_a_run_goes_from_pending_to_completed_and_only_its_current_attempt_records() -> None:
    run = _run()
    run.start("a", 3)
    assert (run.status, run.attempts, run.total) == ("running", 1, 3)
    run.start("b", 99)  # a takeover: a new attempt, the total counted at the first start stays
    assert (run.attempts, run.total) == (2, 3)
    with pytest.raises(Conflict):
        run.progress(1, 1, 0, 0, [], [])  # the attempt that was taken over
    blob = new_id()
    run.progress(2, 1, 1, 1, [migration_error(new_id(), "/x", "bad")], [[blob, 1, 2]])
    assert (run.migrated, run.failed, run.skipped, run.changed) == (1, 1, 1, {blob: (1, 2)})
    run.complete(2)
    assert run.status == "completed"
    with pytest.raises(Conflict):
        run.start("c", 3)


def test_errors_are_kept_up_to_a_bound_and_messages_are_bounded() -> None:
    run = _run()
    run.start("a", 500)
    errors = [migration_error(new_id(), "", "x" * 10_000) for _ in range(150)]
    run.progress(1, 0, 150, 0, errors, [])
    assert len(run.errors) == MAX_ERRORS and run.failed == 150
    assert all(len(e["message"]) <= 500 for e in run.errors)
    with pytest.raises(ValidationFailed):
        run.progress(1, 600, 0, 0, [], [])  # more than a batch


def test_only_a_completed_real_run_is_reverted_once() -> None:
    dry = _run(dry_run=True)
    dry.start("a", 0)
    dry.complete(1)
    with pytest.raises(Conflict):
        dry.request_revert()
    run = _run()
    with pytest.raises(Conflict):
        run.request_revert()  # pending
    run.start("a", 2)
    a, b = new_id(), new_id()
    run.progress(1, 2, 0, 0, [], [[a, 1, 2], [b, 3, 4]])
    run.complete(1)
    run.request_revert()
    assert run.status == "reverting"
    run.start_revert("r")
    run.revert_progress(2, [a], [b])
    run.complete_revert(2)
    assert (run.status, run.reverted, run.revert_skipped, run.revert_skipped_ids) == ("reverted", 1, 1, [b])
    with pytest.raises(Conflict):
        run.request_revert()


def test_the_projection_folds_a_runs_history_into_its_row() -> None:
    codec = EventCodec([Migration])
    run = _run()
    run.start("a", 2)
    run.progress(1, 1, 1, 0, [migration_error(new_id(), "/age", "bad")], [[new_id(), 1, 2]])
    run.complete(1)
    records = [codec.encode(e, actor=None) for e in run.collect_events()]
    from domain.recorded import Recorded

    recorded = [Recorded(position=i + 1, aggregate_type="migration", aggregate_id=run.id_str, type=r.type,
                         version=r.version, at=r.at, data=r.data, class_version=r.class_version)
                for i, r in enumerate(records)]
    row = row_after(MigrationProjection(), recorded)
    assert row is not None
    assert (row["status"], row["total"], row["migrated"], row["failed"], len(row["errors"])) == ("completed", 2, 1, 1, 1)
    assert row["started_at"] is not None and row["finished_at"] is not None


def test_a_revert_counts_its_own_attempts_and_a_stopped_one_can_be_asked_again() -> None:
    codec = EventCodec([Migration])
    run = _run()
    for runner in "abcde":  # the run needed every attempt it had
        run.start(runner, 2)
    a, b = new_id(), new_id()
    run.progress(5, 2, 0, 0, [], [[a, 1, 2], [b, 3, 4]])
    run.complete(5)
    run.request_revert()
    assert (run.attempts, run.revert_attempts) == (5, 0), "the revert's attempts start at its request"
    run.start_revert("r1")
    run.revert_progress(6, [a], [])
    run.start_revert("r2")  # the first was lost
    assert run.revert_attempts == 2
    with pytest.raises(Conflict):
        run.stop_revert("stale", 6)  # only the current attempt stops it
    run.stop_revert("x" * 1000, 7)
    assert (run.status, run.reverted, run.revert_done) == ("completed", 1, {a})
    stopped_error = run.error
    assert stopped_error is not None and len(stopped_error) <= 500
    with pytest.raises(Conflict):
        run.stop_revert("again", 7)  # not reverting any more

    run.request_revert()  # asked again: it goes on from where it stopped
    assert (run.status, run.error, run.revert_started, run.revert_attempts) == ("reverting", None, False, 0)
    assert run.revert_run == 2, "its work message says which request it is"
    with pytest.raises(Conflict):
        run.revert_progress(7, [b], [])  # the stopped revert's last attempt: fenced off until a new one starts
    with pytest.raises(Conflict):
        run.complete_revert(7)
    run.start_revert("r3")
    run.revert_progress(8, [b], [])
    run.complete_revert(8)
    assert (run.status, run.reverted) == ("reverted", 2)

    from domain.recorded import Recorded

    records = [codec.encode(e, actor=None) for e in run.collect_events()]
    recorded = [Recorded(position=i + 1, aggregate_type="migration", aggregate_id=run.id_str, type=r.type,
                         version=r.version, at=r.at, data=r.data, class_version=r.class_version)
                for i, r in enumerate(records)]
    stopped_at = next(i for i, r in enumerate(recorded) if r.type == "Migration.RevertStopped")
    row = row_after(MigrationProjection(), recorded[: stopped_at + 1])
    assert row is not None and (row["status"], row["reverted"]) == ("completed", 1)
    assert row["error"] == stopped_error
    again = row_after(MigrationProjection(), recorded[: stopped_at + 2])
    assert again is not None and (again["status"], again["error"]) == ("reverting", None)
    done = row_after(MigrationProjection(), recorded)
    assert done is not None and (done["status"], done["reverted"], done["error"]) == ("reverted", 2, None)


def test_a_revert_request_recorded_before_it_could_be_asked_again_folds_as_the_first() -> None:
    """``RevertRequested`` gained ``run`` (class version 2): one recorded before has no ``run`` and is
    the first request; its work message, redelivered, carries none either (the runner reads 1)."""
    import dataclasses

    from domain.recorded import Recorded

    codec = EventCodec([Migration])
    run = _run()
    run.start("a", 0)
    run.complete(1)
    run.request_revert()
    recorded = []
    for i, event in enumerate(run.collect_events()):
        r = codec.encode(event, actor=None)
        rec = Recorded(position=i + 1, aggregate_type="migration", aggregate_id=run.id_str, type=r.type,
                       version=r.version, at=r.at, data=r.data, class_version=r.class_version)
        if rec.type == "Migration.RevertRequested":
            assert rec.class_version == 2 and rec.data["run"] == 1
            rec = dataclasses.replace(rec, data={"owner_id": "owner"}, class_version=1)  # as written before
        recorded.append(rec)
    folded = None
    for rec in recorded:
        event = codec.decode(rec)
        folded = event.mutate(folded)
    assert folded is not None and (folded.status, folded.revert_run) == ("reverting", 1)
