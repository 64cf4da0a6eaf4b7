"""Contract tests for the embedded nats-server / PostgreSQL process managers.

They start real servers: the point is to prove that data acknowledged before a
stop, a crash (SIGKILL) or an immediate shutdown is still there afterwards.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import nats
import pytest

from adapters.runtime.nats_server import EmbeddedNats, find_nats_server
from adapters.runtime.postgres_server import EmbeddedPostgres, find_pgserver_bin_dir, find_postgres_bin_dir
from adapters.runtime.processes import EmbeddedRuntimeError, find_free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def data_root() -> Iterator[Path]:
    """A world-traversable temp dir: pytest's tmp_path lives under a 0700 dir that
    the unprivileged `postgres` user (used when we run as root) cannot enter."""
    root = Path(tempfile.mkdtemp(prefix="inkstream-embedded-", dir="/tmp"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


# --------------------------------------------------------------------------- NATS


async def _stream_last_seq(url: str) -> int:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().stream_info("T")
        return info.state.last_seq
    finally:
        await nc.close()


async def test_find_nats_server() -> None:
    assert os.access(find_nats_server(), os.X_OK)


async def test_nats_jetstream_survives_restart_and_kill(data_root: Path) -> None:
    server = EmbeddedNats(data_root / "nats")
    try:
        url = await server.start()
        assert url == f"nats://inkstream:{server.password}@127.0.0.1:{server.port}"
        assert server.pid is not None and "EmbeddedNats(" in repr(server)
        assert (data_root / "nats" / "nats-server.conf").read_text().count("sync_interval: always") == 1

        nc = await nats.connect(url)
        js = nc.jetstream()
        await js.add_stream(name="T", subjects=["t.>"])
        ack = await js.publish("t.x", b"1")
        assert ack.seq == 1
        await nc.close()

        await server.stop()
        assert server.pid is None
        await server.stop()  # idempotent

        assert await server.restart() == url  # same port, same store
        assert await _stream_last_seq(url) == 1

        # Crash: acknowledged data must be on disk (sync_interval: always).
        server.kill()
        server.kill()  # idempotent
        assert await server.start() == url
        assert await _stream_last_seq(url) == 1

        # A fresh manager on the same store sees the same data.
        await server.stop()
        other = EmbeddedNats(data_root / "nats", port=server.port)
        try:
            assert await other.start() == url
            assert await _stream_last_seq(url) == 1
        finally:
            await other.stop()
    finally:
        await server.stop()


async def test_nats_startup_failure_reports_log_tail(data_root: Path) -> None:
    first = EmbeddedNats(data_root / "a")
    try:
        await first.start()
        clash = EmbeddedNats(data_root / "b", port=first.port)  # port already taken
        with pytest.raises(EmbeddedRuntimeError, match="exited with code") as excinfo:
            await clash.start()
        assert "address already in use" in str(excinfo.value).lower()
        assert clash.pid is None
    finally:
        await first.stop()


def test_nats_dies_with_its_parent(data_root: Path) -> None:
    """PR_SET_PDEATHSIG: SIGKILLing the owner must not leave an orphan nats-server."""
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux-only")
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from pathlib import Path
        from adapters.runtime.nats_server import EmbeddedNats
        async def main():
            s = EmbeddedNats(Path({str(data_root / "orphan")!r}))
            await s.start()
            print(s.pid, flush=True)
            await asyncio.sleep(60)
        asyncio.run(main())
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        nats_pid = int(owner.stdout.readline())
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                os.kill(nats_pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(nats_pid, signal.SIGKILL)
            pytest.fail("nats-server survived its parent's SIGKILL")
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        if owner.stdout is not None:
            owner.stdout.close()


# --------------------------------------------------------------------------- PostgreSQL


async def _count_rows(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM t"))
    finally:
        await conn.close()


async def test_find_postgres_bin_dir() -> None:
    bin_dir = find_postgres_bin_dir()
    for name in ("initdb", "pg_ctl", "postgres"):
        assert (bin_dir / name).is_file()


async def test_postgres_data_survives_fast_and_immediate_stop(data_root: Path) -> None:
    pg = EmbeddedPostgres(data_root / "pg")
    try:
        dsn = await pg.start()
        assert dsn == f"postgresql://inkstream:{pg.password}@127.0.0.1:{pg.port}/inkstream"
        assert "EmbeddedPostgres(" in repr(pg)
        assert int((data_root / "pg.port").read_text()) == pg.port

        conn = await asyncpg.connect(dsn)
        await conn.execute("CREATE TABLE t (id int primary key)")
        await conn.execute("INSERT INTO t VALUES (1)")
        await conn.close()

        await pg.stop()  # fast
        await pg.stop()  # idempotent
        assert await pg.start() == dsn
        assert await _count_rows(dsn) == 1

        conn = await asyncpg.connect(dsn)
        await conn.execute("INSERT INTO t VALUES (2)")  # committed => fsynced WAL
        await conn.close()
        await pg.stop(mode="immediate")  # crash recovery on next start
        assert await pg.start() == dsn
        assert await _count_rows(dsn) == 2

        assert await pg.restart() == dsn
        assert await _count_rows(dsn) == 2

        # A new manager with no explicit port reuses the persisted one.
        await pg.stop()
        again = EmbeddedPostgres(data_root / "pg")
        assert await again.start() == dsn
        assert not again.adopted
    finally:
        await pg.stop()


async def test_second_manager_adopts_running_postmaster(data_root: Path) -> None:
    first = EmbeddedPostgres(data_root / "pg")
    try:
        dsn = await first.start()
        (data_root / "pg.port").unlink()  # prove the port comes from postmaster.pid
        second = EmbeddedPostgres(data_root / "pg")
        assert await second.start() == dsn
        assert second.adopted and second.port == first.port
        assert int((data_root / "pg.port").read_text()) == first.port
        conn = await asyncpg.connect(dsn)
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
    finally:
        await first.stop()


async def test_postgres_survives_owner_sigkill(data_root: Path) -> None:
    """The postmaster outlives a SIGKILLed owner, and the next owner adopts it."""
    script = textwrap.dedent(
        f"""
        import asyncio
        from pathlib import Path
        from adapters.runtime.postgres_server import EmbeddedPostgres
        async def main():
            dsn = await EmbeddedPostgres(Path({str(data_root / "pg")!r})).start()
            print(dsn, flush=True)
            await asyncio.sleep(60)
        asyncio.run(main())
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", script], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    pg = EmbeddedPostgres(data_root / "pg")
    try:
        assert owner.stdout is not None
        dsn = owner.stdout.readline().strip()
        assert dsn.startswith("postgresql://")
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
        assert await pg.start() == dsn
        assert pg.adopted
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        if owner.stdout is not None:
            owner.stdout.close()
        await pg.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="only meaningful when running as root")
