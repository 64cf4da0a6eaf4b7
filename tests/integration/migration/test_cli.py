"""``inkstream migrate SCHEMA_ID --from VERSION [--bucket B] [--apply]`` against the running system."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from tests.integration.migration.helpers import profile_schema, profiles
from tests.support.sdk import SignUp
from tests.support.system import RunningSystem

INKSTREAM = Path(sys.executable).parent / "inkstream"


async def _migrate(system: RunningSystem, token: str, *args: str) -> tuple[int, str]:
    env = system.cli_env(INKSTREAM_URL=system.base_url, INKSTREAM_TOKEN=token, INKSTREAM_LOG_LEVEL="warning",
                         COLUMNS="120")
    proc = await asyncio.create_subprocess_exec(str(INKSTREAM), "migrate", *args, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode() + err.decode()


async def test_cli_runs_dry_by_default_then_applies_and_reports_counts(system: RunningSystem,
                                                                        sign_up: SignUp) -> None:
    ink = await sign_up("cli-migrate")
    assert ink.token is not None
    name = await profile_schema(ink)
    blobs = await profiles(ink, name, 20)
    code, text = await _migrate(system, ink.token, f"{name}@2.0.0", "--from", "1.0.0")
    assert code == 0, text
    assert "would migrate 20, failed 0, skipped 0" in text and "--apply" in text
    assert (await ink.get_blob(blobs[0].id, consistency="strong")).schema_id == f"{name}@1.0.0"

    code, text = await _migrate(system, ink.token, f"{name}@2.0.0", "--from", "1.0.0", "--apply")
    assert code == 0, text
    assert "completed: 20 blobs, migrated 20, failed 0, skipped 0" in text
    assert (await ink.get_blob(blobs[0].id, consistency="strong")).schema_id == f"{name}@2.0.0"

    code, text = await _migrate(system, ink.token, f"{name}@2.0.0", "--from", "1.0.0", "--apply")
    assert code == 2 and "conflict" in text.lower(), text  # run once
    code, text = await _migrate(system, ink.token, f"{name}@1.0.0", "--from", "2.0.0")
    assert code == 2 and "validation failed" in text.lower(), text
