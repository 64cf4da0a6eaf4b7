"""Running a role: start what it needs, serve until SIGTERM/SIGINT, stop cleanly.

``up`` starts an embedded nats-server and PostgreSQL under DATA_DIR unless
``NATS_URL``/``DATABASE_URL`` are set; everything stops in reverse order of
starting, from one ``AsyncExitStack``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from contextlib import AsyncExitStack

import structlog
from aiohttp import web

from adapters.http.app import build_app
from adapters.runtime import discovery
from adapters.runtime.lifecycle import Running, start
from adapters.runtime.nats_server import EmbeddedNats
from adapters.runtime.postgres_server import EmbeddedPostgres
from adapters.runtime.settings import Settings
from adapters.telemetry.redaction import without_password

log = structlog.get_logger("inkstream.serve")

# What ``serve`` runs: everything in one process, or one role each.
ROLES = ("up", "api", "project")


async def server_urls(settings: Settings, stack: AsyncExitStack, *, embedded: bool) -> tuple[str, str]:
    """NATS and PostgreSQL URLs: the configured ones, or embedded servers under DATA_DIR."""
    nats_url, database_url = settings.nats_url, settings.database_url
    data_dir = settings.resolved_data_dir()
    if not nats_url:
        if not embedded:
            raise SystemExit("INKSTREAM_NATS_URL is required for this role")
        nats = EmbeddedNats(data_dir / "nats")
        nats_url = await nats.start()
        stack.push_async_callback(nats.stop)
        log.info("embedded.nats", url=without_password(nats_url), pid=nats.pid)
    if not database_url:
        if not embedded:
            raise SystemExit("INKSTREAM_DATABASE_URL is required for this role")
        data_dir.mkdir(parents=True, exist_ok=True)
        data_dir.chmod(data_dir.stat().st_mode | 0o055)
        pg = EmbeddedPostgres(data_dir / "pg")
        database_url = await pg.start()
        stack.push_async_callback(pg.stop)
        log.info("embedded.postgres", dsn=without_password(database_url))
    return nats_url, database_url


def web_app(running: Running) -> web.Application:
    """The HTTP application on a started process's services."""
    s = running.services
    return build_app(bus=s.bus, reads=s.reads, repository=s.repo, tokens=s.tokens, limiters=s.limiters,
                     probes=running, metrics=s.metrics, tracing=s.tracing, live=running.live,
                     max_body_bytes=s.settings.max_body_bytes)


async def serve_http(stack: AsyncExitStack, running: Running, host: str, port: int) -> None:
    runner = web.AppRunner(web_app(running), access_log=None)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    await web.TCPSite(runner, host, port).start()


async def serve(settings: Settings, role: str = "up") -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as stack:
        nats_url, database_url = await server_urls(settings, stack, embedded=(role == "up"))
        if role == "up":
            discovery.record(settings, nats_url, database_url)
            stack.callback(discovery.forget, settings)
        running = await start(stack, settings, nats_url=nats_url, database_url=database_url,
                              project=role in ("up", "project"), commands=role in ("up", "api"),
                              live=role in ("up", "api"))
        if role in ("up", "api"):
            await serve_http(stack, running, settings.http_host, settings.http_port)
            log.info("inkstream.listening", url=f"http://{settings.http_host}:{settings.http_port}", role=role)
        else:
            log.info("inkstream.projecting", projections=[p.name for p in running.services.projections])
        await stop.wait()
        log.info("inkstream.stopping")
    with contextlib.suppress(Exception):
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("inkstream.stopped")
    return 0
