"""What the HTTP benches share: a load generator in a child process, and their CLI."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


async def run_worker(module: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``python -m <module> --worker SPEC`` so the load does not share the
    app's event loop; its stdout is the JSON result."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", module, "--worker", json.dumps(spec),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=str(ROOT),
    )  # fmt: skip
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"load worker failed ({proc.returncode}): {err.decode()[-2000:]}")
    return json.loads(out)


def bench_main(
    prog: str,
    doc: str | None,
    quick_help: str,
    run: Callable[..., Awaitable[Any]],
    worker: Callable[[dict[str, Any]], Awaitable[Any]],
    argv: list[str] | None = None,
) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m {prog}", description=(doc or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--shared-pg", action="store_true", help="a throwaway database on 127.0.0.1:5432")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(asyncio.run(worker(json.loads(args.worker)))))
        return
    asyncio.run(run(quick=args.quick, shared_pg=args.shared_pg))
