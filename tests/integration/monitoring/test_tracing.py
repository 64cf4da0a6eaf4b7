"""Seed Task 13 (tracing): one trace spans HTTP → command → append, and the projection continues or links it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters.telemetry.tracing import Tracing
from tests.support.servers import Database
from tests.support.system import RunningSystem, start_system


@pytest.fixture(scope="module")
async def traced(nats_server: str, database: Database) -> AsyncIterator[tuple[RunningSystem, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    running = await start_system(nats_server, await database.new_database(), tracing=Tracing("inkstream-test", exporter))
    try:
        # A fresh database replays the whole session's log first; traced requests come after that catch-up,
        # so their events meet a projector that is live (small batches), as in production.
        last = await running.services.store.last_position()
        await running.running.watch.wait(last, [p.name for p in running.services.projections], 60)
        yield running, exporter
    finally:
        await running.stop()


async def test_a_register_request_is_one_trace_from_http_to_the_projector(
    traced: tuple[RunningSystem, InMemorySpanExporter],
) -> None:
    system, exporter = traced
    trace_id = uuid.uuid4().hex
    traceparent = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    async with aiohttp.ClientSession(base_url=system.base_url) as http:
        async with http.post(
            "/v1/auth/register",
            json={"email": f"t-{uuid.uuid4().hex[:8]}@example.com", "password": "traced-pass", "username": "t"},
            headers={"traceparent": traceparent},
        ) as r:
            assert r.status == 201
            position = (await r.json())["position"]
    await system.running.watch.wait(position, ["users"], 10)

    def projected_by_users(spans: list) -> list:  # type: ignore[type-arg]
        """The users projection's batch span that continues this command (its parent), or links to it."""
        return [s for s in spans if s.name == "project users" and (
            format(s.context.trace_id, "032x") == trace_id
            or any(format(link.context.trace_id, "032x") == trace_id for link in s.links))]

    for _ in range(50):
        finished = list(exporter.get_finished_spans())
        if projected_by_users(finished):
            break
        await asyncio.sleep(0.05)
    spans = [s for s in finished if format(s.context.trace_id, "032x") == trace_id]
    names = {s.name for s in spans}
    print("spans in the trace:", sorted(names))
    assert "HTTP POST /v1/auth/register" in names
    assert "command RegisterUser" in names
    assert "eventstore.append" in names
    by_id = {s.context.span_id: s for s in spans}
    append = next(s for s in spans if s.name == "eventstore.append")
    assert by_id[append.parent.span_id].name == "command RegisterUser"
    # One span per projector batch: it continues the trace of its batch's first event and links the others.
    [project] = projected_by_users(finished)
    continues = project.parent is not None and project.parent.span_id == append.context.span_id
    links = any(link.context.span_id == append.context.span_id for link in project.links)
    assert continues or links
