"""The aiohttp application: the route declarations, the middlewares, and what routes need.

Every dependency arrives as an argument and is handed to routes through a
typed ``AppKey`` (``keys.py``); nothing here builds or starts anything.
"""

from __future__ import annotations

from aiohttp import web

from adapters.http import openapi, operations
from adapters.http.api import Api
from adapters.http.keys import API, BUS, LIMITERS, LIVE, METRICS, PROBES, READS, REPOSITORY, TOKENS, TRACING
from adapters.http.middleware import access_middleware, observability_middleware
from adapters.http.probes import Probes
from adapters.http.problems import problem_middleware
from adapters.http.limits import Limiters
from adapters.http.routes import auth, books, content, jobs, migrations
from adapters.http.routes import live as live_routes
from adapters.live.hub import LiveHub
from adapters.http.tokens import TokenService
from adapters.read_your_writes import ReadYourWrites
from adapters.telemetry.metrics import Metrics
from adapters.telemetry.tracing import Tracing
from commands.bus import CommandBus
from commands.repository import Repository


def build_api() -> Api:
    """Every route of the v1 contract (and the operations routes), declared once."""
    api = Api()
    for routes in (operations, auth, content, books, jobs, migrations, live_routes):
        routes.register_routes(api)
    return api


def build_app(
    *,
    bus: CommandBus,
    reads: ReadYourWrites,
    repository: Repository,
    tokens: TokenService,
    limiters: Limiters,
    probes: Probes,
    metrics: Metrics,
    tracing: Tracing,
    live: LiveHub,
    max_body_bytes: int,
) -> web.Application:
    app = web.Application(
        client_max_size=max_body_bytes,
        middlewares=[observability_middleware, problem_middleware, access_middleware],
    )
    app[BUS], app[READS], app[REPOSITORY] = bus, reads, repository
    app[TOKENS], app[LIMITERS], app[PROBES] = tokens, limiters, probes
    app[METRICS], app[TRACING], app[LIVE] = metrics, tracing, live
    api = build_api()
    app[API] = api
    openapi.install(app, api)
    api.install(app)
    live_routes.install_websocket(app)
    return app


def build_ops_app(*, probes: Probes, metrics: Metrics, tracing: Tracing) -> web.Application:
    """``/health``, ``/ready`` and ``/metrics`` only: what a ``work`` process serves."""
    app = web.Application(middlewares=[observability_middleware, problem_middleware])
    app[PROBES], app[METRICS], app[TRACING] = probes, metrics, tracing
    api = Api()
    operations.register_routes(api)
    app[API] = api
    api.install(app)
    return app
