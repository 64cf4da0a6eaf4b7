"""schemathesis against /openapi.json: no 5xx and no answer that breaks the spec.

Run as the `st` CLI in a subprocess so the in-process server keeps serving
while it fuzzes; the number of examples is bounded to keep the suite fast.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp

from tests.support.system import RunningSystem
from tests.support.users import new_user

ST = Path(sys.executable).parent / "st"


async def run_schemathesis(system: RunningSystem, token: str, path_regex: str, examples: int = 25) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        str(ST), "run", f"{system.base_url}/openapi.json",
        "--include-path-regex", path_regex,
        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance",
        "--max-examples", str(examples),
        "--seed", "20261125",
        "--generation-deterministic",
        "--phases", "examples,coverage,fuzzing",
        "-H", f"Authorization: Bearer {token}",
        "--request-timeout", "10",
        "--workers", "1",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace")


async def test_auth_routes_hold_to_their_openapi_document(system: RunningSystem, http: aiohttp.ClientSession) -> None:
    user = await new_user(http, "fuzz")
    code, output = await run_schemathesis(system, user.token, "^/v1/auth/")
    print(output[-4000:])
    assert code == 0, output[-6000:]