async def test_untraversable_ancestor_is_reported(data_root: Path) -> None:
    locked = data_root / "locked"
    locked.mkdir(mode=0o700)
    locked.chmod(0o700)
    pg = EmbeddedPostgres(locked / "pg")
    with pytest.raises(EmbeddedRuntimeError, match=f"inside {locked}.*DATA_DIR"):
        await pg.start()


async def test_postgres_with_pgserver_bundled_binaries(data_root: Path) -> None:
    """The wheel-bundled build is the last-resort fallback; prove it actually runs here."""
    bundled = find_pgserver_bin_dir()
    if bundled is None:
        pytest.skip("pgserver wheel not installed")
    pg = EmbeddedPostgres(data_root / "pg16", bin_dir=bundled)
    try:
        dsn = await pg.start()
        conn = await asyncpg.connect(dsn)
        version = await conn.fetchval("SHOW server_version")
        await conn.execute("CREATE TABLE t (id int)")
        await conn.execute("INSERT INTO t VALUES (1)")
        await conn.close()
        assert version
        await pg.stop(mode="immediate")
        assert await pg.start() == dsn
        assert await _count_rows(dsn) == 1
    finally:
        await pg.stop()


# --------------------------------------------------------------------------- credentials


def _mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


async def test_nats_refuses_clients_without_the_generated_password(data_root: Path) -> None:
    server = EmbeddedNats(data_root / "nats")
    try:
        url = await server.start()
        secret = data_root / "nats" / "password"
        assert _mode(secret) == 0o600 and _mode(server.config_path) == 0o600
        assert secret.read_text().strip() in url  # the URL handed to clients carries it
        with pytest.raises(Exception, match="(?i)authorization"):
            await nats.connect(f"nats://127.0.0.1:{server.port}", allow_reconnect=False, connect_timeout=2)
        with pytest.raises(Exception, match="(?i)authorization"):
            await nats.connect(f"nats://inkstream:guess@127.0.0.1:{server.port}", allow_reconnect=False,
                               connect_timeout=2)
        nc = await nats.connect(url)
        await nc.jetstream().add_stream(name="T", subjects=["t.>"])
        await nc.close()
        # a restart (and a fresh manager) keeps the same password and the data
        await server.stop()
        again = EmbeddedNats(data_root / "nats", port=server.port)
        try:
            assert await again.start() == url
            assert await _stream_last_seq(url) == 0
        finally:
            await again.stop()
    finally:
        await server.stop()


async def test_postgres_refuses_clients_without_the_generated_password(data_root: Path) -> None:
    pg = EmbeddedPostgres(data_root / "pg")
    try:
        dsn = await pg.start()
        secret = data_root / "pg.password"
        assert _mode(secret) == 0o600
        assert pg.password and pg.password == secret.read_text().strip()
        for wrong in (f"postgresql://inkstream@127.0.0.1:{pg.port}/inkstream",
                      f"postgresql://inkstream:guess@127.0.0.1:{pg.port}/inkstream",
                      f"postgresql://postgres@127.0.0.1:{pg.port}/postgres"):
            with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)):
                await asyncpg.connect(wrong, timeout=5)
        conn = await asyncpg.connect(dsn)
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
    finally:
        await pg.stop()


async def test_a_postgres_cluster_from_before_credentials_is_upgraded_on_start(data_root: Path) -> None:
    """A data directory made by an older inkstream (initdb --auth=trust, no password file)
    keeps its data and needs the password from its first start on."""
    old = EmbeddedPostgres(data_root / "pg")
    run_as = old._run_as()
    old._resolve_bin_dir()
    await asyncio.to_thread(old._prepare_filesystem, run_as)
    await old._run("initdb", ["-D", str(old.data_dir), "-U", old.user, "--auth=trust", "-E", "UTF8", "--locale=C"])
    port = find_free_port()
    await old._run("pg_ctl", old._start_args(port))
    old.port = port
    trusted = f"postgresql://inkstream@127.0.0.1:{port}/postgres"
    conn = await asyncpg.connect(trusted)
    await conn.execute("CREATE TABLE t (id int)")
    await conn.execute("INSERT INTO t VALUES (7)")
    await conn.close()
    await old.stop()
    assert not (data_root / "pg.password").exists()

    pg = EmbeddedPostgres(data_root / "pg", port=port, database="postgres")
    try:
        dsn = await pg.start()
        assert _mode(data_root / "pg.password") == 0o600
        with pytest.raises((asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)):
            await asyncpg.connect(trusted, timeout=5)
        assert await _count_rows(dsn) == 1
        await pg.restart()  # and it stays that way
        assert await _count_rows(dsn) == 1
    finally:
        await pg.stop()
