"""An embedded PostgreSQL cluster, managed through ``initdb``/``pg_ctl``.

The binaries are the machine's (on ``PATH`` or under ``/usr/lib/postgresql``)
or, when there are none, those bundled in the ``pgserver`` wheel. Durability
is the point of the whole system, so the cluster runs with ``fsync=on``. The
read models hold password hashes, so every connection needs the password
generated beside the data directory on first start (``<data_dir>.password``,
mode 0600; ``scram-sha-256``). There is no module-level mutable state: every
cluster is owned by an instance.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import pwd
import re
import shutil
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence
from urllib.parse import quote

from adapters.runtime.processes import (
    EmbeddedRuntimeError,
    find_free_port,
    read_or_create_secret,
    read_tail,
    tcp_connectable,
    write_private,
)

__all__ = ["EmbeddedPostgres", "StopMode", "find_pgserver_bin_dir", "find_postgres_bin_dir"]

_PG_REQUIRED_BINARIES = ("initdb", "pg_ctl", "postgres")

StopMode = Literal["smart", "fast", "immediate"]


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

    Authentication is by password (``scram-sha-256``; ``md5`` on PostgreSQL
    before 10), the password kept in ``<data_dir>.password``. A cluster made
    before passwords existed (``trust``, no password file) is upgraded on its
    next start: the role gets a new password (in single-user mode, so nothing
    can connect meanwhile) and ``trust`` lines in ``pg_hba.conf`` become
    password lines; its data stays.
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
        self.password_path = self.data_dir.with_name(self.data_dir.name + ".password")
        self.password: str | None = None  # read or generated by start()
        self._major_version: str | None = None
        self.adopted = False  # True when start() found an already-running postmaster

    def __repr__(self) -> str:
        return (
            f"EmbeddedPostgres(data_dir={str(self.data_dir)!r}, port={self.port!r}, user={self.user!r}, "
            f"bin_dir={str(self.bin_dir) if self.bin_dir else None!r})"
        )

    @property
    def dsn(self) -> str | None:
        """``postgresql://user:password@host:port/database``, or ``None`` before a port is known."""
        if self.port is None:
            return None
        auth = quote(self.user, safe="")
        if self.password is not None:
            auth += ":" + quote(self.password, safe="")
        return f"postgresql://{auth}@{self.host}:{self.port}/{quote(self.database, safe='')}"

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

    def _env(self, run_as: _RunAs | None, *, with_password: bool = False) -> dict[str, str]:
        # Drop PG* variables (PGOPTIONS, PGDATABASE, PGHOST...) that would silently
        # change what the binaries do, and force C messages so "already exists"
        # can be recognised.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C", LC_MESSAGES="C")
        if run_as is not None:
            env.update(HOME=run_as.home, USER=run_as.name, LOGNAME=run_as.name)
        if with_password and self.password is not None:
            env["PGPASSWORD"] = self.password  # a child's environment is private to its user
        return env

    async def _run(
        self,
        name: str,
        args: Sequence[str],
        *,
        check: bool = True,
        timeout: float = 120.0,
        with_password: bool = False,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a PG binary (as the unprivileged user when root) in a worker thread.

        ``cwd`` is the data dir when it exists: postgres chdirs around and
        complains when the inherited cwd is unreadable for its user. Client
        tools get the password through the environment (``with_password``),
        never on the command line, which every user can read.
        """
        bin_dir = self._resolve_bin_dir()
        run_as = self._run_as()
        cwd = self.data_dir if self.data_dir.is_dir() else self.data_dir.parent
        kwargs: dict[str, object] = {}
        if run_as is not None:
            kwargs = {"user": run_as.uid, "group": run_as.gid, "extra_groups": []}
        cmd = [str(bin_dir / name), *args]
        if stdin is None:
            kwargs["stdin"] = subprocess.DEVNULL
        else:
            kwargs["input"] = stdin
        try:
            result = await asyncio.to_thread(
                subprocess.run,
                cmd,
                capture_output=True,
                text=True,
                cwd=cwd,
                env=self._env(run_as, with_password=with_password),
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
            msg += f"\nServer log tail ({self.log_path}):\n{read_tail(self.log_path)}"
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
        binary_major = await self._binary_major()
        if binary_major and binary_major != cluster_major:
            raise EmbeddedRuntimeError(
                f"{self.data_dir} was initialised by PostgreSQL {cluster_major} but the binaries in "
                f"{self.bin_dir} are version {binary_major}; use matching binaries (bin_dir=...) "
                "or a fresh data directory."
            )

    async def _binary_major(self) -> str:
        """The binaries' major version as PG_VERSION spells it ("15", "9.6"), or "" if unknown."""
        if self._major_version is None:
            out = (await self._run("postgres", ["--version"])).stdout
            match = re.search(r"(\d+)(?:\.(\d+))?", out)
            if not match:
                self._major_version = ""
            elif int(match.group(1)) >= 10:
                self._major_version = match.group(1)
            else:
                self._major_version = f"{match.group(1)}.{match.group(2)}"
        return self._major_version

    async def _auth_method(self) -> str:
        """``scram-sha-256``, or ``md5`` on the releases before 10 that lack it."""
        return "md5" if "." in await self._binary_major() else "scram-sha-256"

    # ----------------------------------------------------------------- credentials

    async def _require_password(self, run_as: _RunAs | None) -> None:
        """Upgrade a cluster made before passwords existed: set the role's password and
        turn every ``trust`` line of ``pg_hba.conf`` into a password line.

        Single-user mode needs no connection (so no authentication) and lets
        nothing else in meanwhile; a postmaster still running from an older
        inkstream is stopped first, as it would go on accepting anyone.
        """
        if await self._is_running():
            await self.stop()
        assert self.password is not None
        method = await self._auth_method()
        role = '"' + self.user.replace('"', '""') + '"'
        secret = self.password.replace("'", "''")
        result = await self._run(
            "postgres",
            ["--single", "-D", str(self.data_dir), "-c", f"password_encryption={method}", "postgres"],
            stdin=f"ALTER ROLE {role} PASSWORD '{secret}'\n",
            check=False,
        )
        if result.returncode != 0 or "ERROR" in result.stderr:  # an error in a statement still exits 0
            # the server echoes a failed statement: the password must not reach a log
            output = result.stderr.replace(secret, "***").replace(self.password, "***").strip()
            raise EmbeddedRuntimeError(
                f"could not set a password for role {self.user!r} in {self.data_dir} "
                f"(single-user mode, exit {result.returncode}):\n{output}"
            )
        await asyncio.to_thread(self._replace_trust, method, run_as)

    def _replace_trust(self, method: str, run_as: _RunAs | None) -> None:
        hba = self.data_dir / "pg_hba.conf"
        lines = []
        for line in hba.read_text(encoding="utf-8").splitlines():
            fields = line.split("#", 1)[0].split()
            if fields and fields[-1] == "trust":
                line = "\t".join([*fields[:-1], method])
            lines.append(line)
        write_private(hba, "\n".join(lines) + "\n")
        if run_as is not None:
            self._chown_if_needed(hba, run_as)

    def _write_initdb_password(self, run_as: _RunAs | None) -> Path:
        """The password for ``initdb --pwfile``: a private file the account initdb runs as can
        read, beside the data directory (which initdb wants empty); removed right after."""
        assert self.password is not None
        fd, name = tempfile.mkstemp(prefix=f".{self.data_dir.name}.initdb-", dir=self.data_dir.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(self.password + "\n")
        if run_as is not None:
            os.chown(name, run_as.uid, run_as.gid)
        return Path(name)

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
                if await tcp_connectable(self.host, port):
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
        # mkdir, chown of the whole tree: file-system work, off the event loop
        await asyncio.to_thread(self._prepare_filesystem, run_as)
        await self._check_version()
        from_before_passwords = (self.data_dir / "PG_VERSION").exists() and not self.password_path.exists()
        self.password = await asyncio.to_thread(read_or_create_secret, self.password_path)
        if from_before_passwords:
            await self._require_password(run_as)

        if await self._is_running():
            self._persist_port(await self._adopt_running())
            self.adopted = True
        else:
            self.adopted = False
            if not (self.data_dir / "PG_VERSION").exists():
                await self._initdb(run_as)
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

    async def _initdb(self, run_as: _RunAs | None) -> None:
        method = await self._auth_method()
        pwfile = await asyncio.to_thread(self._write_initdb_password, run_as)
        try:
            await self._run(
                "initdb",
                ["-D", str(self.data_dir), "-U", self.user, f"--auth={method}", f"--pwfile={pwfile}",
                 "-E", "UTF8", "--locale=C"],
            )
        finally:
            pwfile.unlink(missing_ok=True)

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
        result = await self._run(name, args, check=False, with_password=True)
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
