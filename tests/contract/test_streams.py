"""streams.yaml applied idempotently: created once, unchanged after, editable settings
updated in place, a change JetStream cannot make reported clearly."""

from __future__ import annotations

import dataclasses
import uuid

import nats
import pytest

from adapters.jetstream.streams import StreamConfigError, apply_streams, load_stream_specs
from nats.js import api


def spec_for_test() -> api.StreamConfig:
    base = load_stream_specs()[0]
    tag = uuid.uuid4().hex[:8]
    return dataclasses.replace(base, name=f"S{tag}", subjects=[f"s{tag}.>"])


async def test_the_ink_stream_has_the_settings_of_streams_yaml(nc: nats.aio.client.Client) -> None:
    info = await nc.jetstream().stream_info("INK")
    c = info.config
    assert c.subjects == ["ink.>"] and c.storage == api.StorageType.FILE
    assert c.allow_direct and c.deny_delete and c.deny_purge and not c.max_age
    assert c.duplicate_window == 86400  # 24 h: INKSTREAM_DUPLICATE_WINDOW_SECONDS


async def test_apply_is_idempotent_updates_what_it_can_and_reports_what_it_cannot(nc: nats.aio.client.Client) -> None:
    spec = spec_for_test()
    assert (await apply_streams(nc, [spec])).created == [spec.name]
    assert (await apply_streams(nc, [spec])).unchanged == [spec.name]
    wider = dataclasses.replace(spec, duplicate_window=300.0)
    report = await apply_streams(nc, [wider])
    assert report.updated == {spec.name: ["duplicate_window"]}
    assert (await nc.jetstream().stream_info(spec.name)).config.duplicate_window == 300
    with pytest.raises(StreamConfigError, match="storage"):
        await apply_streams(nc, [dataclasses.replace(wider, storage=api.StorageType.MEMORY)])
