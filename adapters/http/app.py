"""The aiohttp application, assembled from the container and the route declarations."""

from __future__ import annotations

from aiohttp import web

from adapters.http import openapi, operations
from adapters.http.api import Api
from adapters.http.keys import API, CONTAINER
from adapters.http.middleware import auth_middleware, observability_middleware, rate_limit_middleware
from adapters.http.problems import problem_middleware
from adapters.http.routes import auth
from adapters.runtime.container import Container
from adapters.runtime.wiring import register_routes


def build_api() -> Api:
    api = Api()
    operations.register(api)
    auth.register_routes(api)
    register_routes(api)
    return api


def build_ops_app(container: Container) -> web.Application:
    """``/health``, ``/ready`` and ``/metrics`` only: what a ``work`` process serves."""
    app = web.Application(middlewares=[observability_middleware, problem_middleware])
    app[CONTAINER] = container
    api = Api()
    operations.register(api)
    app[API] = api
    api.install(app)
    return app


def build_app(container: Container) -> web.Application:
    app = web.Application(
        client_max_size=container.settings.max_body_bytes,
        middlewares=[observability_middleware, problem_middleware, auth_middleware, rate_limit_middleware],
    )
    app[CONTAINER] = container
    api = build_api()
    openapi.install(app, api)
    app[API] = api
    api.install(app)
    return app
