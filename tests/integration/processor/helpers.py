"""What the processor tests share: schemas, JavaScript processors, an isolated system."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from adapters.client import InkstreamClient
from adapters.runtime.nats_server import EmbeddedNats
from tests.support.sdk import new_client
from tests.support.servers import Database
from tests.support.system import RunningSystem, system_on_own_log

OPEN_LIMITS: dict[str, Any] = {
    "rate_limit_per_second": 1e6, "rate_limit_burst": 10**6,
    "anonymous_rate_limit_per_second": 1e6, "anonymous_rate_limit_burst": 10**6, "sign_in_rate_per_second": 1e6, "sign_in_burst": 10**6,
    "write_bytes_per_second": 1e12, "write_bytes_burst": 10**12,
}

CHAPTER_SCHEMA = {
    "type": "object",
    "required": ["title", "content"],
    "additionalProperties": False,
    "properties": {"title": {"type": "string"}, "content": {"type": "string", "minLength": 1}},
}
OUTLINE_SCHEMA = {
    "type": "object",
    "required": ["outline"],
    "properties": {"title": {"type": "string"}, "outline": {"type": "string"}},
}

# process(data) that stays busy for data.ms milliseconds (V8 has no sleep), then answers.
SLOW = """function process(data) {
  var until = Date.now() + (data.ms || 0);
  while (Date.now() < until) {}
  return {slept: data.ms || 0, n: data.n === undefined ? null : data.n};
}"""
ECHO = "function process(data) { return {echo: data}; }"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def schema(ink: InkstreamClient, prefix: str, document: dict[str, Any]) -> str:
    return (await ink.register_schema(unique(prefix), "1.0.0", document)).id


async def js_processor(ink: InkstreamClient, source: str, **options: Any) -> str:
    return (await ink.register_processor(unique("js"), "js-transform", {"source": source}, **options)).id


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 30.0, step: float = 0.1) -> Any:
    """The first truthy answer of ``check`` within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        answer = await check()
        if answer:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s (last answer {answer!r})")
        await asyncio.sleep(step)


async def all_jobs(ink: InkstreamClient, **filters: Any) -> list[Any]:
    return [job async for job in ink.iter_pages(ink.list_jobs, limit=500, consistency="eventual", **filters)]


@asynccontextmanager
async def isolated_system(database: Database, **overrides: Any) -> AsyncIterator[tuple[RunningSystem, EmbeddedNats]]:
    """A system on a nats-server of its own: its runner is the only one on its jobs consumer,
    so the test's settings (model endpoint, fairness, ack_wait) are the ones that run its jobs."""
    async with system_on_own_log(database, **{**OPEN_LIMITS, **overrides}) as running:
        yield running


async def user(system: RunningSystem, prefix: str = "author") -> InkstreamClient:
    return await new_client(system.base_url, prefix)
