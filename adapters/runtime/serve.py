"""Running a role: start what it needs, serve until SIGTERM/SIGINT, stop cleanly.

``up`` starts an embedded nats-server and PostgreSQL under DATA_DIR unless
``NATS_URL``/``DATABASE_URL`` are set (MongoDB is never embedded: it is used
when ``MONGO_URL`` is set); everything stops in reverse order of starting,
from one ``AsyncExitStack``. ``project --store mongo`` projects into MongoDB
only, and needs no PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from contextlib import AsyncExitStack

import structlog
from aiohttp import web

from adapters.http.app import build_app, build_ops_app
from adapters.runtime import discovery
from adapters.runtime.lifecycle import Running, start, stores_to_open
from adapters.runtime.stores import StoreKind
from adapters.runtime.nats_server import EmbeddedNats
from adapters.runtime.postgres_server import EmbeddedPostgres
from adapters.runtime.role_processes import RoleProcesses
from adapters.runtime.settings import Settings
from adapters.telemetry.redaction import without_password

log = structlog.get_logger("inkstream.serve")

# What ``serve`` runs: everything in one process, or one role each.
ROLES = ("up", "api", "project", "work")


async def server_urls(settings: Settings, stack: AsyncExitStack, *, embedded: bool,
                      postgres: bool = True) -> tuple[str, str]:
    """NATS and PostgreSQL URLs: the configured ones, or embedded servers under DATA_DIR
    (none for PostgreSQL when the role does not use it)."""
    nats_url, database_url = settings.nats_url, settings.database_url
    data_dir = settings.resolved_data_dir()
    if not nats_url:
        if not embedded:
            raise SystemExit("INKSTREAM_NATS_URL is required for this role")
        nats = EmbeddedNats(data_dir / "nats")
        nats_url = await nats.start()
        stack.push_async_callback(nats.stop)
        log.info("embedded.nats", url=without_password(nats_url), pid=nats.pid)
    if not database_url and postgres:
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


async def serve_http(stack: AsyncExitStack, running: Running, host: str, port: int, *, ops_only: bool = False,
                     reuse_port: bool = False) -> None:
    """The API on ``host:port`` (``ops_only``: ``/health``, ``/ready`` and ``/metrics``, for a ``work`` process;
    ``reuse_port``: one of several processes listening on the port, the kernel spreading connections)."""
    s = running.services
    app = build_ops_app(probes=running, metrics=s.metrics, tracing=s.tracing) if ops_only else web_app(running)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    await web.TCPSite(runner, host, port, reuse_port=reuse_port or None).start()


async def start_api_workers(stack: AsyncExitStack, settings: Settings, env: dict[str, str]) -> None:
    """The API workers after the first (``INKSTREAM_API_WORKERS``): ``inkstream api`` processes on the
    same port with SO_REUSEPORT, so every core serves HTTP. They share what the cluster's API
    processes share (rate limits on JetStream counters, read-your-writes through the log and the
    projections' positions); stopped with this process (SIGTERM, then SIGKILL after a grace; the
    kernel kills them if it dies)."""
    n = settings.api_workers
    env = {**env, "INKSTREAM_API_WORKERS": str(n)}
    labels = ["api"] + [f"api.{i}" for i in range(2, n)]
    workers = RoleProcesses(["api"] * (n - 1), env,
                            {label: {"INKSTREAM_API_WORKER_INDEX": str(i)} for i, label in enumerate(labels, 1)})
    await workers.start()
    stack.push_async_callback(workers.stop)


async def serve(settings: Settings, role: str = "up", stores: list[StoreKind] | None = None) -> int:
    """``stores``: what a projecting role projects into (None: PostgreSQL, and MongoDB when configured)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as stack:
        project, api, work = role in ("up", "project"), role in ("up", "api"), role in ("up", "work")
        kinds = stores_to_open(settings, project=project, queries=api or work, project_into=stores)
        nats_url, database_url = await server_urls(settings, stack, embedded=(role == "up"),
                                                   postgres="postgres" in kinds)
        if role == "up":
            discovery.record(settings, nats_url, database_url)
            stack.callback(discovery.forget, settings)
        running = await start(stack, settings, nats_url=nats_url, database_url=database_url,
                              project=project, project_into=stores, commands=api, queries=api or work,
                              live=api, work=work)
        workers = api and settings.api_workers > 1
        if role in ("up", "api", "work"):
            await serve_http(stack, running, settings.http_host, settings.http_port, ops_only=role == "work",
                             reuse_port=workers)
            if workers and settings.api_worker_index == 0:  # after our own listener: a taken port stops us first
                await start_api_workers(stack, settings, {"INKSTREAM_NATS_URL": nats_url,
                                                          "INKSTREAM_DATABASE_URL": database_url})
            worker = {"worker": settings.api_worker_index} if workers else {}
            log.info("inkstream.listening", url=f"http://{settings.http_host}:{settings.http_port}", role=role,
                     **worker)
        else:
            log.info("inkstream.projecting", projections=[p.name for p in running.services.projections],
                     stores=sorted({r.store_kind for r in running.runners}))
        await stop.wait()
        log.info("inkstream.stopping")
    with contextlib.suppress(Exception):
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("inkstream.stopped")
    return 0
