"""The roles ``inkstream up`` runs beside its API, each in a process of its own; and the
extra API workers of ``inkstream api --workers N`` (``INKSTREAM_API_WORKERS``).

One Python process runs on one core. With the projectors and the job runner
inside the API process, the API shared its core with them (projector commits
were about a fifth of its CPU under a write load) while the machine's other
core sat partly idle. So ``up`` serves the API itself and starts ``inkstream
project`` and ``inkstream work`` as child processes against its embedded
servers: the same roles, the same code, as production runs them.

A child that dies (other than by exiting 0, as one told to stop does) is
started again (after a short, growing pause) and the
death is logged; the children are SIGKILLed by the kernel if ``up`` itself is
killed (``PR_SET_PDEATHSIG``), and stopped with SIGTERM, then SIGKILL after a
grace period, when ``up`` stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Mapping

import structlog

from adapters.runtime.processes import find_free_port, pdeathsig_preexec

log = structlog.get_logger("inkstream.roles")

STOP_GRACE_SECONDS = 20.0


class RoleProcesses:
    def __init__(self, roles: list[str], env: Mapping[str, str],
                 env_of: Mapping[str, Mapping[str, str]] | None = None) -> None:
        """``roles`` may name a role several times (API workers): each gets a label of its own,
        ``api``, ``api.2``, ...; ``env_of`` adds variables for one label."""
        seen: dict[str, int] = {}
        self._labels: list[tuple[str, str]] = []
        for role in roles:
            seen[role] = seen.get(role, 0) + 1
            self._labels.append((role if seen[role] == 1 else f"{role}.{seen[role]}", role))
        self._env = dict(env)
        self._env_of = {label: dict(extra) for label, extra in (env_of or {}).items()}
        self._procs: dict[str, asyncio.subprocess.Process] = {}
        self._watchers: list[asyncio.Task[None]] = []
        self._stopping = False

    def _role_env(self, label: str, role: str) -> dict[str, str]:
        env = {**os.environ, **self._env, **self._env_of.get(label, {})}
        if role == "work":  # it serves /health, /ready and /metrics: on a port of its own, not the API's
            env["INKSTREAM_HTTP_PORT"] = str(find_free_port(env.get("INKSTREAM_HTTP_HOST", "127.0.0.1")))
        return env

    async def _spawn(self, label: str, role: str) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "adapters.cli.main", role, env=self._role_env(label, role),
            preexec_fn=pdeathsig_preexec(), stdin=asyncio.subprocess.DEVNULL,
        )
        self._procs[label] = proc
        log.info("role.started", role=label, pid=proc.pid)
        return proc

    async def start(self) -> None:
        for label, role in self._labels:
            proc = await self._spawn(label, role)
            self._watchers.append(asyncio.create_task(self._watch(label, role, proc), name=f"watch-{label}"))

    async def _watch(self, label: str, role: str, proc: asyncio.subprocess.Process) -> None:
        delay = 0.5
        while True:
            code = await proc.wait()
            if self._stopping or code == 0:  # 0: it was told to stop (a Ctrl-C reaches the whole group)
                return
            log.error("role.died", role=label, pid=proc.pid, exit_code=code, restart_in_s=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)
            proc = await self._spawn(label, role)

    @property
    def pids(self) -> dict[str, int]:
        return {role: proc.pid for role, proc in self._procs.items() if proc.returncode is None}

    async def stop(self) -> None:
        self._stopping = True
        for watcher in self._watchers:
            watcher.cancel()
        await asyncio.gather(*self._watchers, return_exceptions=True)
        running = [p for p in self._procs.values() if p.returncode is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(STOP_GRACE_SECONDS):
                await asyncio.gather(*(p.wait() for p in running))
        except TimeoutError:
            for proc in running:
                if proc.returncode is None:
                    log.error("role.did_not_stop", pid=proc.pid)
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            await asyncio.gather(*(p.wait() for p in running), return_exceptions=True)
