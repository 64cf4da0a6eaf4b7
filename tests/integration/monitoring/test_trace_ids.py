"""With nothing exporting (the default), a request's trace still travels: an incoming
``traceparent``'s trace id reaches the event the request appended (so a process that does
export can continue it), and a request without one gets a trace of its own."""

from __future__ import annotations

import aiohttp

from tests.support.sdk import SignUp
from tests.support.system import RunningSystem

INCOMING_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


async def _created_blob_traceparent(system: RunningSystem, http: aiohttp.ClientSession, token: str,
                                    headers: dict[str, str]) -> str | None:
    async with http.post("/v1/blobs", json={"data": {"n": 1}},
                         headers={"Authorization": f"Bearer {token}", **headers}) as r:
        assert r.status == 201, await r.text()
        position = (await r.json())["position"]
    recorded = await system.services.store.event_at(position)
    assert recorded is not None and recorded.type == "Blob.Created"
    return recorded.traceparent


async def test_a_requests_trace_reaches_the_log_when_nothing_exports(
    system: RunningSystem, http: aiohttp.ClientSession, sign_up: SignUp
) -> None:
    assert not system.services.tracing.enabled, "the shared system exports nothing"
    ink = await sign_up("tracer")
    assert ink.token is not None

    incoming = f"00-{INCOMING_TRACE}-00f067aa0ba902b7-01"
    carried = await _created_blob_traceparent(system, http, ink.token, {"traceparent": incoming})
    assert carried is not None
    version, trace_id, span_id, _flags = carried.split("-")
    assert (version, trace_id) == ("00", INCOMING_TRACE) and span_id != "00f067aa0ba902b7"

    own = [await _created_blob_traceparent(system, http, ink.token, {}) for _ in range(2)]
    assert all(p is not None and len(p) == 55 for p in own)
    assert len({p.split("-")[1] for p in own if p}) == 2, "each request a trace of its own"
