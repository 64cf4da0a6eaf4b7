"""`inkstream up` on a fresh DATA_DIR: ready within 60 s, data kept across runs, no orphans on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg
import nats
import orjson
import psutil
import pytest

from tests.support.servers import scratch_dir
from tests.support.system import free_port

INKSTREAM = Path(sys.executable).parent / "inkstream"


def children_using(data_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(str(data_dir) in part for part in proc.info["cmdline"] or []):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


async def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> float:
    started = time.monotonic()
    async with aiohttp.ClientSession() as http:
        while time.monotonic() - started < timeout:
            assert proc.poll() is None, "inkstream up exited early"
            try:
                async with http.get(f"{url}/ready") as r:
                    if r.status == 200:
                        return time.monotonic() - started
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.25)
    raise AssertionError(f"/ready was not 200 within {timeout} s")


def cli_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INKSTREAM_")}
    env.update(INKSTREAM_DATA_DIR=str(data_dir), INKSTREAM_LOG_FORMAT="json")
    return env


def start_up(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = cli_env(data_dir)
    env.update(INKSTREAM_HTTP_PORT=str(port))
    with log.open("ab") as out:
        return subprocess.Popen([str(INKSTREAM), "up"], env=env, stdout=out, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=60)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


async def servers_want_their_credentials(data_dir: Path) -> None:
    """The secrets are the owner's alone, and the servers refuse whoever does not present them."""
    for secret in ("jwt_secret", "nats/password", "nats/nats-server.conf", "pg.password", "runtime.json"):
        assert mode(data_dir / secret) == 0o600, secret
    urls = orjson.loads((data_dir / "runtime.json").read_bytes())
    nats_url, dsn = urls["nats_url"], urls["database_url"]
    nats_password = (data_dir / "nats" / "password").read_text().strip()
    pg_password = (data_dir / "pg.password").read_text().strip()
    assert nats_password in nats_url and pg_password in dsn
    bare_nats = nats_url.replace(f"inkstream:{nats_password}@", "")
    bare_dsn = dsn.replace(f":{pg_password}@", "@")
    assert "@" not in bare_nats and pg_password not in bare_dsn
    with pytest.raises(Exception, match="(?i)authorization"):
        await nats.connect(bare_nats, allow_reconnect=False, connect_timeout=2)
    with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)):
        await asyncpg.connect(bare_dsn, timeout=5)
    nc = await nats.connect(nats_url, allow_reconnect=False)
    await nc.close()
    conn = await asyncpg.connect(dsn, timeout=5)
    await conn.close()


async def test_up_is_ready_keeps_its_data_and_leaves_no_orphans() -> None:
    root = scratch_dir("ink-up-")
    data_dir, log = root / "data", root / "up.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    address = f"up-{uuid.uuid4().hex[:8]}@example.com"
    proc = start_up(data_dir, port, log)
    try:
        took = await wait_ready(url, proc)
        print(f"first start: /ready 200 after {took:.1f} s")
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/health") as r:
                health = await r.json()
                assert r.status == 200 and health["status"] == "healthy", health
            async with http.post(f"{url}/v1/auth/register", json={"email": address, "password": "persisted!", "username": "u"}) as r:
                assert r.status == 201
        assert children_using(data_dir), "the embedded servers should run under DATA_DIR"
        await servers_want_their_credentials(data_dir)
        # the other CLI commands find the running `up` (and its credentials) through DATA_DIR alone
        audit = subprocess.run([str(INKSTREAM), "audit", "user", address, "--json"], env=cli_env(data_dir),
                               capture_output=True, text=True, timeout=60)
        assert audit.returncode == 0 and "User.Registered" in audit.stdout, audit.stderr
        assert stop(proc) == 0
        time.sleep(0.5)
        leftovers = children_using(data_dir)
        assert not leftovers, f"orphans after SIGTERM: {[p.info['cmdline'] for p in leftovers]}"

        proc = start_up(data_dir, port, log)
        took = await wait_ready(url, proc)
        print(f"second start on the same DATA_DIR: /ready 200 after {took:.1f} s")
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{url}/v1/auth/login", json={"email": address, "password": "persisted!"}) as r:
                assert r.status == 200, "the second run must find the first run's data"
                token = (await r.json())["token"]
            async with http.get(f"{url}/v1/auth/me", headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 200 and (await r.json())["email"] == address
        assert stop(proc) == 0
        logged = log.read_text()
        for secret in ("jwt_secret", "nats/password", "pg.password"):
            assert (data_dir / secret).read_text().strip() not in logged, f"{secret} leaked into the log"
        time.sleep(0.5)
        assert not children_using(data_dir)
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in children_using(data_dir):
            p.kill()
        if log.exists():
            sys.stdout.write(log.read_text()[-3000:])
        shutil.rmtree(root, ignore_errors=True)
