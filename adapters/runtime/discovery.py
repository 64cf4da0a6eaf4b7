"""Where a running ``inkstream up`` can be reached, for the other CLI commands.

``up`` records the URLs of its embedded servers in ``DATA_DIR/runtime.json``;
``replay``, ``audit`` and ``export`` use them when no URL is configured. The
URLs carry the servers' passwords, so the file is readable by its owner only
(0600): the same account that can read the password files themselves.
"""

from __future__ import annotations

import json
from pathlib import Path

from adapters.runtime.processes import write_private
from adapters.runtime.settings import Settings


def runtime_file(settings: Settings) -> Path:
    return settings.resolved_data_dir() / "runtime.json"


def record(settings: Settings, nats_url: str, database_url: str) -> None:
    path = runtime_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, json.dumps({"nats_url": nats_url, "database_url": database_url}))


def forget(settings: Settings) -> None:
    runtime_file(settings).unlink(missing_ok=True)


def resolve(settings: Settings) -> tuple[str, str]:
    """The configured URLs, else those of the running ``inkstream up``."""
    nats_url, database_url = settings.nats_url, settings.database_url
    if not (nats_url and database_url):
        path = runtime_file(settings)
        if path.exists():
            try:
                data = json.loads(path.read_text())
            except PermissionError:
                raise SystemExit(
                    f"{path} is readable only by the account that runs `inkstream up` (it holds the "
                    "servers' passwords): run this command as that account"
                ) from None
            nats_url = nats_url or data["nats_url"]
            database_url = database_url or data["database_url"]
    if not (nats_url and database_url):
        raise SystemExit(
            "no NATS/PostgreSQL to talk to: set INKSTREAM_NATS_URL and INKSTREAM_DATABASE_URL, "
            "or start `inkstream up` with the same INKSTREAM_DATA_DIR"
        )
    return nats_url, database_url
