"""Running a role: start what it needs, serve until SIGTERM/SIGINT, stop cleanly.

``up`` starts an embedded nats-server and PostgreSQL under DATA_DIR unless
``NATS_URL``/``DATABASE_URL`` are set; children are stopped in reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from contextlib import AsyncExitStack

import structlog
from aiohttp import web

from adapters.runtime import endpoints as runtime_endpoints
from adapters.runtime.embedded import EmbeddedNats, EmbeddedPostgres
from adapters.runtime.settings import Settings

log = structlog.get_logger("inkstream.serve")


async def endpoints(settings: Settings, stack: AsyncExitStack, *, embedded: bool) -> tuple[str, str]:
    """NATS and PostgreSQL URLs: the configured ones, or embedded servers under DATA_DIR."""
    nats_url, database_url = settings.nats_url, settings.database_url
    data_dir = settings.resolved_data_dir()
    if not nats_url:
        if not embedded:
            raise SystemExit("INKSTREAM_NATS_URL is required for this role")
        nats = EmbeddedNats(data_dir / "nats")
        nats_url = await nats.start()
        stack.push_async_callback(nats.stop)
        log.info("embedded.nats", url=nats_url, pid=nats.pid)
    if not database_url:
        if not embedded:
            raise SystemExit("INKSTREAM_DATABASE_URL is required for this role")
        data_dir.mkdir(parents=True, exist_ok=True)
        data_dir.chmod(data_dir.stat().st_mode | 0o055)
        pg = EmbeddedPostgres(data_dir / "pg")
        database_url = await pg.start()
        stack.push_async_callback(pg.stop)
        log.info("embedded.postgres", dsn=database_url)
    return nats_url, database_url


async def serve(settings: Settings, role: str = "up") -> int:
    from adapters.http.app import build_app, build_ops_app
    from adapters.runtime.container import Container

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as stack:
        nats_url, database_url = await endpoints(settings, stack, embedded=(role == "up"))
        if role == "up":
            runtime_endpoints.record(settings, nats_url, database_url)
            stack.callback(runtime_endpoints.forget, settings)
        container = await Container.open(
            settings, nats_url=nats_url, database_url=database_url, run_projectors=role in ("up", "project"),
            run_jobs=role in ("up", "work"),
        )
        stack.push_async_callback(container.close)
        if role in ("up", "api", "work"):
            app = build_app(container) if role != "work" else build_ops_app(container)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            await web.TCPSite(runner, settings.http_host, settings.http_port).start()
            log.info("inkstream.listening", url=f"http://{settings.http_host}:{settings.http_port}", role=role)
        else:
            log.info("inkstream.projecting", projections=[p.name for p in container.projections])
        await stop.wait()
        log.info("inkstream.stopping")
    with contextlib.suppress(Exception):
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("inkstream.stopped")
    return 0
