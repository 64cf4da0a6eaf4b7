"""Typed keys for what the application and requests carry."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from adapters.http.api import Api
    from adapters.runtime.container import Container

CONTAINER: web.AppKey["Container"] = web.AppKey("container")
API: web.AppKey["Api"] = web.AppKey("api")
EXTRA: web.AppKey[dict[str, Any]] = web.AppKey("extra")


def container(request: web.Request) -> "Container":
    return request.app[CONTAINER]
