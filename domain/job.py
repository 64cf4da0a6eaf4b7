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
* A chain of triggered jobs is bounded twice: by depth (``MAX_DEPTH``) and by
  the number of jobs it may hold (``MAX_CHAIN_JOBS``). Each job carries its
  ``budget``: how many jobs the chain may still spawn *below* it. A job's
  output that triggers N processors splits that budget over them
  (``split_budget``); a processor left without a share does not run. The
  first one left out is recorded with ``budget`` ``OVER_BUDGET`` (and fails at
  once with ``chain_too_deep``, so its owner sees why the chain stopped); the
  others are not recorded. ``budget`` is None only on a job requested before
  budgets existed (class version 1 of ``Requested``): ``budget_left`` gives
  such a job what the depth limit left it, never more.

Who may do what (owner, runner) is the handlers' business; the aggregate
guards the transitions.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from eventsourcing.domain import event

from domain.base import InkAggregate
from domain.errors import Conflict, FieldError, ValidationFailed, unstorable_reason
from domain.ids import is_id
from domain.processor import TRIGGER_EVENTS, TYPE_RE

PENDING, RUNNING, COMPLETED, FAILED, CANCELLED = "pending", "running", "completed", "failed", "cancelled"
STATUSES = (PENDING, RUNNING, COMPLETED, FAILED, CANCELLED)
FINISHED = frozenset({COMPLETED, FAILED, CANCELLED})

ERROR_CODES = ("timeout", "sandbox_error", "invalid_output", "upstream_error", "chain_too_deep", "internal")
MAX_ERROR_MESSAGE = 2000
MAX_DEPTH = 8
"""The deepest triggered job that runs; a chain that goes deeper fails with ``chain_too_deep``."""
MAX_CHAIN_JOBS = 16
"""The most jobs one chain of triggers runs: a user's blob change, or a user's job and everything
its output triggers. A chain that would run more is refused (``chain_too_deep``, its budget spent)."""
FULL_BUDGET = MAX_CHAIN_JOBS - 1
"""The budget of a job a user requests: the jobs below it, so the chain holds ``MAX_CHAIN_JOBS``."""
OVER_BUDGET = -1
"""The budget of a job recorded only to say that the chain's budget was spent: it never runs."""
MAX_VERSION = 2**31 - 1  # a PostgreSQL ``integer``
MAX_POSITION = 2**63 - 1
MAX_RETRY_IN = 86_400.0
MAX_NOTE = 200


