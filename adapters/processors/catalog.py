"""The processor types of this deployment, found through entry points.

Each entry point of the group ``inkstream.processors`` names a factory
``(ProcessorDeps) -> ProcessorType``; its entry-point name is the type's
name. inkstream's own types are registered the same way in its
``pyproject.toml``, so a team adds a type by shipping a package with

    [project.entry-points."inkstream.processors"]
    my-type = "my_package.processors:make_my_type"

and installing it beside inkstream (in every API and ``work`` process: the
API checks configs at registration, the runners run the jobs). The built-in
types are also added directly when the package metadata is missing (running
from a source tree that was never installed).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

import structlog

from adapters.processors.base import ProcessorDeps, ProcessorType
from domain.errors import FieldError

log = structlog.get_logger("inkstream.processors")

GROUP = "inkstream.processors"


def _builtins() -> dict[str, Callable[[ProcessorDeps], ProcessorType]]:
    from adapters.processors.js_transform import make_js_transform
    from adapters.processors.text_expansion import make_text_expansion

    return {"js-transform": make_js_transform, "text-expansion": make_text_expansion}


class ProcessorCatalog:
    """Implements ``commands.ports.ProcessorTypes``; the runner takes types from it by name."""

    def __init__(self, types: dict[str, ProcessorType]) -> None:
        self._types = dict(types)

    @classmethod
    def discover(cls, deps: ProcessorDeps, group: str = GROUP) -> ProcessorCatalog:
        factories: dict[str, Callable[[ProcessorDeps], Any]] = dict(_builtins())
        for entry in entry_points(group=group):
            try:
                factories[entry.name] = entry.load()
            except Exception as exc:  # noqa: BLE001 - one broken plugin must not take the others down
                log.error("processors.entry_point_failed", name=entry.name, value=entry.value, error=str(exc))
        types = {name: factory(deps) for name, factory in factories.items()}
        log.debug("processors.discovered", types=sorted(types))
        return cls(types)

    def names(self) -> list[str]:
        return sorted(self._types)

    def get(self, type_name: str) -> ProcessorType | None:
        return self._types.get(type_name)

    async def check_config(self, type_name: str, config: dict[str, Any]) -> list[FieldError]:
        kind = self._types.get(type_name)
        if kind is None:
            return [FieldError("/type", f"unknown processor type {type_name!r}")]
        return await kind.check_config(config)

    def check_input(self, type_name: str, config: dict[str, Any], data: Any) -> list[FieldError]:
        kind = self._types.get(type_name)
        return [] if kind is None else kind.check_input(config, data)
