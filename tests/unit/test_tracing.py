"""Tracing without an exporter records nothing, yet log lines and the log still carry a trace id."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters.telemetry.tracing import Tracing, current_trace_id, current_traceparent, extract

INCOMING = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest.fixture(autouse=True)
def no_otlp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)


def test_without_an_exporter_an_incoming_trace_id_is_kept_and_carried_on() -> None:
    tracing = Tracing()
    assert not tracing.enabled
    with tracing.span("HTTP POST /v1/blobs", extract({"traceparent": INCOMING})):
        assert current_trace_id() == "4bf92f3577b34da6a3ce929d0e0e4736"
        with tracing.span("command CreateBlob"):  # nested: free, same trace
            carried = current_traceparent()
    assert carried is not None and carried.split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert current_trace_id() is None  # nothing leaks past the entry span


def test_without_an_exporter_a_request_without_traceparent_still_gets_a_trace_id() -> None:
    tracing = Tracing()
    seen = set()
    for _ in range(3):
        with tracing.span("HTTP GET /health", extract({})):
            seen.add(current_trace_id())
    assert None not in seen and len(seen) == 3


def test_with_an_exporter_spans_are_recorded_as_a_tree() -> None:
    exporter = InMemorySpanExporter()
    tracing = Tracing("t", exporter)
    with tracing.span("HTTP POST /v1/blobs", extract({"traceparent": INCOMING})):
        with tracing.span("command CreateBlob"):
            pass
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert spans["command CreateBlob"].parent.span_id == spans["HTTP POST /v1/blobs"].context.span_id
    assert format(spans["HTTP POST /v1/blobs"].context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"


def test_without_an_exporter_entry_ids_are_what_an_entry_span_would_carry() -> None:
    """The HTTP entry takes its ids from ``entry_ids`` (no OpenTelemetry context) when nothing
    exports: the same trace id and traceparent form as the span it replaces."""
    tracing = Tracing()
    traceparent, trace_id = tracing.entry_ids(INCOMING)
    with tracing.span("HTTP POST /v1/blobs", extract({"traceparent": INCOMING})):
        from_span = current_traceparent()
    assert trace_id == "4bf92f3577b34da6a3ce929d0e0e4736" == traceparent.split("-")[1]
    assert from_span is not None and len(traceparent) == len(from_span) and traceparent[:36] == from_span[:36]
    assert traceparent.endswith("-00") and traceparent.split("-")[2] != "00f067aa0ba902b7"  # a span of its own

    fresh = {tracing.entry_ids(None) for _ in range(3)} | {tracing.entry_ids("00-garbage")}
    assert len({t for _, t in fresh}) == 4 and all(len(t) == 32 and int(t, 16) for _, t in fresh)
    assert all(p.split("-")[1] == t and len(p) == 55 for p, t in fresh)
