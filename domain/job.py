"""Jobs: one run of a processor on one input blob, as a state machine in the log.

``pending`` → ``running`` → ``completed`` | ``failed`` | ``cancelled``.

* A job is *requested* (by a user, or by a trigger with an id derived from
  the processor and the triggering event's position), *started* by a runner
  (``attempt`` counts every start, a retry's included), and ends with exactly
  one outcome. An attempt that fails but will be retried is recorded as
  ``AttemptFailed``: the job is ``pending`` again (never ``completed``), with
  its ``last_error``; a final failure is ``Failed`` with its ``error``.
* A *run* is the span from a request (or a user's retry) to an outcome. The
  runner's work message is the event that opened the run (``Requested`` or
  ``Retried``); a message of an older run is stale. ``max_attempts`` counts
  attempts within one run, so a user's retry gets a fresh budget.
* A start on a job that is already ``running`` is a takeover: the runner of
  the previous attempt stopped answering (its message was redelivered). It
  counts as an attempt, so a processor that kills its runner cannot loop.
* The job records the processor's version and the input blob's version it
  was requested with: retries and takeovers run exactly that.

Who may do what (owner, runner) is the handlers' business; the aggregate
guards the transitions.
"""

from __future__ import annotations

import copy
from typing import Any

from eventsourcing.domain import event

from domain.base import InkAggregate
from domain.errors import Conflict, FieldError, ValidationFailed, unstorable_reason

PENDING, RUNNING, COMPLETED, FAILED, CANCELLED = "pending", "running", "completed", "failed", "cancelled"
STATUSES = (PENDING, RUNNING, COMPLETED, FAILED, CANCELLED)
FINISHED = frozenset({COMPLETED, FAILED, CANCELLED})

ERROR_CODES = ("timeout", "sandbox_error", "invalid_output", "upstream_error", "chain_too_deep", "internal")
MAX_ERROR_MESSAGE = 2000
MAX_DEPTH = 8
"""The deepest triggered job that runs; a chain that goes deeper fails with ``chain_too_deep``."""


def job_error(code: str, message: str) -> dict[str, str]:
    """``{code, message}``, the message made storable and bounded (it may quote user code or an upstream answer)."""
    if code not in ERROR_CODES:
        code = "internal"
    text = "".join(ch if unstorable_reason(ch) is None else "\ufffd" for ch in str(message))
    if len(text) > MAX_ERROR_MESSAGE:
        text = text[: MAX_ERROR_MESSAGE - 1] + "…"
    return {"code": code, "message": text}


def _conflict(job: Job, action: str) -> Conflict:
    return Conflict(f"job {job.id_str} is {job.status}; it cannot be {action}")


