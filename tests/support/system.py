"""The running system for integration tests: the real lifecycle and app on a real socket."""

from __future__ import annotations

import socket
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from adapters.runtime.bootstrap import Services
from adapters.runtime.lifecycle import Running, start
from adapters.runtime.serve import serve_http
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
    running: Running
    stack: AsyncExitStack

    @property
    def services(self) -> Services:
        return self.running.services

    async def stop(self) -> None:
        await self.stack.aclose()


async def start_system(nats_url: str, database_url: str, tracing: Tracing | None = None, **overrides: Any) -> RunningSystem:
    port = free_port()
    values: dict[str, Any] = {"http_port": port, "jwt_secret": TEST_SECRET, "nats_url": nats_url, "database_url": database_url}
    values.update(overrides)
    settings = Settings(**values)
    stack = AsyncExitStack()
    try:
        running = await start(stack, settings, nats_url=nats_url, database_url=database_url, project=True, live=True,
                              tracing=tracing)
        await serve_http(stack, running, "127.0.0.1", port)
    except BaseException:
        await stack.aclose()
        raise
    return RunningSystem(f"http://127.0.0.1:{port}", running, stack)
