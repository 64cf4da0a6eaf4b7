"""`inkstream dev-cluster`: prints where each part listens, serves, lets the other commands find it, and
stops everything on Ctrl-C (tests/integration/cluster drives the same code as a library)."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid

import aiohttp
import psutil

from tests.integration.setup.test_up import INKSTREAM, children_using, cli_env
from tests.support.servers import Database, scratch_dir
from tests.support.system import free_port


def two_free_ports() -> int:
    """A port whose next one is free too (the APIs take consecutive ports)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise AssertionError("no two consecutive free ports")


async def read_until(proc: subprocess.Popen[str], marker: str, timeout: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = await asyncio.to_thread(proc.stdout.readline)
        if not line:
            raise AssertionError(f"dev-cluster exited ({proc.poll()}):\n{''.join(lines)}")
        lines.append(line)
        if marker in line:
            return lines
    raise AssertionError(f"no {marker!r} within {timeout} s:\n{''.join(lines)}")


async def test_dev_cluster_serves_and_stops_everything_on_ctrl_c(database: Database) -> None:
    root = scratch_dir("ink-devcluster-")
    env = cli_env(root)
    env.update(INKSTREAM_DATABASE_URL=await database.new_database(), INKSTREAM_SANDBOX_WORKERS="1",
               INKSTREAM_VALIDATION_WORKERS="1")
    port = two_free_ports()
    command = [str(INKSTREAM), "dev-cluster", "--projectors", "1", "--workers", "1", "--port", str(port)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        started = time.monotonic()
        lines = await read_until(proc, "Ctrl-C stops them all", 180)
        took = time.monotonic() - started
        shown = "".join(lines)
        print(f"\ndev-cluster up in {took:.1f} s:\n{shown}")
        assert len(re.findall(r"nats ink-\d", shown)) == 3
        assert f"http://127.0.0.1:{port} " in shown and f"http://127.0.0.1:{port + 1} " in shown
        assert "project-1" in shown and "***" in shown
        password = (root / "cluster" / "password").read_text().strip()
        assert password not in shown, "the NATS password is not printed"
        pids = [int(p) for p in re.findall(r"pid (\d+)", shown)]
        assert len(pids) == 3 + 2 + 1 + 1  # nats nodes, api, project, work

        email = f"dc-{uuid.uuid4().hex[:8]}@example.com"
        async with aiohttp.ClientSession() as http:
            async with http.post(f"http://127.0.0.1:{port}/v1/auth/register",
                                 json={"email": email, "password": "clustered!", "username": "d"}) as r:
                assert r.status == 201
            async with http.post(f"http://127.0.0.1:{port + 1}/v1/auth/login",
                                 json={"email": email, "password": "clustered!"}) as r:
                assert r.status == 200, "one JWT secret and one log for both API processes"
        audit = subprocess.run([str(INKSTREAM), "audit", "user", email, "--json"], env=cli_env(root),
                               capture_output=True, text=True, timeout=60)
        assert audit.returncode == 0 and "User.Registered" in audit.stdout, audit.stderr

        proc.send_signal(signal.SIGINT)
        assert await asyncio.to_thread(proc.wait, 90) == 0
        await asyncio.sleep(0.5)
        alive = [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
        assert alive == [], f"left running after Ctrl-C: {alive}"
        assert not children_using(root / "cluster"), "no nats-server left on the cluster's stores"
        assert not (root / "runtime.json").exists(), "runtime.json is removed with the cluster"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for leftover in children_using(root / "cluster"):
            leftover.kill()
        shutil.rmtree(root, ignore_errors=True)
