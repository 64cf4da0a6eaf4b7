"""The command bus: the one place that names, traces and dispatches every command.

A command is a small frozen dataclass named for what it asks
(``CreateBlob``); each context registers one handler per command type. Routes,
the CLI and subscribers (job runner, triggers) all go through ``handle``, so a
command is traced under its own name once, whoever sent it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

from commands.repository import Context

R = TypeVar("R")
Handler = Callable[[Any, Context], Awaitable[Any]]


class Tracer(Protocol):
    def span(self, name: str, /, **attributes: Any) -> AbstractContextManager[Any]: ...


class CommandBus:
    def __init__(self, handlers: Mapping[type, Handler], tracer: Tracer | None = None) -> None:
        self._handlers = dict(handlers)
        self._tracer = tracer

    def __iter__(self) -> Iterator[type]:
        return iter(self._handlers)

    async def handle(self, command: Any, ctx: Context) -> Any:
        """Run the command's handler; a command type nobody registered is a programming error."""
        handler = self._handlers[type(command)]
        if self._tracer is None:
            return await handler(command, ctx)
        with self._tracer.span(f"command {type(command).__name__}"):
            return await handler(command, ctx)
