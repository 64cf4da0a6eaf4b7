"""``inkstream dev-cluster``: the production topology as local processes, the stand-in for compose.yaml.

Three nats-server nodes (``NatsCluster``: routes, a store each, every stream
at 3 replicas), PostgreSQL (embedded, or a given DSN), and the roles as
separate ``inkstream`` processes: ``api`` on consecutive ports, ``project``
(one leads each projection, the others stand by) and ``work`` (where the
runtime has that role). Nothing is shared between them but NATS, PostgreSQL
and the data directory's JWT secret, exactly as on separate machines.

The cluster tests drive the same class: they kill nodes and processes
(``RoleProcess.kill``, ``EmbeddedNats.kill``) and start them again.

Roles log JSON to ``ROOT/logs/<role>-<n>.log``. Every child gets SIGKILL
if this process dies (``PR_SET_PDEATHSIG``); Ctrl-C stops them in order:
APIs and runners, projectors, NATS, PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from adapters.runtime.nats_cluster import NatsCluster
from adapters.runtime.postgres_server import EmbeddedPostgres
from adapters.runtime.processes import EmbeddedRuntimeError, find_free_port, pdeathsig_preexec, read_tail
from adapters.runtime.serve import ROLES
from adapters.telemetry.redaction import without_password

__all__ = ["DevCluster", "RoleProcess"]

HTTP_ROLES = ("api", "work")  # roles that answer /ready on their port


@dataclass
class RoleProcess:
    """One ``inkstream <role>`` child process; it can be killed and started again on the same port."""

    role: str
    index: int
    env: dict[str, str]
    log_path: Path
    port: int | None = None
    host: str = "127.0.0.1"
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _log_start: int = 0

    @property
    def name(self) -> str:
        return f"{self.role}-{self.index}"

    @property
    def url(self) -> str | None:
        return None if self.port is None else f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        if self.running:
            return
        env = dict(self.env)
        if self.port is not None:
            env["INKSTREAM_HTTP_PORT"] = str(self.port)
            env["INKSTREAM_HTTP_HOST"] = self.host
        elif env.get("INKSTREAM_LOG_LEVEL", "info").lower() not in ("debug", "info"):
            env["INKSTREAM_LOG_LEVEL"] = "info"  # a role without HTTP shows it is ready by its "projecting" line
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "adapters.cli.main", self.role],
                env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                preexec_fn=pdeathsig_preexec(), start_new_session=True,
            )  # fmt: skip

    async def wait_ready(self, timeout: float = 90.0) -> float:
        """Until the role serves: ``/ready`` 200 for the HTTP roles, the "projecting" log line for projectors."""
        started = time.monotonic()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
            while time.monotonic() - started < timeout:
                if not self.running:
                    raise EmbeddedRuntimeError(
                        f"{self.name} exited with {self.proc and self.proc.returncode} during start-up; log tail:\n"
                        f"{read_tail(self.log_path, self._log_start)}"
                    )
                if self.url is not None:
                    try:
                        async with http.get(f"{self.url}/ready") as r:
                            if r.status == 200:
                                return time.monotonic() - started
                    except (aiohttp.ClientError, asyncio.TimeoutError):
                        pass
                elif "inkstream.projecting" in read_tail(self.log_path, self._log_start, limit=1 << 20):
                    return time.monotonic() - started
                await asyncio.sleep(0.2)
        raise EmbeddedRuntimeError(f"{self.name} not ready within {timeout:.0f} s; log tail:\n"
                                   f"{read_tail(self.log_path, self._log_start)}")

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would."""
        if self.running:
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait()

    async def stop(self, timeout: float = 30.0) -> None:
        if not self.running:
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.proc.wait, timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            await asyncio.to_thread(self.proc.wait)


