"""The running system for integration tests: the real lifecycle and app on a real socket."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from adapters.runtime.bootstrap import Services
from adapters.runtime.nats_server import EmbeddedNats
from adapters.runtime.lifecycle import Running, start
from adapters.runtime.serve import serve_http
from adapters.runtime.settings import Settings
from adapters.telemetry.tracing import Tracing
from tests.support.servers import Database, start_nats

TEST_SECRET = "test-secret-" + "x" * 60  # long enough for HS512 too (the forgery tests try it)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningSystem:
    base_url: str
    running: Running
    stack: AsyncExitStack

    @property
    def services(self) -> Services:
        return self.running.services

    @property
    def read_store(self) -> str:
        return self.running.read_store

    def cli_env(self, **extra: str) -> dict[str, str]:
        """The environment for an ``inkstream`` command against this system."""
        env = {**os.environ, "INKSTREAM_NATS_URL": self.running.nats_url,
               "INKSTREAM_DATABASE_URL": self.running.database_url, "INKSTREAM_MONGO_URL": self.running.mongo_url,
               "INKSTREAM_READ_STORE": self.running.read_store}
        return {**env, **extra}

    async def stop(self) -> None:
        await self.stack.aclose()


async def start_system(
    nats_url: str, database_url: str, tracing: Tracing | None = None, *, run_jobs: bool = True, **overrides: Any
) -> RunningSystem:
    """The API, the projectors and (unless ``run_jobs`` is False) a job runner and the trigger dispatcher."""
    port = free_port()
    values: dict[str, Any] = {"http_port": port, "jwt_secret": TEST_SECRET, "nats_url": nats_url, "database_url": database_url}
    values.update(overrides)
    settings = Settings(**values)
    stack = AsyncExitStack()
    try:
        running = await start(stack, settings, nats_url=nats_url, database_url=database_url, project=True, live=True,
                              work=run_jobs, tracing=tracing)
        await serve_http(stack, running, "127.0.0.1", port)
    except BaseException:
        await stack.aclose()
        raise
    return RunningSystem(f"http://127.0.0.1:{port}", running, stack)


@asynccontextmanager
async def system_on_own_log(database: Database, **overrides: Any) -> AsyncIterator[tuple[RunningSystem, EmbeddedNats]]:
    """A system on a nats-server of its own (a temporary store) and a new database: for tests whose log must
    be theirs alone (jobs run only by their runner, tens of megabytes no later system should replay)."""
    server, root = await start_nats()
    assert server.url
    system = await start_system(server.url, await database.new_database(), **overrides)
    try:
        yield system, server
    finally:
        await system.stop()
        await server.stop()
        shutil.rmtree(root, ignore_errors=True)
