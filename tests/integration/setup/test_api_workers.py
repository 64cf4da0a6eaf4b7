"""``inkstream api --workers 2``: two API processes on one port (SO_REUSEPORT), against the
session's NATS and PostgreSQL.

Connections are spread over both processes (each answers ``/metrics`` with its own pid in
``inkstream_process_info``); a user registered through one is signed in and read back
through the other (read-your-writes across processes); SIGTERM to the process started
stops every worker, exit 0, and leaves no orphan.
"""

from __future__ import annotations

import asyncio
import re
import signal
import sys
import uuid
from pathlib import Path

import aiohttp
import psutil

from adapters.runtime.processes import find_free_port
from tests.support.system import RunningSystem

INKSTREAM = Path(sys.executable).parent / "inkstream"
PID = re.compile(r'^inkstream_process_info\{pid="(\d+)"\} 1\.0$', re.M)


async def answering_pid(url: str) -> int:
    """One request on a connection of its own (the kernel picks the listener per connection)."""
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as r:
        assert r.status == 200
        found = PID.search(await r.text())
        assert found, "no inkstream_process_info in /metrics"
        return int(found.group(1))


async def test_two_api_workers_share_the_port_and_stop_together(pg_system: RunningSystem, tmp_path: Path) -> None:
    port = find_free_port()
    url = f"http://127.0.0.1:{port}"
    env = pg_system.cli_env(INKSTREAM_HTTP_PORT=str(port), INKSTREAM_LOG_LEVEL="warning",
                            INKSTREAM_DATA_DIR=str(tmp_path), INKSTREAM_JWT_SECRET="workers-test-secret-" + "x" * 32)
    proc = await asyncio.create_subprocess_exec(str(INKSTREAM), "api", "--workers", "2", env=env,
                                                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        parent = psutil.Process(proc.pid)

        def api_children() -> set[int]:  # not the sandbox's and validators' worker processes
            return {c.pid for c in parent.children() if c.cmdline()[-1:] == ["api"]}

        async with asyncio.timeout(60):
            while not api_children():
                await asyncio.sleep(0.1)
        workers = {proc.pid, *api_children()}
        assert len(workers) == 2

        pids: set[int] = set()
        async with asyncio.timeout(60):
            while pids != workers:
                try:
                    pids.add(await answering_pid(url))
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)  # a worker not listening yet
        assert pids == workers

        # A write through whichever process takes the connection, read back through others.
        email = f"w-{uuid.uuid4().hex[:8]}@example.com"
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{url}/v1/auth/register",
                                 json={"email": email, "password": "a-long-password-1", "username": "w"}) as r:
                assert r.status == 201, await r.text()
                token = (await r.json())["token"]
        for _ in range(10):  # new connections: both workers answer some of these
            async with aiohttp.ClientSession() as http, http.get(
                f"{url}/v1/auth/me", headers={"Authorization": f"Bearer {token}"}
            ) as r:
                assert r.status == 200, await r.text()
                assert (await r.json())["email"] == email
    finally:
        children = [c for c in psutil.Process(proc.pid).children(recursive=True)] if proc.returncode is None else []
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 60)
        errors = (await proc.stderr.read()).decode() if proc.stderr else ""
    assert code == 0, errors
    gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"workers left running: {alive}"
