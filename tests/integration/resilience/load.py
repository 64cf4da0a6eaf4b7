"""A stream of commands against a running API, counting what was acknowledged."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import aiohttp


@dataclass
class Acked:
    email: str
    password: str
    user_id: str
    position: int


@dataclass
class CommandStream:
    """Workers that register users until stopped; every 2xx is remembered."""

    base_url: str
    workers: int = 4
    acked: list[Acked] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    missing_retry_after: int = 0
    first_ok_after: dict[str, float] = field(default_factory=dict)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _marks: dict[str, float] = field(default_factory=dict)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]

    def mark(self, name: str) -> None:
        """Remember a moment; the first 2xx after it is recorded in ``first_ok_after``."""
        self._marks[name] = time.monotonic()

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def _worker(self) -> None:
        timeout = aiohttp.ClientTimeout(total=15)
        async with aiohttp.ClientSession(base_url=self.base_url, timeout=timeout) as http:
            while not self._stop.is_set():
                email = f"res-{uuid.uuid4().hex[:12]}@example.com"
                password = "resilient-" + uuid.uuid4().hex[:6]
                try:
                    async with http.post(
                        "/v1/auth/register",
                        json={"email": email, "password": password, "username": "r"},
                        headers={"Idempotency-Key": uuid.uuid4().hex},
                    ) as r:
                        self.statuses[r.status] += 1
                        if r.status == 201:
                            body = await r.json()
                            self.acked.append(Acked(email, password, body["user_id"], body["position"]))
                            now = time.monotonic()
                            for name, at in self._marks.items():
                                if name not in self.first_ok_after and now > at:
                                    self.first_ok_after[name] = now - at
                        elif r.status == 503 and "Retry-After" not in r.headers:
                            self.missing_retry_after += 1
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    self.statuses[0] += 1
                await asyncio.sleep(0.01)


async def verify_acknowledged(base_url: str, acked: list[Acked], *, concurrency: int = 4) -> tuple[int, int]:
    """(found, lost): every acknowledged registration must log in and show in /me. A few at a time:
    each login verifies a password (argon2), so one after another takes most of an outage test."""
    gate = asyncio.Semaphore(concurrency)

    async def found(http: aiohttp.ClientSession, a: Acked) -> bool:
        async with gate:
            async with http.post("/v1/auth/login", json={"email": a.email, "password": a.password}) as r:
                if r.status != 200:
                    return False
                token = (await r.json())["token"]
            async with http.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"}) as r:
                return r.status == 200 and (await r.json())["user_id"] == a.user_id

    async with aiohttp.ClientSession(base_url=base_url) as http:
        results = await asyncio.gather(*(found(http, a) for a in acked))
    lost = results.count(False)
    return len(acked) - lost, lost
