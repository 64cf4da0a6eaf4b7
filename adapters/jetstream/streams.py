"""Applying ``streams.yaml`` (streams, then durable consumers) to a JetStream server, idempotently.

Settings that depend on the deployment (replicas, the duplicate window, how
long counters and known addresses live) come from the process's settings as
overrides by stream name; the file keeps the defaults and says what overrides
them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from nats.aio.client import Client
from nats.js import api
from nats.js.errors import APIError, NotFoundError

DEFAULT_STREAMS_FILE = Path(__file__).resolve().parents[2] / "streams.yaml"

# What JetStream cannot change on an existing stream.
_IMMUTABLE = ("storage", "retention", "allow_msg_counter")


class StreamConfigError(Exception):
    """The running stream differs from streams.yaml in a way JetStream cannot update."""


@dataclass
class ApplyReport:
    created: list[str] = field(default_factory=list)
    updated: dict[str, list[str]] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"created {name}" for name in self.created]
        out += [f"updated {name}: {', '.join(fields)}" for name, fields in self.updated.items()]
        out += [f"unchanged {name}" for name in self.unchanged]
        return out


def load_stream_specs(
    path: Path | None = None,
    replicas: int | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> list[api.StreamConfig]:
    """The streams of ``streams.yaml``; ``overrides`` replaces fields of the file (its spelling) by stream name."""
    raw = yaml.safe_load((path or DEFAULT_STREAMS_FILE).read_text())
    overrides = overrides or {}
    return [_to_config({**spec, **overrides.get(spec["name"], {})}, replicas) for spec in raw.get("streams", [])]


def _to_config(spec: dict[str, Any], replicas: int | None) -> api.StreamConfig:
    counter = bool(spec.get("counter", False))
    return api.StreamConfig(
        name=spec["name"],
        subjects=list(spec["subjects"]),
        storage=api.StorageType(spec.get("storage", "file")),
        retention=api.RetentionPolicy(spec.get("retention", "limits")),
        max_age=float(spec.get("max_age_seconds", 0)),
        duplicate_window=float(spec.get("duplicate_window_seconds", 120)),
        allow_direct=bool(spec.get("allow_direct", True)),
        deny_delete=bool(spec.get("deny_delete", True)),
        deny_purge=bool(spec.get("deny_purge", True)),
        num_replicas=int(replicas if replicas is not None else spec.get("replicas", 1)),
        max_msgs_per_subject=int(spec.get("max_msgs_per_subject", -1)),
        max_bytes=int(spec.get("max_bytes", -1)),  # when full, the oldest messages go (discard old)
        # a counter stream (ADR-49): ``Nats-Incr`` adds to a subject's total, the ack carries the new total
        allow_msg_counter=True if counter else None,
    )


@dataclass(frozen=True)
class ConsumerSpec:
    stream: str
    config: api.ConsumerConfig

    @property
    def label(self) -> str:
        return f"consumer {self.stream}/{self.config.durable_name}"


def load_consumer_specs(path: Path | None = None, ack_wait: float | None = None) -> list[ConsumerSpec]:
    """The durable consumers of ``streams.yaml``; ``ack_wait`` overrides the jobs consumer's."""
    raw = yaml.safe_load((path or DEFAULT_STREAMS_FILE).read_text())
    specs = []
    for spec in raw.get("consumers", []):
        config = api.ConsumerConfig(
            durable_name=spec["name"],
            filter_subject=spec.get("filter_subject"),
            filter_subjects=list(spec["filter_subjects"]) if spec.get("filter_subjects") else None,
            deliver_policy=api.DeliverPolicy(spec.get("deliver_policy", "all")),
            ack_policy=api.AckPolicy(spec.get("ack_policy", "explicit")),
            ack_wait=float(ack_wait if ack_wait is not None and spec["name"] == "jobs"
                           else spec.get("ack_wait_seconds", 30)),
            max_deliver=int(spec.get("max_deliver", -1)),
            max_ack_pending=int(spec.get("max_ack_pending", 1000)),
        )
        specs.append(ConsumerSpec(spec["stream"], config))
    return specs


_CONSUMER_FIELDS = ("filter_subject", "filter_subjects", "deliver_policy", "ack_policy", "ack_wait", "max_deliver", "max_ack_pending")


async def apply_consumers(nc: Client, specs: list[ConsumerSpec], report: ApplyReport | None = None) -> ApplyReport:
    """Create each durable consumer, or update it in place when its settings differ."""
    js = nc.jetstream()
    report = report or ApplyReport()
    for spec in specs:
        want = spec.config
        try:
            have = (await js.consumer_info(spec.stream, want.durable_name or "")).config
        except NotFoundError:
            await js.add_consumer(spec.stream, want)
            report.created.append(spec.label)
            continue
        diffs = [f for f in _CONSUMER_FIELDS if _norm(getattr(want, f)) != _norm(getattr(have, f))]
        if not diffs:
            report.unchanged.append(spec.label)
            continue
        try:
            await js.add_consumer(spec.stream, want)  # an existing durable is updated in place
        except APIError as exc:
            raise StreamConfigError(f"{spec.label} cannot be changed in place ({', '.join(diffs)}): {exc}") from exc
        report.updated[spec.label] = diffs
    return report


def _norm(value: Any) -> Any:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _differences(want: api.StreamConfig, have: api.StreamConfig) -> list[str]:
    fields = (
        "subjects", "storage", "retention", "max_age", "duplicate_window",
        "allow_direct", "deny_delete", "deny_purge", "num_replicas", "max_msgs_per_subject",
        "allow_msg_counter", "max_bytes",
    )
    diffs = []
    for name in fields:
        a, b = getattr(want, name), getattr(have, name)
        if name in ("max_age", "duplicate_window"):
            a, b = float(a or 0), float(b or 0)
        if name == "subjects":
            a, b = sorted(a or []), sorted(b or [])
        if name == "allow_msg_counter":
            a, b = bool(a), bool(b)
        if name in ("max_msgs_per_subject", "max_bytes"):
            a, b = int(a if a is not None else -1), int(b if b is not None else -1)
        if a != b:
            diffs.append(name)
    return diffs


async def apply_streams(nc: Client, specs: list[api.StreamConfig]) -> ApplyReport:
    js = nc.jetstream()
    report = ApplyReport()
    for want in specs:
        try:
            info = await js.stream_info(want.name)
        except NotFoundError:
            await js.add_stream(want)
            report.created.append(want.name)
            continue
        diffs = _differences(want, info.config)
        if not diffs:
            report.unchanged.append(want.name)
            continue
        blocked = [d for d in diffs if d in _IMMUTABLE]
        if blocked:
            detail = ", ".join(f"{d}: running={getattr(info.config, d)} wanted={getattr(want, d)}" for d in blocked)
            raise StreamConfigError(
                f"stream {want.name} cannot be changed in place ({detail}); "
                "create a new stream and migrate, or restore streams.yaml"
            )
        await js.update_stream(want)
        report.updated[want.name] = diffs
    return report
