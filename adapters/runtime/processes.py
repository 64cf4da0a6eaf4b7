"""What the embedded servers share: child-process plumbing, ports, log tails.

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
import signal
import socket
import sys
from pathlib import Path
from typing import Callable

__all__ = [
    "EmbeddedRuntimeError",
    "find_free_port",
    "pdeathsig_preexec",
    "read_tail",
    "tcp_connectable",
]

_PR_SET_PDEATHSIG = 1
_LOG_TAIL_BYTES = 4000


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
