"""The one small interface every processor type implements.

A type is found by name in the entry-point group ``inkstream.processors``
(see ``adapters.processors.catalog``): the entry point is a factory that
receives ``ProcessorDeps`` and returns an object with

* ``name``: the type's name (what ``POST /v1/processors`` calls ``type``);
* ``async check_config(config) -> [FieldError]``: every problem of a config
  (paths under ``/config``), compiling what must compile; run at
  registration and on every config change, so a job never meets a config its
  type refuses;
* ``check_input(config, data) -> [FieldError]``: what an input document must
  satisfy beyond the processor's input schema (paths under ``/data``); run
  when a user requests a job;
* ``async run(config, data, ctx) -> Output``: the work. It raises
  ``ProcessorFailure`` with an API error code and whether a retry could help;
  anything else it raises counts as ``internal`` and is retried. The runner
  enforces the time limit (by cancelling the task, so a type must let
  cancellation through: an HTTP call or a sandbox call is abandoned there).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from commands.ports import Sandbox
from domain.errors import FieldError


class ProcessorFailure(Exception):
    """A failed attempt. ``code`` is one of the API's job error codes; ``retryable``
    False means no retry can fix it (a compile error, an output that breaks
    the schema), so the job fails at once."""

    def __init__(self, code: str, message: str, *, retryable: bool = True) -> None:
        self.code = code
        self.message = message
        self.retryable = retryable
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True, slots=True)
class Output:
    """What a processor made. ``engine`` says what produced it, for the job's
    history (``inkstream audit job``): e.g. ``offline-expander``."""

    data: Any
    engine: str | None = None


@dataclass(frozen=True, slots=True)
class RunContext:
    job_id: str
    attempt: int
    timeout_seconds: float
    max_memory_mb: int
    output_schema: str | None
    validate_output: Callable[[Any], Awaitable[list[FieldError]]]


class ProcessorType(Protocol):
    name: str

    async def check_config(self, config: dict[str, Any]) -> list[FieldError]: ...

    def check_input(self, config: dict[str, Any], data: Any) -> list[FieldError]: ...

    async def run(self, config: dict[str, Any], data: Any, ctx: RunContext) -> Output: ...


class HttpSessions:
    """One ``aiohttp.ClientSession`` per process for outgoing calls, opened on first
    use (inside the running loop) and closed with the runtime."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


@dataclass(frozen=True)
class ProcessorDeps:
    """What a processor type's factory may use. ``llm_*`` come from the settings
    (``INKSTREAM_LLM_*``); an empty ``llm_base_url`` means no model endpoint."""

    sandbox: Sandbox
    http: HttpSessions
    llm_base_url: str = ""
    llm_api_key: str = ""
    llm_timeout_seconds: float = 60.0
    llm_max_retries: int = 3
    checks: Sandbox | None = None
    """Where a registration's compile check runs (None: ``sandbox``). Never the job runner's
    workers: their queue waits for jobs of up to an hour, and a registration must answer."""


def unknown_keys(config: dict[str, Any], allowed: tuple[str, ...]) -> list[FieldError]:
    return [FieldError(f"/config/{k}", f"{k} is not allowed") for k in sorted(set(config) - set(allowed))]
