"""A MongoDB for the test session: a real one, or SecantusDB over the same wire.

There is no ``mongod`` on these machines, so the suite starts SecantusDB
(PyPI ``SecantusDB``, a Mongo-wire-compatible server; GPL-2.0, a dev
dependency only) as a separate process on a free port. It passes the driver's
CRUD, index, aggregation, change-stream and transaction calls; it evaluates
aggregation paths that run through arrays wrongly, which the read model never
uses. When ``INKSTREAM_TEST_MONGO_URL`` is set (e.g.
``mongodb://127.0.0.1:27017/?replicaSet=rs0``) the same tests run against
that server instead; tests that stop their server always start a SecantusDB
of their own.

Each test gets a database of its own (``database_url``): databases cost
nothing until written.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pymongo import AsyncMongoClient

from adapters.runtime.processes import find_free_port, pdeathsig_preexec

TEST_URL = os.environ.get("INKSTREAM_TEST_MONGO_URL", "")
SECANTUSD = Path(sys.executable).parent / "secantusd-py"


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    query = parts.query
    if parts.hostname in ("127.0.0.1", "localhost") and "directConnection" not in query and "replicaSet" not in query:
        query = "&".join(q for q in (query, "directConnection=true") if q)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, query, ""))


def new_database_name(prefix: str = "ink_test") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


class MongoServer:
    """SecantusDB in a child process (``storage=None``: in memory), or the configured MongoDB."""

    def __init__(self, *, storage: Path | None = None, port: int | None = None, external: str = TEST_URL) -> None:
        self.external = external if storage is None and port is None else ""
        self.storage = storage
        self.port = port or 0
        self.url = self.external
        self._proc: asyncio.subprocess.Process | None = None

    def database_url(self, name: str | None = None) -> str:
        return with_database(self.url, name or new_database_name())

    async def start(self, timeout: float = 30.0) -> str:
        if self.external:
            await self._wait(timeout)
            return self.url
        self.port = self.port or find_free_port()
        self._proc = await asyncio.create_subprocess_exec(
            str(SECANTUSD), "--host", "127.0.0.1", "--port", str(self.port),
            "--storage-path", str(self.storage) if self.storage else ":memory:",
            # in memory, WiredTiger's cache holds every document: the session's tests write tens of MB of
            # large blobs, books and schema versions, and a full cache answers InternalError to every write
            "--cache-size", "2G", "--log-level", "ERROR",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
            preexec_fn=pdeathsig_preexec(), start_new_session=True,
        )
        self.url = f"mongodb://127.0.0.1:{self.port}/"
        try:
            await self._wait(timeout)
        except BaseException:
            await self.stop()
            raise
        return self.url

    async def _wait(self, timeout: float) -> None:
        client: AsyncMongoClient = AsyncMongoClient(with_database(self.url, "admin"), serverSelectionTimeoutMS=500)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    if self._proc is not None and self._proc.returncode is not None:
                        raise RuntimeError(f"secantusd-py exited with {self._proc.returncode}")
                    try:
                        await client.admin.command("ping")
                        return
                    except Exception:  # noqa: BLE001 - not up yet
                        await asyncio.sleep(0.2)
        finally:
            await client.close()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    async def kill(self) -> None:
        """SIGKILL, as a crash (an outage test)."""
        if self._proc is not None and self._proc.returncode is None:
            self._proc.send_signal(signal.SIGKILL)
            await self._proc.wait()
        self._proc = None

    async def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            async with asyncio.timeout(10):
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()

    async def drop_database(self, name: str) -> None:
        client: AsyncMongoClient = AsyncMongoClient(with_database(self.url, "admin"), serverSelectionTimeoutMS=2000)
        try:
            await client.drop_database(name)
        finally:
            await client.close()
