"""A minimal ``text/event-stream`` reader for the tests (the framing of the SSE specification)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson


@dataclass
class Event:
    id: str | None
    event: str
    data: Any


class EventStream:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.comments: list[str] = []

    async def next(self, timeout: float = 10) -> Event:
        fields: dict[str, list[str]] = {}
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.response.content.readline()
                if not raw:
                    raise EOFError("the stream ended")
                line = raw.decode().rstrip("\r\n")
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                    continue
                if line:
                    name, _, value = line.partition(":")
                    fields.setdefault(name, []).append(value.removeprefix(" "))
                    continue
                if fields:
                    return Event(fields.get("id", [None])[-1], fields.get("event", ["message"])[-1],
                                 orjson.loads("\n".join(fields.get("data", []))))

    async def take(self, n: int) -> list[Event]:
        return [await self.next() for _ in range(n)]
