"""Tracing with OpenTelemetry: one trace from HTTP through the log to projectors.

The provider is built by the composition root (not installed globally), so
tests can attach an in-memory exporter to their own instance. W3C
``traceparent`` travels in the log's message headers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SimpleSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from domain.recorded import Recorded

_PROPAGATOR = TraceContextTextMapPropagator()


class Tracing:
    def __init__(self, service_name: str = "inkstream", exporter: SpanExporter | None = None) -> None:
        self.provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        if exporter is not None:
            self.provider.add_span_processor(SimpleSpanProcessor(exporter))
        elif os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self.tracer = self.provider.get_tracer("inkstream")

    @contextmanager
    def span(self, name: str, parent: otel_context.Context | None = None, **attributes: Any) -> Iterator[trace.Span]:
        with self.tracer.start_as_current_span(name, context=parent, attributes=attributes or None) as span:
            yield span

    def shutdown(self) -> None:
        self.provider.shutdown()


def extract(headers: Mapping[str, str]) -> otel_context.Context:
    """The context of an incoming ``traceparent`` (or an empty one)."""
    return _PROPAGATOR.extract(carrier=dict(headers))


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def current_trace_id() -> str | None:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None


def span_for_projection(tracing: Tracing, projection: str, record: Recorded) -> None:
    """A span continuing the event's trace, recorded when its batch committed."""
    parent = extract({"traceparent": record.traceparent or ""})
    with tracing.span(
        f"project {projection}", parent, **{"ink.position": record.position, "ink.event_type": record.type}
    ):
        pass