class Job(InkAggregate):
    TYPE = "job"

    @classmethod
    def request(
        cls,
        owner_id: str,
        processor_id: str,
        processor_version: int,
        processor_type: str,
        input_blob_id: str,
        input_version: int,
        trigger: dict[str, Any] | None = None,
        depth: int = 0,
        job_id: Any = None,
    ) -> Job:
        """A new pending job; ``job_id`` (a UUID) when the id is derived (a triggered job)."""
        if not isinstance(depth, int) or not 0 <= depth <= MAX_DEPTH + 1:
            raise ValidationFailed("depth out of range", [FieldError("/depth", f"depth must be 0 to {MAX_DEPTH + 1}")])
        kwargs = dict(
            owner_id=owner_id,
            processor_id=processor_id,
            processor_version=processor_version,
            processor_type=processor_type,
            input_blob_id=input_blob_id,
            input_version=input_version,
            trigger=copy.deepcopy(trigger),
            depth=depth,
        )
        if job_id is None:
            return cls(**kwargs)
        return cls._create(cls.Requested, id=job_id, **kwargs)  # type: ignore[attr-defined]

    @event("Requested")
    def __init__(
        self,
        owner_id: str,
        processor_id: str,
        processor_version: int,
        processor_type: str,
        input_blob_id: str,
        input_version: int,
        trigger: dict[str, Any] | None,
        depth: int,
    ) -> None:
        self.owner_id = owner_id
        self.processor_id = processor_id
        self.processor_version = processor_version
        self.processor_type = processor_type
        self.input_blob_id = input_blob_id
        self.input_version = input_version
        self.trigger = copy.deepcopy(trigger)
        self.depth = depth
        self.status = PENDING
        self.run = 1
        self.attempts = 0
        self.run_base = 0  # attempts made before this run began
        self.runner: str | None = None
        self.output_blob_id: str | None = None
        self.error: dict[str, str] | None = None
        self.last_error: dict[str, str] | None = None
        self.deleted = False  # jobs are never deleted; ``changeable`` reads it

    # -- reading ---------------------------------------------------------

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def run_attempts(self) -> int:
        """Attempts made in the current run."""
        return self.attempts - self.run_base

    @property
    def chain_too_deep(self) -> bool:
        return self.depth > MAX_DEPTH

    # -- the runner's transitions ---------------------------------------------------

    def start(self, runner: str) -> None:
        """Begin the next attempt. On a ``running`` job this takes over an abandoned attempt."""
        if self.status not in (PENDING, RUNNING):
            raise _conflict(self, "started")
        recovered = self.attempts if self.status == RUNNING else None
        self._started(attempt=self.attempts + 1, run=self.run, runner=runner, recovered_attempt=recovered)

    @event("Started")
    def _started(self, attempt: int, run: int, runner: str, recovered_attempt: int | None) -> None:
        self.status = RUNNING
        self.attempts = attempt
        self.runner = runner

    def _ensure_attempt(self, attempt: int, action: str) -> None:
        if self.status != RUNNING or self.attempts != attempt:
            raise _conflict(self, f"{action} by attempt {attempt}")

    def attempt_failed(self, attempt: int, error: dict[str, str], retry_in_seconds: float) -> None:
        """The attempt failed and another will follow after ``retry_in_seconds``."""
        self._ensure_attempt(attempt, "retried")
        self._attempt_failed(attempt=attempt, error=job_error(error["code"], error["message"]),
                             retry_in_seconds=round(float(retry_in_seconds), 3))

    @event("AttemptFailed")
    def _attempt_failed(self, attempt: int, error: dict[str, str], retry_in_seconds: float) -> None:
        self.status = PENDING
        self.last_error = dict(error)

    def complete(self, attempt: int, output_blob_id: str, engine: str | None = None) -> None:
        self._ensure_attempt(attempt, "completed")
        self._completed(attempt=attempt, output_blob_id=output_blob_id, engine=engine)

    @event("Completed")
    def _completed(self, attempt: int, output_blob_id: str, engine: str | None) -> None:
        self.status = COMPLETED
        self.output_blob_id = output_blob_id

    def fail(self, error: dict[str, str], attempt: int | None = None) -> None:
        """The final failure: by the running attempt, or before any (``attempt`` None, e.g. a chain too deep)."""
        if attempt is None:
            if self.status not in (PENDING, RUNNING):
                raise _conflict(self, "failed")
        else:
            self._ensure_attempt(attempt, "failed")
        self._failed(attempt=attempt, error=job_error(error["code"], error["message"]))

    @event("Failed")
    def _failed(self, attempt: int | None, error: dict[str, str]) -> None:
        self.status = FAILED
        self.error = dict(error)

    # -- the owner's transitions ------------------------------------------------------

    def cancel(self, reason: str = "cancelled by its owner") -> None:
        """A pending or running job; a running one is stopped by its runner, its result discarded."""
        if self.status not in (PENDING, RUNNING):
            raise _conflict(self, "cancelled")
        self._cancelled(reason=reason[:200])

    @event("Cancelled")
    def _cancelled(self, reason: str) -> None:
        self.status = CANCELLED

    def retry(self) -> None:
        """A failed or cancelled job runs again (a new run, a fresh attempt budget)."""
        if self.status not in (FAILED, CANCELLED):
            raise _conflict(self, "retried")
        self._retried(owner_id=self.owner_id, run=self.run + 1)

    @event("Retried")
    def _retried(self, owner_id: str, run: int) -> None:
        self.status = PENDING
        self.run = run
        self.run_base = self.attempts
        self.runner = None
        self.output_blob_id = None
        self.error = None
        self.last_error = None
