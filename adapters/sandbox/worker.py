"""A sandbox worker process: ``python -m adapters.sandbox.worker <parent pid>``.

User JavaScript runs here, never in the API process: a V8 crash, a fatal
out-of-memory or a kill ends this process only, and the pool (``pool.py``)
starts another. The worker reads requests from stdin and answers on stdout
(``frames.py``), one request at a time; anything V8 prints goes to stderr,
which the pool keeps for its log.

Memory: V8's heap limit does not see ``ArrayBuffer`` backing stores or what
ICU allocates, so each request also runs under an OS limit, ``RLIMIT_DATA``
(Linux counts writable private mappings against it, but not V8's PROT_NONE
address-space reservations, which are terabytes). Measured with mini-racer
0.14 (V8 14.4): a worker has about 560 MB of such mappings once V8 is up
(thread stacks, mostly untouched; its resident set is about 65 MB), and a heap
limit of 64 MB lets the mappings grow by about 126 MB before V8 stops the
script. So the cap is what the worker already has, plus twice the heap limit,
plus a margin: over it an ArrayBuffer or WebAssembly allocation throws a
RangeError, and anything else makes V8 abort, which the pool reports as the
memory limit.

The worker asks the kernel for SIGKILL when its parent dies
(``PR_SET_PDEATHSIG``) so that no worker outlives the API, runs at a lower
CPU priority (nice 5) so that runaway scripts cannot starve the API's event
loop, and leaves with ``os._exit``: mini-racer's clean-up at interpreter exit
can hang.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import time

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """SIGKILL when the parent dies; exit now if it already has (before the request below was made)."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:
        os._exit(1)


if __name__ == "__main__":  # before the imports below, which take a while
    _die_with_parent(int(sys.argv[1]))

import asyncio  # noqa: E402
import resource  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from typing import Any  # noqa: E402

from adapters.sandbox import engine, frames  # noqa: E402

MARGIN = 64 * 1024 * 1024  # V8's own allocations while a script runs (a thread stack alone is 8 MB)
RECYCLE_GROWTH = 256 * 1024 * 1024  # a worker that kept this much more than it started with is replaced
NICE = 5


def vm_data() -> int | None:
    """Bytes of writable private mappings (what RLIMIT_DATA counts), or None off Linux."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmData:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


@contextmanager
def data_cap(max_memory: int) -> Iterator[None]:
    """RLIMIT_DATA at what the process has now plus room for one request."""
    used = vm_data()
    if used is None:
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
    cap = used + 2 * max_memory + MARGIN
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_DATA, (soft, hard))


async def handle(request: dict[str, Any]) -> dict[str, Any]:
    limits = engine.Limits(int(request["timeout_ms"]), int(request["max_memory"]))
    with data_cap(limits.max_memory):
        if request["op"] == "check":
            return {"problem": await engine.check(request["source"], request["function"], limits)}
        return {"outcomes": await engine.run(request["source"], request["function"], request["arguments"], limits)}


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


async def serve(fd_in: int, fd_out: int) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd_in, "rb", buffering=0))
    # V8 starts up before the worker says it is ready, so the first request does not pay for it
    await engine.check("function f() {}", "f", engine.Limits(30_000, 64 * 1024 * 1024))
    baseline = vm_data()
    _write(fd_out, frames.encode({"ready": os.getpid()}))
    while True:
        try:
            request = await frames.read(reader)
        except asyncio.IncompleteReadError:
            return  # the pool closed our stdin
        _write(fd_out, frames.encode({"accepted": True}))  # from here on, the request is ours
        began = time.process_time()  # V8 runs on a thread of this process: its CPU counts too
        reply = await handle(request)
        reply["ms"] = (time.process_time() - began) * 1000  # charged to the request that asked
        now = vm_data()
        reply["recycle"] = baseline is not None and now is not None and now > baseline + RECYCLE_GROWTH
        _write(fd_out, frames.encode(reply))
        if reply["recycle"]:
            return


def main() -> None:
    # The protocol gets private copies of stdin/stdout; fd 1 then points at stderr,
    # so nothing V8 or a library prints can corrupt a frame.
    fd_in, fd_out = os.dup(0), os.dup(1)
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    try:
        os.nice(NICE)
    except OSError:
        pass
    code = 0
    try:
        asyncio.run(serve(fd_in, fd_out))
    except BaseException:  # noqa: BLE001 - the traceback goes to stderr, which the pool logs
        import traceback

        traceback.print_exc()
        code = 1
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
