"""Migration runs: many of a user's blobs moved from one schema version to another, as a job.

``pending`` → ``running`` → ``completed`` | ``failed``; a completed real run
may then be reverted: ``reverting`` → ``reverted``.

* A run is *requested* for the blobs of its owner on ``from_schema_id``
  (``name@from_version``), optionally within one bucket and its sub-buckets,
  towards ``schema_id`` (same name, a version reachable by the registered
  transforms). ``dry_run`` (the default) transforms and validates everything
  and writes nothing.
* A runner *starts* it (``attempt`` counts every start; a start on a running
  run is a takeover after its runner was lost) with the number of blobs it
  found, records *progress* once per batch (cumulative counts, the errors
  kept so far when they changed, and which blobs this batch changed, from
  which version to which), and ends it with one outcome.
* Revert is requested by the owner on a completed real run; the runner puts
  back every blob the run changed that nobody changed since, records progress
  the same way, and ends it with ``RevertCompleted``. A revert has its own
  ``MAX_ATTEMPTS`` (counted from its request, not from the run's first start):
  when they are used up it is *stopped* (``RevertStopped``), and the run is
  ``completed`` again with an ``error`` saying so, so that its owner can ask
  for the revert again; the blobs already put back stay done.

Progress is one event per batch, never one per blob: the blobs' own
``Blob.Migrated`` events are the per-blob record.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import event

from domain.base import InkAggregate
from domain.errors import Conflict, FieldError, ValidationFailed, unstorable_reason
from domain.ids import is_id
from domain.schema import parse_schema_id

PENDING, RUNNING, COMPLETED, FAILED = "pending", "running", "completed", "failed"
REVERTING, REVERTED = "reverting", "reverted"
STATUSES = (PENDING, RUNNING, COMPLETED, FAILED, REVERTING, REVERTED)

MAX_ERRORS = 100
"""Errors a run keeps (the first ones); the counts go on."""
MAX_ERROR_MESSAGE = 500
MAX_SKIPPED_LISTED = 100
"""Blob ids a revert lists as skipped (the first ones); ``revert_skipped`` counts all."""
MAX_BATCH = 500
"""The most blobs one progress event may cover."""
MAX_NOTE = 200


def _text(value: object, limit: int) -> str:
    text = "".join(ch if unstorable_reason(ch) is None else "\ufffd" for ch in str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def migration_error(blob_id: str, path: object, message: object) -> dict[str, str]:
    """``{blob_id, path, message}``, bounded and storable (the message may quote user code)."""
    return {"blob_id": blob_id, "path": _text(path, MAX_NOTE), "message": _text(message, MAX_ERROR_MESSAGE)}


def _fail(errors: list[FieldError]) -> None:
    if errors:
        raise ValidationFailed("; ".join(f"{e.path}: {e.message}" for e in errors), errors)


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 2**31 - 1


def _conflict(run: Migration, action: str) -> Conflict:
    return Conflict(f"migration {run.id_str} is {run.status}; it cannot be {action}")


class Migration(InkAggregate):
    TYPE = "migration"

    @classmethod
    def request(cls, owner_id: str, schema_id: str, from_schema_id: str, bucket_id: str | None,
                dry_run: bool) -> Migration:
        """The handler has checked the schemas, the chain between them and the bucket."""
        errors: list[FieldError] = []
        for path, value in (("/schema_id", schema_id), ("/from_version", from_schema_id)):
            try:
                _, version = parse_schema_id(value)
            except ValueError:
                version = None
            if version is None:
                errors.append(FieldError(path, "must name a schema version"))
        if bucket_id is not None and not is_id(bucket_id):
            errors.append(FieldError("/bucket_id", "must be a bucket id"))
        if not isinstance(dry_run, bool):
            errors.append(FieldError("/dry_run", "must be a boolean"))
        _fail(errors)
        return cls(owner_id=owner_id, schema_id=schema_id, from_schema_id=from_schema_id, bucket_id=bucket_id,
                   dry_run=dry_run)

    @event("Requested")
    def __init__(self, owner_id: str, schema_id: str, from_schema_id: str, bucket_id: str | None,
                 dry_run: bool) -> None:
        self.owner_id = owner_id
        self.schema_id = schema_id
        self.from_schema_id = from_schema_id
        self.bucket_id = bucket_id
        self.dry_run = dry_run
        self.status = PENDING
        self.attempts = 0
        self.total = 0
        self.migrated = 0
        self.failed = 0
        self.skipped = 0
        self.errors: list[dict[str, str]] = []
        self.changed: dict[str, tuple[int, int]] = {}  # blob id -> (version read, version written)
        self.error: str | None = None
        self.reverted = 0
        self.revert_skipped = 0
        self.revert_skipped_ids: list[str] = []
        self.revert_done: set[str] = set()  # blobs the revert has dealt with (put back or skipped)
        self.revert_started = False
        self.revert_from = 0  # ``attempts`` when the revert was requested: its own attempts count from there
        self.revert_run = 0  # how many times the revert was requested
        self.deleted = False  # runs are never deleted; ``changeable`` reads it

    @property
    def revert_attempts(self) -> int:
        """Starts of the revert requested last (a run that used every attempt can still be reverted)."""
        return self.attempts - self.revert_from

    @property
    def finished(self) -> bool:
        return self.status in (COMPLETED, FAILED, REVERTED)

    # -- the runner ------------------------------------------------------------------------------

    def start(self, runner: str, total: int) -> None:
        """Begin (or take over, on a running run) the run; ``total`` is counted at the first start."""
        if self.status not in (PENDING, RUNNING):
            raise _conflict(self, "started")
        if not _count(total):
            _fail([FieldError("/total", "must be a count")])
        self._started(attempt=self.attempts + 1, runner=_text(runner, MAX_NOTE),
                      total=total if self.status == PENDING else self.total)

    @event("Started")
    def _started(self, attempt: int, runner: str, total: int) -> None:
        self.status = RUNNING
        self.attempts = attempt
        self.total = total

    def progress(self, attempt: int, migrated: int, failed: int, skipped: int,
                 errors: list[dict[str, str]], changes: list[list[Any]]) -> None:
        """One batch: counts added, its errors (kept while fewer than ``MAX_ERRORS``), the blobs it changed."""
        self._ensure(attempt, RUNNING, "progressed")
        self._check_batch(migrated, failed, skipped, changes)
        room = MAX_ERRORS - len(self.errors)
        kept = [migration_error(e["blob_id"], e["path"], e["message"]) for e in errors[: max(room, 0)]]
        self._progressed(migrated=self.migrated + migrated, failed=self.failed + failed,
                         skipped=self.skipped + skipped, errors=self.errors + kept if kept else None,
                         changes=[list(c) for c in changes])

    @event("Progressed")
    def _progressed(self, migrated: int, failed: int, skipped: int, errors: list[dict[str, str]] | None,
                    changes: list[list[Any]]) -> None:
        self.migrated, self.failed, self.skipped = migrated, failed, skipped
        if errors is not None:
            self.errors = [dict(e) for e in errors]
        for blob_id, before, after in changes:
            self.changed[blob_id] = (before, after)

    def complete(self, attempt: int) -> None:
        self._ensure(attempt, RUNNING, "completed")
        self._completed(attempt=attempt)

    @event("Completed")
    def _completed(self, attempt: int) -> None:
        self.status = COMPLETED

    def fail(self, error: object, attempt: int | None = None) -> None:
        if self.status not in (PENDING, RUNNING) or (attempt is not None and attempt != self.attempts):
            raise _conflict(self, "failed")
        self._failed(attempt=attempt, error=_text(error, MAX_ERROR_MESSAGE))

    @event("Failed")
    def _failed(self, attempt: int | None, error: str) -> None:
        self.status = FAILED
        self.error = error

    # -- revert ---------------------------------------------------------------------------------

    def request_revert(self) -> None:
        """Only a completed real run is reverted, once (asked again after a revert was stopped, it goes on)."""
        if self.dry_run:
            raise Conflict(f"migration {self.id_str} was a dry run; it changed nothing to revert")
        if self.status != COMPLETED:
            raise _conflict(self, "reverted")
        self._revert_requested(owner_id=self.owner_id, run=self.revert_run + 1)

    class RevertRequested(InkAggregate.Event):
        """``run``: which request of the revert this is (a stopped revert may be asked again). It is
        the revert's work message, so a runner tells a message of an earlier request (redelivered
        after its answer was lost) from the current one, as a job's ``run`` does."""

        class_version = 2
        owner_id: str
        run: int

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["run"] = 1  # before a revert could be asked again, there was one

    @event(RevertRequested)
    def _revert_requested(self, owner_id: str, run: int) -> None:
        self.status = REVERTING
        self.error = None
        self.revert_run = run
        self.revert_started = False  # the last attempt of a stopped revert records nothing more
        self.revert_from = self.attempts

    def start_revert(self, runner: str) -> None:
        if self.status != REVERTING:
            raise _conflict(self, "reverted")
        self._revert_started(attempt=self.attempts + 1, runner=_text(runner, MAX_NOTE))

    @event("RevertStarted")
    def _revert_started(self, attempt: int, runner: str) -> None:
        self.attempts = attempt
        self.revert_started = True

    def revert_progress(self, attempt: int, reverted: list[str], skipped: list[str]) -> None:
        """One batch of the revert: the blobs put back, the blobs left alone (changed since, or gone)."""
        self._ensure_reverting(attempt)
        if len(reverted) + len(skipped) > MAX_BATCH or not all(is_id(b) for b in [*reverted, *skipped]):
            _fail([FieldError("/blob_ids", f"a batch is at most {MAX_BATCH} blob ids")])
        room = max(MAX_SKIPPED_LISTED - len(self.revert_skipped_ids), 0)
        listed = list(skipped[:room])
        self._revert_progressed(reverted=self.reverted + len(reverted), skipped=self.revert_skipped + len(skipped),
                                skipped_ids=self.revert_skipped_ids + listed if listed else None,
                                blob_ids=[*reverted, *skipped])

    @event("RevertProgressed")
    def _revert_progressed(self, reverted: int, skipped: int, skipped_ids: list[str] | None,
                           blob_ids: list[str]) -> None:
        """Counts and the listed skipped ids are cumulative (the ids only when they changed), so a
        projector writes the row from this event alone; ``blob_ids`` are this batch's."""
        self.reverted, self.revert_skipped = reverted, skipped
        if skipped_ids is not None:
            self.revert_skipped_ids = list(skipped_ids)
        self.revert_done.update(blob_ids)

    def complete_revert(self, attempt: int) -> None:
        self._ensure_reverting(attempt)
        self._revert_completed(attempt=attempt)

    @event("RevertCompleted")
    def _revert_completed(self, attempt: int) -> None:
        self.status = REVERTED

    def stop_revert(self, error: object, attempt: int) -> None:
        """The revert cannot go on (its attempts are used up): the run is ``completed`` again, with
        ``error`` saying why and what was put back; its owner may request the revert again."""
        self._ensure_reverting(attempt)
        self._revert_stopped(attempt=attempt, error=_text(error, MAX_ERROR_MESSAGE))

    @event("RevertStopped")
    def _revert_stopped(self, attempt: int, error: str) -> None:
        self.status = COMPLETED
        self.error = error

    # -- checks -----------------------------------------------------------------------------------

    def _ensure_reverting(self, attempt: object) -> None:
        """The current attempt of the revert requested last: one that started since that request (the
        last attempt of a stopped revert has the same number until a new one starts)."""
        self._ensure(attempt, REVERTING, "reverted")
        if not self.revert_started:
            raise _conflict(self, f"reverted by attempt {attempt} before the revert asked again has started")

    def _ensure(self, attempt: object, status: str, action: str) -> None:
        if self.status != status or type(attempt) is not int or attempt != self.attempts:
            raise _conflict(self, f"{action} by attempt {attempt}")

    @staticmethod
    def _check_batch(migrated: int, failed: int, skipped: int, changes: list[list[Any]]) -> None:
        if not all(_count(n) for n in (migrated, failed, skipped)) or migrated + failed + skipped > MAX_BATCH:
            _fail([FieldError("/counts", f"a batch counts at most {MAX_BATCH} blobs")])
        for change in changes:
            if (not isinstance(change, (list, tuple)) or len(change) != 3 or not is_id(change[0])
                    or not _count(change[1]) or not _count(change[2])):
                _fail([FieldError("/changes", "must be [blob_id, version read, version written] triples")])
