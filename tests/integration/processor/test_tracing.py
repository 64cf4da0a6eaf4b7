"""One trace spans HTTP → JobRequested → the runner → the output blob."""

from __future__ import annotations

import uuid

import aiohttp
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters.telemetry.tracing import Tracing
from tests.integration.processor.helpers import ECHO, eventually, isolated_system, js_processor, user
from tests.support.servers import Database
from tests.support.wire import bearer


async def test_a_job_request_is_one_trace_from_http_to_the_output_blob(database: Database) -> None:
    exporter = InMemorySpanExporter()
    async with isolated_system(database, tracing=Tracing("inkstream-test", exporter)) as (system, _):
        ink = await user(system, "traced")
        processor_id = await js_processor(ink, ECHO)
        blob = await ink.create_blob({"n": 1})
        trace_id = uuid.uuid4().hex
        async with aiohttp.ClientSession(base_url=system.base_url) as http:
            async with http.post("/v1/jobs", json={"processor_id": processor_id, "input_blob_id": blob.id},
                                 headers={**bearer(ink), "traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"}) as r:
                assert r.status == 202
                job_id = (await r.json())["id"]
        assert (await ink.wait_for_job(job_id)).status == "completed"

        def spans() -> list:  # type: ignore[type-arg]
            return [s for s in exporter.get_finished_spans() if format(s.context.trace_id, "032x") == trace_id]

        async def complete() -> bool:
            return any(s.name == "job.run" for s in spans())

        await eventually(complete, timeout=10)
        found = spans()
        by_id = {s.context.span_id: s for s in found}

        def ancestors(span):  # type: ignore[no-untyped-def]
            while span.parent is not None and span.parent.span_id in by_id:
                span = by_id[span.parent.span_id]
                yield span

        appends = {s.attributes.get("ink.event_type"): s for s in found if s.name == "eventstore.append"}
        print("spans in the trace:", sorted((s.name, s.attributes.get("ink.event_type")) for s in found))
        assert {"HTTP POST /v1/jobs", "command RequestJob", "job.run"} <= {s.name for s in found}
        assert {"Job.Requested", "Job.Started", "Blob.Created", "Job.Completed"} <= set(appends)
        run = next(s for s in found if s.name == "job.run")
        assert by_id[run.parent.span_id] is appends["Job.Requested"]
        for kind in ("Job.Started", "Blob.Created", "Job.Completed"):
            assert run in list(ancestors(appends[kind])), kind
        assert next(iter(ancestors(appends["Job.Requested"]))).name == "command RequestJob"