class DevCluster:
    """Three NATS nodes, PostgreSQL and the roles, under ``root``."""

    def __init__(
        self,
        root: Path,
        *,
        apis: int = 2,
        projectors: int = 2,
        workers: int = 2,
        api_port: int | None = None,
        database_url: str | None = None,
        settings: Mapping[str, str] | None = None,
        inherit_settings: bool = True,
        host: str = "127.0.0.1",
        sync_always: bool = False,
    ) -> None:
        """``api_port``: the first API's port (the others follow it; ``None`` picks free ports).
        ``settings``: extra ``INKSTREAM_*`` variables for every role. ``inherit_settings``: whether
        this process's own ``INKSTREAM_*`` variables reach the roles too."""
        self.root = Path(root).absolute()
        self.host = host
        self.nats = NatsCluster(self.root, host=host, sync_always=sync_always)
        self.database_url = database_url or ""
        self._own_postgres: EmbeddedPostgres | None = None
        self._counts = {"api": apis, "project": projectors, "work": workers if "work" in ROLES else 0}
        self._api_port = api_port
        self._settings = dict(settings or {})
        self._inherit = inherit_settings
        self.roles: list[RoleProcess] = []

    def of(self, role: str) -> list[RoleProcess]:
        return [r for r in self.roles if r.role == role]

    @property
    def apis(self) -> list[RoleProcess]:
        return self.of("api")

    @property
    def projectors(self) -> list[RoleProcess]:
        return self.of("project")

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if self._inherit or not k.startswith("INKSTREAM_")}
        env.update(
            INKSTREAM_NATS_URL=self.nats.url,
            INKSTREAM_DATABASE_URL=self.database_url,
            INKSTREAM_STREAM_REPLICAS=str(self.nats.size),
            INKSTREAM_DATA_DIR=str(self.root),  # the roles share its jwt_secret, as API nodes share a secret
            INKSTREAM_LOG_FORMAT="json",
        )
        env.update(self._settings)
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def _planned(self, role: str, i: int, env: dict[str, str]) -> RoleProcess:
        """The ``i``-th process of ``role`` (0-based), with its port chosen now, added to ``roles``."""
        port: int | None = None
        if role in HTTP_ROLES:
            if self._api_port is None:
                port = find_free_port(self.host)
            else:
                port = (self._api_port if role == "api" else self._api_port + 100) + i
        process = RoleProcess(role, i + 1, env, self.root / "logs" / f"{role}-{i + 1}.log", port, self.host)
        self.roles.append(process)
        return process

    async def start(self) -> None:
        try:
            await self.nats.start()
            if not self.database_url:
                self.root.mkdir(parents=True, exist_ok=True)
                self.root.chmod(self.root.stat().st_mode | 0o055)  # PostgreSQL runs as its own user when we are root
                self._own_postgres = EmbeddedPostgres(self.root / "pg")
                self.database_url = await self._own_postgres.start()
            env = self._env()
            plan = [(role, i) for role in ("project", "api", "work") for i in range(self._counts[role])]
            # the first projector applies streams.yaml (3 replicas) and migrates PostgreSQL; then the rest at once.
            # The others' ports are asked for only then: a port found free long before its server binds it
            # may meanwhile be taken as the local end of one of the first process's connections.
            first = self._planned(*plan[0], env)
            first.start()
            await first.wait_ready()
            rest = [self._planned(role, i, env) for role, i in plan[1:]]
            for role in rest:
                role.start()
            await asyncio.gather(*(role.wait_ready() for role in rest))
        except BaseException:
            await self.stop()
            raise

    async def add(self, role: str, settings: Mapping[str, str] | None = None) -> RoleProcess:
        """One more process of ``role`` (with ``settings`` of its own), started and ready."""
        index = len(self.of(role)) + 1
        port = None
        if role in HTTP_ROLES:
            port = find_free_port(self.host) if self._api_port is None else self._api_port + 200 + len(self.roles)
        process = RoleProcess(role, index, {**self._env(), **(settings or {})},
                              self.root / "logs" / f"{role}-{index}.log", port, self.host)
        self.roles.append(process)
        process.start()
        await process.wait_ready()
        return process

    async def remove(self, process: RoleProcess) -> None:
        await process.stop()
        self.roles.remove(process)

    async def stop(self) -> None:
        for group in (("api", "work"), ("project",)):
            await asyncio.gather(*(r.stop() for r in self.roles if r.role in group), return_exceptions=True)
        await self.nats.stop()
        if self._own_postgres is not None:
            await self._own_postgres.stop()

    def describe(self) -> list[str]:
        """Where each part listens, one line each (passwords shown as ***)."""
        lines = []
        for node in self.nats.nodes:
            assert node.cluster is not None
            lines.append(f"nats {node.fixed_name:<9} nats://{self.host}:{node.port}  routes :{node.cluster.port}  "
                         f"pid {node.pid}  store {node.store_dir}")
        lines.append(f"postgres       {without_password(self.database_url)}")
        for r in self.roles:
            where = r.url or "(no HTTP: one leads each projection, the others stand by)"
            lines.append(f"{r.name:<14} {where}  pid {r.pid}  log {r.log_path}")
        lines.append(f"INKSTREAM_NATS_URL={without_password(self.nats.url)}  "
                     f"(password in {self.root / 'password'})")
        return lines
