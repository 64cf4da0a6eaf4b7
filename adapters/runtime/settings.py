"""Settings from the environment (prefix ``INKSTREAM_``), one object for the whole process."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from adapters.http.ratelimit import window_seconds
from adapters.runtime.processes import read_or_create_secret
from domain.limits import CEILINGS, MIB, Limits

_DEFAULT = Limits()


def _limit(name: str) -> int:
    """A ``Limits`` field as a setting: its default, and never above the domain's ceiling."""
    return Field(default=getattr(_DEFAULT, name), ge=1, le=CEILINGS[name])


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INKSTREAM_", extra="ignore")

    http_host: str = "127.0.0.1"
    http_port: int = 8000
    data_dir: Path = Path("./.inkstream")
    nats_url: str = ""
    database_url: str = ""
    mongo_url: str = ""
    read_store: Literal["postgres", "mongo"] = "postgres"
    jwt_secret: str = ""
    jwt_lifetime_seconds: int = 3600
    rate_limit_per_second: float = 50.0
    rate_limit_burst: int = 100
    # what one request may read from the log (events: ``adapters.work``) for the price of one; each further
    # this many count as one more request, charged once it is answered. Requests differ a thousandfold in
    # cost (an ``as_of`` deep in a long history folds up to a rung's 1,024 events, about 30 ms of CPU), so
    # counted only by number, one account could keep a core busy at the request rate
    rate_limit_events_per_request: int = Field(default=100, ge=1)
    anonymous_rate_limit_per_second: float = 100.0
    anonymous_rate_limit_burst: int = 200
    # password checks (login, register) per client address (an IPv6 /64): each is about 30 ms of a core
    sign_in_rate_per_second: float = Field(default=25.0, gt=0)
    sign_in_burst: int = Field(default=200, ge=1)
    login_failures_per_minute: float = 10.0  # per (account, client address)
    login_account_failures_per_minute: float = 100.0  # per account, from addresses it never logged in from
    login_known_address_days: float = 30.0
    # bytes of request bodies a user may send to be written to the log (a token bucket across the API
    # processes): the request rate alone let one account append 50 MiB a second, forever
    write_bytes_per_second: float = Field(default=1024.0 * 1024, gt=0)
    write_bytes_burst: int = Field(default=64 * 1024 * 1024, ge=1024 * 1024)
    # book exports in one API process: running per user (one more is a 429); reading or rendering a step
    # at a time, in all (more wait; sending is never a step)
    exports_per_user: int = Field(default=2, ge=1)
    exports_per_process: int = Field(default=4, ge=1)
    # an export whose client takes nothing of it for this long is given up (its book freed, its slot too)
    export_stall_seconds: float = Field(default=300.0, gt=0)
    # what all exports of one API process may hold in memory at once (past it a 503; one export always runs)
    export_memory_mb: int = Field(default=256, ge=1)
    # pages of blobs, schema versions and a blob's history in one API process: read and encoded per user
    # at once (more wait their turn, and past the waiting ones a 429); at once in all (more wait)
    pages_per_user: int = Field(default=2, ge=1)
    pages_waiting_per_user: int = Field(default=32, ge=0)
    pages_per_process: int = Field(default=4, ge=1)
    log_format: Literal["console", "json"] = "console"
    log_level: str = "info"
    stream_replicas: int = 1
    # Nats-Msg-Id dedupe of the log: a command retried within it lands once (see docs/operations.md for its cost)
    duplicate_window_seconds: float = Field(default=86400.0, gt=0)
    # how long a command or query waits for the log (a leader election, a reconnect) before it answers 503
    log_wait_seconds: float = Field(default=10.0, ge=0)
    # rate-limit and login counts shared through NATS: how long a request waits for them before it
    # falls back to the process's own buckets
    shared_limits_timeout_seconds: float = Field(default=0.5, gt=0)
    max_body_bytes: int = 1024 * 1024
    read_wait_seconds: float = 5.0
    argon2_time_cost: int = 2
    argon2_memory_kib: int = 19456
    argon2_parallelism: int = 1
    projector_batch_size: int = 500
    live_queue_size: int = 1000  # messages waiting for one live connection; more closes it (4408)
    live_max_connections_per_user: int = 20  # WebSocket and SSE together, per API process
    live_max_subscriptions_per_user: int = 200  # per API process
    # bytes of the messages waiting for one live connection (one always fits); more closes it (4408)
    live_queue_bytes: int = Field(default=8 * MIB, ge=1)
    # the same bytes for all of one user's live connections together, per API process (20 connections
    # that do not read held 20 x 8 MiB): past it, the connection a push does not fit is closed (4408)
    live_user_queue_bytes: int = Field(default=32 * MIB, ge=1)
    live_states: int = Field(default=10_000, ge=1)  # aggregate states the live router keeps ...
    live_states_bytes: int = Field(default=64 * MIB, ge=0)  # ... and their encoded bytes
    live_catch_ups_per_user: int = Field(default=2, ge=1)  # catch-ups from since reading the log at once
    live_catch_ups_per_process: int = Field(default=4, ge=1)  # (more wait their turn)
    live_catch_up_read_bytes: int = Field(default=8 * MIB, ge=1)  # about the bytes of one read of the log
    live_catch_up_states_bytes: int = Field(default=16 * MIB, ge=0)  # aggregate states one catch-up keeps
    # time a catch-up may wait, in all, for its connection to read while holding a turn (then 4408
    # as soon as another catch-up waits for a turn of the process)
    live_catch_up_stall_seconds: float = Field(default=10.0, ge=0)
    live_catch_up_slice_seconds: float = Field(default=1.0, ge=0)
    ws_heartbeat_seconds: float = 20.0  # ping interval; no pong within half of it closes the connection
    ws_max_message_bytes: int = 64 * 1024  # a bigger client message closes the connection (1009)
    ws_frames_per_second: float = Field(default=100.0, gt=0)  # pings, pongs, binary frames; past them: 4429
    ws_frames_burst: int = Field(default=200, ge=1)
    ws_auth_timeout_seconds: float = 10.0  # the first message (auth) must arrive within this
    sse_keepalive_seconds: float = 15.0
    sandbox_workers: int = Field(default=2, ge=1)
    sandbox_timeout_ms: int = Field(default=1000, ge=1)
    sandbox_memory_mb: int = Field(default=64, ge=8)
    sandbox_queue_seconds: float = Field(default=30.0, gt=0)
    max_chapter_bytes: int = _limit("chapter_bytes")
    max_chapters_per_book: int = _limit("chapters_per_book")
    max_book_bytes: int = _limit("book_bytes")
    max_metadata_bytes: int = _limit("metadata_bytes")
    max_blob_bytes: int = _limit("blob_bytes")
    max_schema_bytes: int = _limit("schema_bytes")
    max_schema_versions: int = _limit("schema_versions")
    max_schema_history_bytes: int = _limit("schema_history_bytes")
    write_cache_bytes: int = Field(default=256 * MIB, ge=0)
    read_cache_bytes: int = Field(default=64 * MIB, ge=0)
    # Read-model rows a query reads by id (a user, a blob), kept in the process until a projector's
    # commit says they changed: a GET of an unchanged row asks PostgreSQL nothing (0: always ask).
    row_cache_bytes: int = Field(default=64 * MIB, ge=0)
    # A load that folds this many events of a blob, book, job or processor keeps a snapshot of it (0: no snapshots).
    snapshot_after_events: int = Field(default=32, ge=0)
    # A fold of a blob, book, job or processor also keeps the snapshot at every this-many-th version (a rung),
    # so a load at a past position folds at most this many events (0: no rungs; a past load folds from the start).
    snapshot_rung_events: int = Field(default=1024, ge=0)
    validation_workers: int = Field(default=2, ge=1)
    validation_budget_ms: int = Field(default=1000, ge=10)
    validation_memory_mib: int = Field(default=512, ge=128)
    llm_base_url: str = ""
    llm_api_key: str = ""
    llm_timeout_seconds: float = Field(default=60.0, gt=0)
    llm_max_retries: int = Field(default=3, ge=0, le=10)
    job_concurrency: int = Field(default=8, ge=1, le=256)
    job_max_running_per_user: int = Field(default=4, ge=1)
    # the memory limits of the jobs one runner runs at once, summed: a job waits for room (jobs/memory.py)
    job_memory_budget_mb: int = Field(default=2048, ge=16)
    job_ack_wait_seconds: float = Field(default=30.0, ge=1)
    job_retry_backoff_seconds: float = Field(default=1.0, ge=0)
    job_retry_backoff_max_seconds: float = Field(default=60.0, ge=0)
    # Blobs per batch of a migration run: one sandbox call per transform and one progress event per batch.
    migration_batch_size: int = Field(default=100, ge=1, le=500)
    api_workers: int = Field(default=1, ge=1, le=64)
    api_worker_index: int = Field(default=0, ge=0)
    """Set by the first API process on the others it starts (1, 2, ...): they start none themselves."""
    service_name: str = Field(default="inkstream")

    def limits(self) -> Limits:
        """The domain's limits as configured (each within its ceiling: the fields refuse more)."""
        return Limits(
            chapter_bytes=self.max_chapter_bytes,
            chapters_per_book=self.max_chapters_per_book,
            book_bytes=self.max_book_bytes,
            metadata_bytes=self.max_metadata_bytes,
            blob_bytes=self.max_blob_bytes,
            schema_bytes=self.max_schema_bytes,
            schema_versions=self.max_schema_versions,
            schema_history_bytes=self.max_schema_history_bytes,
        )

    @model_validator(mode="after")
    def _a_users_live_budget_holds_a_connections(self) -> Settings:
        """Below one connection's budget, the user's would close connections a reader could keep."""
        if self.live_user_queue_bytes < self.live_queue_bytes:
            raise ValueError(f"live_user_queue_bytes ({self.live_user_queue_bytes}) must be at least "
                             f"live_queue_bytes ({self.live_queue_bytes})")
        return self

    @model_validator(mode="after")
    def _largest_body_fits_the_write_burst(self) -> Settings:
        """A body larger than the burst of written bytes could never pass (its Retry-After a lie)."""
        if self.write_bytes_burst < self.max_body_bytes:
            raise ValueError(f"write_bytes_burst ({self.write_bytes_burst}) must be at least max_body_bytes "
                             f"({self.max_body_bytes}): a body that large could never be written")
        return self

    @model_validator(mode="after")
    def _the_domain_limits_hold_together(self) -> Settings:
        """``Limits`` checks its own fields together (a schema's history holds at least one schema):
        built here, a bad combination is refused with the settings, not first when the system starts."""
        self.limits()
        return self

    def rate_windows(self) -> dict[str, float]:
        """The window of each shared limit: the time its bucket takes to refill (burst / rate)."""
        return {
            "user": window_seconds(self.rate_limit_per_second, self.rate_limit_burst),
            "anonymous": window_seconds(self.anonymous_rate_limit_per_second, self.anonymous_rate_limit_burst),
            "written": window_seconds(self.write_bytes_per_second, self.write_bytes_burst),
            "sign-in": window_seconds(self.sign_in_rate_per_second, self.sign_in_burst),
            "login-pair": 60.0,  # the login limits are per minute, their bucket holds one minute's tries
            "login-account": 60.0,
        }

    def stream_overrides(self) -> dict[str, dict[str, float]]:
        """What the settings change in streams.yaml, by stream (see adapters.jetstream.streams)."""
        return {
            "INK": {"duplicate_window_seconds": self.duplicate_window_seconds},
            # a window's counter is read until the end of the next window: twice the longest, and a margin
            "INK_LIMITS": {"max_age_seconds": 2 * max(self.rate_windows().values()) + 30},
            # (a max_age of 0 would keep them for ever)
            "INK_KNOWN_ADDRESSES": {"max_age_seconds": max(1.0, self.login_known_address_days * 86400)},
        }

    def resolved_data_dir(self) -> Path:
        return self.data_dir.expanduser().resolve()

    def resolve_jwt_secret(self) -> str:
        """The configured secret, or one generated once into DATA_DIR (mode 600)."""
        if self.jwt_secret:
            return self.jwt_secret
        return read_or_create_secret(self.resolved_data_dir() / "jwt_secret", nbytes=48)