def _text(value: object, limit: int) -> str:
    """Any value as storable text of at most ``limit`` characters (lone surrogates and NULs replaced)."""
    text = "".join(ch if unstorable_reason(ch) is None else "\ufffd" for ch in str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def job_error(code: object, message: object) -> dict[str, str]:
    """``{code, message}``, the message made storable and bounded (it may quote user code or an upstream answer)."""
    return {"code": code if code in ERROR_CODES else "internal", "message": _text(message, MAX_ERROR_MESSAGE)}


def _as_error(error: object) -> dict[str, str]:
    if isinstance(error, dict):
        return job_error(error.get("code"), error.get("message", ""))
    return job_error("internal", error)


def _fail(errors: list[FieldError]) -> None:
    if errors:
        raise ValidationFailed("; ".join(f"{e.path}: {e.message}" for e in errors), errors)


def _count(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _trigger_errors(trigger: object) -> list[FieldError]:
    if trigger is None:
        return []
    if (not isinstance(trigger, dict) or set(trigger) != {"on", "blob_id", "position"}
            or trigger["on"] not in TRIGGER_EVENTS or not is_id(trigger["blob_id"])
            or not _count(trigger["position"], 1, MAX_POSITION)):
        return [FieldError("/trigger", "must be {on, blob_id, position} of a blob event")]
    return []


def budget_left(budget: object, depth: object) -> int:
    """How many jobs the chain may still spawn below a job with ``budget`` at ``depth``: 0 to
    ``FULL_BUDGET``.

    ``budget`` None is a job requested before budgets existed (an upcast ``Requested``, or an
    output blob of such a job): it gets what the depth limit left it, ``MAX_DEPTH - depth``, so a
    straight chain that was running when budgets came ends as it would have, and a fan-out that
    was running is cut to at most that many jobs under each of its jobs. Anything that is not a
    budget (a refused job's ``OVER_BUDGET``, a value no runner writes) leaves nothing.
    """
    if budget is None:
        if not isinstance(depth, int) or isinstance(depth, bool):
            return 0
        return max(0, min(FULL_BUDGET, MAX_DEPTH - depth))
    if not isinstance(budget, int) or isinstance(budget, bool):
        return 0
    return max(0, min(FULL_BUDGET, budget))


def split_budget(budget: int, n_matches: int) -> list[int | None]:
    """The budgets of the ``n_matches`` jobs one event triggers, in processor id order, from
    ``budget`` (what the triggering job may still spawn below it; ``MAX_CHAIN_JOBS`` for a
    user's own blob, which no job spawned).

    Each job that runs costs one and takes its own budget out of what is left, so the shares
    (one plus each budget) add up to at most ``budget``: at most ``budget`` matches run, the
    first ones, and what is left over is spread evenly, the earlier ones taking the remainder.
    None marks a match left without a share: it does not run.
    """
    budget = max(0, budget)
    running = min(max(0, n_matches), budget)
    if running == 0:
        return [None] * max(0, n_matches)
    spare, extra = divmod(budget - running, running)
    shares: list[int | None] = [spare + (1 if i < extra else 0) for i in range(running)]
    return shares + [None] * (n_matches - running)


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
        budget: int = FULL_BUDGET,
        job_id: Any = None,
    ) -> Job:
        """A new pending job; ``job_id`` (a UUID) when the id is derived (a triggered job).

        ``budget``: the jobs its chain may still spawn below it (``FULL_BUDGET`` for a user's
        request, a share from ``split_budget`` for a triggered one, ``OVER_BUDGET`` for the
        record of a job the chain's budget did not cover)."""
        errors = _trigger_errors(trigger)
        if not is_id(processor_id):
            errors.append(FieldError("/processor_id", "must be a processor id"))
        if not is_id(input_blob_id):
            errors.append(FieldError("/input_blob_id", "must be a blob id"))
        if not isinstance(processor_type, str) or not TYPE_RE.match(processor_type):
            errors.append(FieldError("/processor_type", "must be a processor type name"))
        for path, value in (("/processor_version", processor_version), ("/input_version", input_version)):
            if not _count(value, 1, MAX_VERSION):
                errors.append(FieldError(path, f"must be a version from 1 to {MAX_VERSION}"))
        if not _count(depth, 0, MAX_DEPTH + 1):
            errors.append(FieldError("/depth", f"depth must be 0 to {MAX_DEPTH + 1}"))
        if not _count(budget, OVER_BUDGET, FULL_BUDGET):
            errors.append(FieldError("/budget", f"budget must be {OVER_BUDGET} to {FULL_BUDGET}"))
        _fail(errors)
        kwargs = dict(
            owner_id=owner_id,
            processor_id=processor_id,
            processor_version=processor_version,
            processor_type=processor_type,
            input_blob_id=input_blob_id,
            input_version=input_version,
            trigger=copy.deepcopy(trigger),
            depth=depth,
            budget=budget,
        )
        if job_id is None:
            return cls(**kwargs)
        return cls._create(cls.Requested, id=job_id, **kwargs)  # type: ignore[attr-defined]

    class Requested(InkAggregate.Created):
        """Class version 2 added ``budget``; a version 1 event is a job requested before budgets
        existed, read with ``budget`` None (``budget_left`` says what that leaves)."""

        class_version = 2
        owner_id: str
        processor_id: str
        processor_version: int
        processor_type: str
        input_blob_id: str
        input_version: int
        trigger: dict[str, Any] | None
        depth: int
        budget: int | None

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["budget"] = None

    @event(Requested)
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
        budget: int | None,
    ) -> None:
        self.owner_id = owner_id
        self.processor_id = processor_id
        self.processor_version = processor_version
        self.processor_type = processor_type
        self.input_blob_id = input_blob_id
        self.input_version = input_version
        self.trigger = copy.deepcopy(trigger)
        self.depth = depth
        self.budget = budget
        self.status = PENDING
        self.run = 1
        self.attempts = 0
        self.run_base = 0  # attempts made before this run began
        self.runner: str | None = None
        self.output_blob_id: str | None = None
        self.error: dict[str, str] | None = None
        self.last_error: dict[str, str] | None = None
        # when the current run's last attempt started and when the job ended (ISO 8601, as a snapshot
        # keeps them): what the read model shows, so a command's answer is this state, not a history's fold
        self.started_at: str | None = None
        self.finished_at: str | None = None
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

    @property
    def over_budget(self) -> bool:
        """Recorded only to say that its chain's budget was spent: it fails without running."""
        return self.budget is not None and self.budget < 0

    @property
    def spawn_budget(self) -> int:
        """How many jobs its output may still trigger, all the way down (``budget_left``)."""
        return budget_left(self.budget, self.depth)

    @classmethod
    def state_from_snapshot(cls, state: dict[str, Any]) -> dict[str, Any]:
        """A snapshot taken before budgets existed is of a job requested before them."""
        return {"budget": None, **state}

    # -- the runner's transitions ---------------------------------------------------

    def start(self, runner: str) -> None:
        """Begin the next attempt. On a ``running`` job this takes over an abandoned attempt."""
        if self.status not in (PENDING, RUNNING):
            raise _conflict(self, "started")
        recovered = self.attempts if self.status == RUNNING else None
        self._started(attempt=self.attempts + 1, run=self.run, runner=_text(runner, MAX_NOTE),
                      recovered_attempt=recovered)

    @event("Started")
    def _started(self, attempt: int, run: int, runner: str, recovered_attempt: int | None) -> None:
        self.status = RUNNING
        self.attempts = attempt
        self.runner = runner
        self.started_at = self.applying_at.isoformat()

    def _ensure_attempt(self, attempt: object, action: str) -> None:
        if self.status != RUNNING or type(attempt) is not int or self.attempts != attempt:
            raise _conflict(self, f"{action} by attempt {attempt}")

    def attempt_failed(self, attempt: int, error: object, retry_in_seconds: object) -> None:
        """The attempt failed and another will follow after ``retry_in_seconds``."""
        self._ensure_attempt(attempt, "retried")
        if (not isinstance(retry_in_seconds, (int, float)) or isinstance(retry_in_seconds, bool)
                or not math.isfinite(retry_in_seconds) or not 0 <= retry_in_seconds <= MAX_RETRY_IN):
            _fail([FieldError("/retry_in_seconds", f"must be 0 to {MAX_RETRY_IN:g} seconds")])
        self._attempt_failed(attempt=attempt, error=_as_error(error),
                             retry_in_seconds=round(float(retry_in_seconds), 3))

    @event("AttemptFailed")
    def _attempt_failed(self, attempt: int, error: dict[str, str], retry_in_seconds: float) -> None:
        self.status = PENDING
        self.last_error = dict(error)

    def complete(self, attempt: int, output_blob_id: str, engine: object = None) -> None:
        self._ensure_attempt(attempt, "completed")
        if not is_id(output_blob_id):
            _fail([FieldError("/output_blob_id", "must be a blob id")])
        self._completed(attempt=attempt, output_blob_id=output_blob_id,
                        engine=None if engine is None else _text(engine, MAX_NOTE))

    @event("Completed")
    def _completed(self, attempt: int, output_blob_id: str, engine: str | None) -> None:
        self.status = COMPLETED
        self.output_blob_id = output_blob_id
        self.finished_at = self.applying_at.isoformat()

    def fail(self, error: object, attempt: int | None = None) -> None:
        """The final failure: by the running attempt, or before any (``attempt`` None, e.g. a chain too deep)."""
        if attempt is None:
            if self.status not in (PENDING, RUNNING):
                raise _conflict(self, "failed")
        else:
            self._ensure_attempt(attempt, "failed")
        self._failed(attempt=attempt, error=_as_error(error))

    @event("Failed")
    def _failed(self, attempt: int | None, error: dict[str, str]) -> None:
        self.status = FAILED
        self.error = dict(error)
        self.finished_at = self.applying_at.isoformat()

    # -- the owner's transitions ------------------------------------------------------

    def cancel(self, reason: object = "cancelled by its owner") -> None:
        """A pending or running job; a running one is stopped by its runner, its result discarded."""
        if self.status not in (PENDING, RUNNING):
            raise _conflict(self, "cancelled")
        self._cancelled(reason=_text(reason, MAX_NOTE))

    @event("Cancelled")
    def _cancelled(self, reason: str) -> None:
        self.status = CANCELLED
        self.finished_at = self.applying_at.isoformat()

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
        self.started_at = None
        self.finished_at = None
