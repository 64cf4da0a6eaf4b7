"""``js-transform``: ``function process(data)`` in the JavaScript sandbox.

The source is compiled at registration (a syntax error, or no ``process``
function, is a 422 then, never a failed job later; nothing of it runs then).
Each run gets the processor's time and memory limits in a sandbox worker
process (``adapters.sandbox.pool``): cancelling the awaiting task kills the
worker, which stops the script, so runaway code fails its job within the
limit and stalls nothing else.

Failures: a thrown error is ``sandbox_error`` and retried (the job's
``max_attempts``); running past the time limit is ``timeout`` and retried;
running out of memory or returning nothing JSON can hold cannot change on a
retry of the same code on the same input, so it fails the job at once.
"""

from __future__ import annotations

from typing import Any

from adapters.processors.base import Output, ProcessorDeps, ProcessorFailure, RunContext, unknown_keys
from commands.ports import Sandbox, SandboxError
from domain.errors import FieldError

FUNCTION = "process"
MAX_SOURCE = 100_000


class JsTransform:
    name = "js-transform"
    sandboxed = True
    """Runs in a sandbox worker of its own, up to its memory limit: it waits for room in the runner's
    memory budget (``adapters/jobs/memory.py``). Types without it take none."""

    def __init__(self, sandbox: Sandbox, checks: Sandbox | None = None) -> None:
        self._sandbox = sandbox
        self._checks = checks or sandbox

    async def check_config(self, config: dict[str, Any]) -> list[FieldError]:
        errors = unknown_keys(config, ("source",))
        source = config.get("source")
        if not isinstance(source, str) or not source.strip():
            return [*errors, FieldError("/config/source", "source is required: JavaScript defining function process(data)")]
        if len(source) > MAX_SOURCE:
            return [*errors, FieldError("/config/source", f"source must be at most {MAX_SOURCE} characters")]
        problem = await self._checks.compile_check(source, FUNCTION)
        if problem is not None:
            errors.append(FieldError("/config/source", f"does not compile: {problem}"))
        return errors

    def check_input(self, config: dict[str, Any], data: Any) -> list[FieldError]:
        return []

    async def run(self, config: dict[str, Any], data: Any, ctx: RunContext) -> Output:
        try:
            result = await self._sandbox.call(
                config["source"], FUNCTION, data,
                timeout_ms=int(ctx.timeout_seconds * 1000), max_memory_mb=ctx.max_memory_mb,
            )  # fmt: skip
        except SandboxError as exc:
            raise classify(str(exc)) from None
        return Output(result)


def classify(message: str) -> ProcessorFailure:
    """The sandbox's reason as a job error (its messages say which limit was hit)."""
    if message.startswith("ran longer than"):
        return ProcessorFailure("timeout", f"process(data) {message}", retryable=True)
    if message.startswith("used more than") or "may have used more than" in message:
        return ProcessorFailure("sandbox_error", f"process(data): {message}", retryable=False)
    if "returned nothing that JSON can hold" in message or "returned something JSON cannot hold" in message:
        return ProcessorFailure("invalid_output", message, retryable=False)
    return ProcessorFailure("sandbox_error", message, retryable=True)


def make_js_transform(deps: ProcessorDeps) -> JsTransform:
    return JsTransform(deps.sandbox, deps.checks)
