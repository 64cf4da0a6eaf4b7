"""One dev cluster for the package: three nats-server nodes, two ``api`` and two ``project`` processes
on a PostgreSQL of their own (adapters/runtime/dev_cluster.py, what ``inkstream dev-cluster`` runs).

Its own server, not a database on the session's: the cluster's processes open tens of connections
under load, and on a shared server (the machine's allows 100) they and the session's systems together
ran out, so requests answered 503 for a reason no user of a cluster would meet."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest

from adapters.runtime.dev_cluster import DevCluster
from tests.integration.cluster.load import install_write_audit
from tests.support.servers import scratch_dir

OPEN = "1000000"
SETTINGS = {
    "INKSTREAM_RATE_LIMIT_PER_SECOND": OPEN, "INKSTREAM_RATE_LIMIT_BURST": OPEN,
    "INKSTREAM_ANONYMOUS_RATE_LIMIT_PER_SECOND": OPEN, "INKSTREAM_ANONYMOUS_RATE_LIMIT_BURST": OPEN,
    "INKSTREAM_SIGN_IN_RATE_PER_SECOND": OPEN, "INKSTREAM_SIGN_IN_BURST": OPEN,
    "INKSTREAM_LOGIN_FAILURES_PER_MINUTE": OPEN,
    "INKSTREAM_WRITE_BYTES_PER_SECOND": "1e12", "INKSTREAM_WRITE_BYTES_BURST": str(10**12),
    # two cores for everything: one worker each is enough for these tests
    "INKSTREAM_SANDBOX_WORKERS": "1", "INKSTREAM_VALIDATION_WORKERS": "1",
}  # fmt: skip


@pytest.fixture(scope="package")
async def cluster() -> AsyncIterator[DevCluster]:
    root = scratch_dir("ink-cluster-")
    dev = DevCluster(root, settings=SETTINGS, inherit_settings=False, workers=0)
    await dev.start()
    await install_write_audit(dev.database_url)
    try:
        yield dev
    finally:
        await dev.stop()
        shutil.rmtree(root, ignore_errors=True)
