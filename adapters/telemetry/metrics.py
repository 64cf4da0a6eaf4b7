"""Prometheus metrics, on a registry owned by the composition root (no globals)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from commands.repository import Repository


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # With ``api --workers N`` each worker answers /metrics for itself: the pid tells the answers apart.
        Gauge("inkstream_process_info", "This process (1)", ["pid"], registry=r).labels(str(os.getpid())).set(1)
        self.http_requests = Counter(
            "http_requests_total", "HTTP requests answered", ["method", "route", "status"], registry=r
        )
        self.http_duration = Histogram(
            "http_request_duration_seconds", "HTTP request duration", ["method", "route"], registry=r,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self._answered: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.events_appended = Counter("events_appended_total", "Events appended to the log", ["type"], registry=r)
        self.db_queries = Counter("db_queries_total", "Read-model queries and projection batches", ["kind"], registry=r)
        self.websocket_connections = Gauge(
            "websocket_connections_active", "Open WebSocket connections", registry=r
        )
        self.sse_connections = Gauge(
            "sse_connections_active", "Open server-sent event streams (GET /v1/events)", registry=r
        )
        self.live_pushes = Counter(
            "live_pushes_total", "Pushes sent to live connections", ["transport", "type"], registry=r
        )
        self.live_overflows = Counter(
            "live_overflows_total", "Live connections closed because they could not keep up", ["transport"],
            registry=r,
        )
        self.projection_lag = Gauge(
            "projection_lag_events", "Events in the log not yet applied by a projection", ["projection", "store"],
            registry=r,
        )
        self.projection_halted = Gauge(
            "projection_halted", "1 while a projection is halted on a poison event", ["projection", "store"],
            registry=r,
        )
        self.projection_events = Counter(
            "projection_events_total", "Events applied by a projection", ["projection", "store"], registry=r
        )
        self.jobs = Counter(
            "jobs_total", "Job transitions recorded by this process, by processor type and the status reached "
            "(pending, running, retrying, completed, failed, cancelled)", ["type", "status"], registry=r,
        )
        self.job_duration = Histogram(
            "job_duration_seconds", "Time of one attempt, from its start to its outcome", ["type", "outcome"],
            registry=r, buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
        )
        self.jobs_running = Gauge("jobs_running", "Jobs running in this process", ["type"], registry=r)
        self.jobs_queue = Gauge(
            "jobs_queue_depth", "The jobs consumer's messages: undelivered, and delivered but not yet acknowledged "
            "(running, queued for a fair turn, or waiting out a retry's backoff)", ["state"], registry=r,
        )
        self.migration_blobs = Counter(
            "migration_blobs_total", "Blobs a migration run dealt with in this process, by outcome (migrated, "
            "failed, skipped, reverted, revert_skipped) and whether the run was dry", ["outcome", "dry_run"],
            registry=r,
        )
        self.websocket_connections.set(0)
        self.sse_connections.set(0)

    def answered(self, method: str, route: str, status: int, seconds: float | None) -> None:
        """One HTTP request: counted, and its duration observed unless ``seconds`` is None. The
        labelled children are kept by their labels (``labels()`` costs a lock and a validation, 2 %
        of a GET); routes are templates and statuses few, so there are few of them."""
        key = (method, route, status)
        children = self._answered.get(key)
        if children is None:
            if len(self._answered) > 10_000:  # never, with templated routes: a bound all the same
                self._answered.clear()
            children = self._answered[key] = (self.http_requests.labels(method, route, str(status)),
                                              self.http_duration.labels(method, route))
        children[0].inc()
        if seconds is not None:
            children[1].observe(seconds)

    def watch_loads(self, repository: Repository) -> None:
        """Export where the repository's aggregate loads were answered from, read at each scrape."""
        self.registry.register(_Loads(repository))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _Loads(Collector):
    def __init__(self, repository: Repository) -> None:
        self._repository = repository

    def collect(self) -> Iterator[Metric]:
        r = self._repository
        loads = CounterMetricFamily(
            "aggregate_loads", "Aggregates the write side needed, by where they came from: the write-side cache, the "
            "read cache (after checking the log), a snapshot and the events after it, a rung (the snapshot below a "
            "past position) and the events up to it, or the whole log",
            labels=["source"],
        )
        for source, count in (("write_cache", r.cache_hits), ("read_cache", r.read_hits),
                              ("snapshot", r.snapshot_hits), ("rung", r.rung_hits), ("log", r.log_loads)):  # fmt: skip
            loads.add_metric([source], count)
        yield loads
        kept = CounterMetricFamily("snapshots_kept", "Snapshots this process took (written in the background)")
        kept.add_metric([], r.snapshots_kept)
        yield kept
        rungs = CounterMetricFamily("snapshot_rungs_kept", "Rungs this process took: snapshots at every "
                                    "rung_events-th version a fold passed (written in the background)")
        rungs.add_metric([], r.rungs_kept)
        yield rungs
