"""What the embedded servers share: child-process plumbing, ports, log tails, secret files.

Why this module exists: ``inkstream up`` and the test suite must work on a bare
machine with nothing but the Python virtualenv, so the embedded nats-server
(``nats_server.py``) and PostgreSQL (``postgres_server.py``) are started from
here with the standard library only: the runtime can start before any optional
dependency is importable.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import secrets
import signal
import socket
import sys
from pathlib import Path
from typing import Callable

__all__ = [
    "EmbeddedRuntimeError",
    "find_free_port",
    "pdeathsig_preexec",
    "read_or_create_secret",
    "read_tail",
    "tcp_connectable",
    "write_private",
]

_PR_SET_PDEATHSIG = 1
_LOG_TAIL_BYTES = 4000
PRIVATE_MODE = 0o600


class EmbeddedRuntimeError(RuntimeError):
    """An embedded server could not be located, started or stopped.

    A dedicated type lets the CLI print a one-line diagnosis instead of a traceback.
    """


def find_free_port(host: str = "127.0.0.1") -> int:
    """Ask the kernel for a currently unused TCP port on ``host``.

    There is an unavoidable race between closing this probe socket and the server
    binding the port; callers persist the chosen port so the race happens at most
    once per data directory.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def read_tail(path: Path, start: int = 0, limit: int = _LOG_TAIL_BYTES) -> str:
    """Return the end of a log file (from ``start`` on) so errors can show *why* a server died."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            end = fh.tell()
            fh.seek(max(start, end - limit))
            return fh.read().decode("utf-8", "replace").strip()
    except OSError as exc:
        return f"<could not read {path}: {exc}>"


def pdeathsig_preexec() -> Callable[[], None] | None:
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


async def tcp_connectable(host: str, port: int, timeout: float = 1.0) -> bool:
    """Whether something accepts TCP connections on ``host:port`` (without blocking the loop)."""
    try:
        async with asyncio.timeout(timeout):
            _, writer = await asyncio.open_connection(host, port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return True


def _private_temp(path: Path, text: str) -> Path:
    """A new file beside ``path`` holding ``text``, created with mode 0600 (never readable by others)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by the owner only (0600), atomically.

    The rename replaces an older file whatever its mode was (configs written
    by older versions were 0644).
    """
    tmp = _private_temp(path, text)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_or_create_secret(path: Path, nbytes: int = 32) -> str:
    """The secret in ``path``, generated there (mode 0600) the first time.

    First writer wins: the new file is linked into place only if there is
    none yet, so two processes starting on one data directory agree on one
    secret. A file left readable by others (by hand, or an older version) is
    narrowed to 0600 on the way: the secrets guard the log and the read
    models, which hold password hashes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        tmp = _private_temp(path, secrets.token_urlsafe(nbytes) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(PRIVATE_MODE)
    secret = path.read_text(encoding="utf-8").strip()
    if not secret:
        raise EmbeddedRuntimeError(f"{path} is empty; delete it to have a new secret generated")
    return secret
