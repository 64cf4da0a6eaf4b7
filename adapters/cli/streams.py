"""``inkstream streams apply``."""

from __future__ import annotations

from adapters.jetstream.connection import connect_nats
from adapters.jetstream.streams import (
    StreamConfigError,
    apply_consumers,
    apply_streams,
    load_consumer_specs,
    load_stream_specs,
)
from adapters.runtime.settings import Settings


async def apply_command(settings: Settings) -> int:
    if not settings.nats_url:
        print("INKSTREAM_NATS_URL is not set (the embedded server applies streams.yaml itself at `inkstream up`)")
        return 2
    nc = await connect_nats(settings.nats_url)
    try:
        report = await apply_streams(nc, load_stream_specs(replicas=settings.stream_replicas,
                                                          overrides=settings.stream_overrides()))
        await apply_consumers(nc, load_consumer_specs(ack_wait=settings.job_ack_wait_seconds), report)
    except StreamConfigError as exc:
        print(f"error: {exc}")
        return 1
    finally:
        await nc.drain()
    for line in report.lines():
        print(line)
    return 0
