"""OTLP export: with OTEL_EXPORTER_OTLP_ENDPOINT set, spans reach that endpoint over HTTP."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from adapters.telemetry.tracing import Tracing


async def test_spans_are_exported_to_the_configured_otlp_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    received: list[ExportTraceServiceRequest] = []

    async def collect(request: web.Request) -> web.Response:
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        received.append(message)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/v1/traces", collect)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    try:
        tracing = Tracing("inkstream-otlp-test")
        with tracing.span("command Blob.create", **{"ink.test": True}):
            pass
        await asyncio.to_thread(tracing.shutdown)  # flushes the batch processor
    finally:
        await runner.cleanup()
    def service(resource_spans) -> str:  # type: ignore[no-untyped-def]
        return next(a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name")

    names = [
        (span.name, service(rs))
        for message in received for rs in message.resource_spans for ss in rs.scope_spans for span in ss.spans
    ]
    assert ("command Blob.create", "inkstream-otlp-test") in names
