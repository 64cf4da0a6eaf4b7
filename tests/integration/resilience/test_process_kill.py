"""Seed Task 9: the inkstream process SIGKILLed during a burst of concurrent commands."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from tests.integration.resilience.load import CommandStream, verify_acknowledged
from tests.integration.setup.test_up import wait_ready
from tests.support.servers import Database, scratch_dir
from tests.support.system import TEST_SECRET, free_port

INKSTREAM = Path(sys.executable).parent / "inkstream"


def spawn(nats_url: str, dsn: str, port: int, data_dir: Path, log: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("INKSTREAM_")}
    env.update(
        INKSTREAM_NATS_URL=nats_url, INKSTREAM_DATABASE_URL=dsn, INKSTREAM_HTTP_PORT=str(port),
        INKSTREAM_DATA_DIR=str(data_dir), INKSTREAM_JWT_SECRET=TEST_SECRET, INKSTREAM_LOG_FORMAT="json",
        INKSTREAM_ANONYMOUS_RATE_LIMIT_PER_SECOND="1000000", INKSTREAM_ANONYMOUS_RATE_LIMIT_BURST="1000000",
        INKSTREAM_SIGN_IN_RATE_PER_SECOND="1000000", INKSTREAM_SIGN_IN_BURST="1000000",
        INKSTREAM_LOGIN_FAILURES_PER_MINUTE="1000000",
    )
    with log.open("ab") as out:
        return subprocess.Popen([str(INKSTREAM), *(args or ("up",))], env=env, stdout=out, stderr=subprocess.STDOUT)


async def dump(dsn: str, table: str) -> list[tuple]:
    conn = await asyncpg.connect(dsn)
    try:
        return [tuple(r) for r in await conn.fetch(f'SELECT * FROM "{table}" ORDER BY 1')]
    finally:
        await conn.close()


async def test_a_killed_process_loses_no_acknowledged_command_and_matches_a_replay(
    nats_server: str, database: Database
) -> None:
    dsn = await database.new_database()
    root = scratch_dir("ink-kill-")
    log = root / "inkstream.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = spawn(nats_server, dsn, port, root, log)
    try:
        await wait_ready(url, proc)
        stream = CommandStream(url, workers=12)
        stream.start()
        await asyncio.sleep(1.5)
        proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        proc.wait()
        await asyncio.sleep(0.5)
        await stream.stop()
        acked = list(stream.acked)
        proc = spawn(nats_server, dsn, port, root, log)
        await wait_ready(url, proc)
        restarted = time.monotonic() - killed_at
        found, lost = await verify_acknowledged(url, acked)
        live = await dump(dsn, "users")
        replay = subprocess.run(
            [str(INKSTREAM), "replay", "--projection", "users"],
            env={**os.environ, "INKSTREAM_NATS_URL": nats_server, "INKSTREAM_DATABASE_URL": dsn},
            capture_output=True, text=True, timeout=120,
        )
        assert replay.returncode == 0, replay.stderr
        replayed = await dump(dsn, "users")
        print(
            f"\nSIGKILLed the inkstream process during a burst of 12 concurrent writers: "
            f"statuses {dict(stream.statuses)} (0 = connection dropped); acknowledged {len(acked)}, found {found}, "
            f"lost {lost}; ready again {restarted:.1f} s after the kill; read model rows {len(live)}, "
            f"after a full replay {len(replayed)}"
        )
        assert lost == 0 and len(acked) > 0
        assert live == replayed, "the read model must equal a full replay of the log"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
