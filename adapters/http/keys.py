"""Typed keys for what the application hands its routes and middlewares.

``build_app`` sets each one from the composition root; a route asks for
exactly what it uses (``request.app[BUS]``), never for a container.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from adapters.read_your_writes import ReadYourWrites
from adapters.telemetry.metrics import Metrics
from adapters.telemetry.tracing import Tracing
from commands.bus import CommandBus
from commands.repository import Repository

if TYPE_CHECKING:
    from adapters.http.api import Api
    from adapters.live.hub import LiveHub
    from adapters.http.probes import Probes
    from adapters.http.limits import Limiters
    from adapters.http.tokens import TokenService

BUS: web.AppKey[CommandBus] = web.AppKey("bus", CommandBus)
READS: web.AppKey[ReadYourWrites] = web.AppKey("reads", ReadYourWrites)
REPOSITORY: web.AppKey[Repository] = web.AppKey("repository", Repository)
TOKENS: web.AppKey["TokenService"] = web.AppKey("tokens")
LIMITERS: web.AppKey["Limiters"] = web.AppKey("limiters")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)
TRACING: web.AppKey[Tracing] = web.AppKey("tracing", Tracing)
PROBES: web.AppKey["Probes"] = web.AppKey("probes")
API: web.AppKey["Api"] = web.AppKey("api")
LIVE: web.AppKey["LiveHub"] = web.AppKey("live")
