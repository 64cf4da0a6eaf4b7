"""The running system for integration tests: the real app on a real socket."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from adapters.http.app import build_app
from adapters.runtime.container import Container
from adapters.runtime.settings import Settings
from adapters.telemetry.tracing import Tracing

TEST_SECRET = "test-secret-" + "x" * 60  # long enough for HS512 too (the forgery tests try it)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningSystem:
    base_url: str
    container: Container
    runner: web.AppRunner

    async def stop(self) -> None:
        await self.runner.cleanup()
        await self.container.close()


async def start_system(
    nats_url: str, database_url: str, tracing: Tracing | None = None, *, run_jobs: bool = True, **overrides: Any
) -> RunningSystem:
    """The API, the projectors and (unless ``run_jobs`` is False) a job runner and the trigger dispatcher."""
    port = free_port()
    values: dict[str, Any] = {"http_port": port, "jwt_secret": TEST_SECRET, "nats_url": nats_url, "database_url": database_url}
    values.update(overrides)
    settings = Settings(**values)
    container = await Container.open(settings, nats_url=nats_url, database_url=database_url, tracing=tracing,
                                     run_jobs=run_jobs)
    app = build_app(container)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    return RunningSystem(f"http://127.0.0.1:{port}", container, runner)
