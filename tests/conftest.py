"""Session fixtures: a real nats-server and a real PostgreSQL for the whole run."""

from __future__ import annotations

import atexit
import contextlib
import faulthandler
import os
import shutil
import threading
import uuid
from collections.abc import AsyncIterator

import aiohttp
import nats
import pytest

from adapters.client import InkstreamClient
from adapters.sandbox.pool import SandboxPool
from adapters.jetstream.connection import close_nats
from adapters.jetstream.event_store import JetStreamEventStore
from adapters.jetstream.streams import apply_streams, load_stream_specs
from tests.support.mongo import MongoServer, new_database_name
from tests.support.servers import Database, start_nats
from tests.support.fixtures import Seeded, load_schemas
from tests.support.sdk import SignUp, new_client
from tests.support.system import RunningSystem, start_system


# -- the end of the session is bounded too ---------------------------------------------------------
#
# pytest-timeout bounds each test, not what runs after the last one outside it: the session
# fixtures torn down in ``pytest_sessionfinish`` (after -x or Ctrl-C), the interpreter's exit
# (it joins executor threads); nor the last test's teardown, where the session fixtures end and
# pytest-asyncio closes the event loop (it cancels every task left and waits for them: one that
# ignores its cancellation waits for ever), when that test failed (pytest-timeout stops its
# timer on a failure). From the last test's teardown on, faulthandler's watchdog thread (in C:
# no event loop needed) dumps every thread's stack to the terminal and exits with status 1 if
# the process is still there after INKSTREAM_TEST_TEARDOWN_TIMEOUT s (120; 0 turns it off). It
# is armed only then, and disarmed once pytest is done, and again at the very end of the exit.
#
# The same watchdog bounds the teardown of a test that failed in its setup or call, which
# pytest-timeout leaves unbounded for the same reason; it is disarmed once that test is done.

TEARDOWN_TIMEOUT = float(os.environ.get("INKSTREAM_TEST_TEARDOWN_TIMEOUT", "120"))
_terminal_fd: int | None = None
_finishing = False  # from the last test's teardown on
_armed_for_failed: str | None = None  # the node id of the failed test whose teardown is watched


def _arm_teardown_watchdog(config: pytest.Config) -> None:
    """(Re)start the countdown; faulthandler keeps one timer, so arming again restarts it."""
    global _terminal_fd
    if TEARDOWN_TIMEOUT <= 0 or config.getoption("usepdb", False):  # no watchdog under --pdb
        return
    if _terminal_fd is None:  # the terminal's stderr: fd 2 is pytest's capture file during a teardown
        capman = config.pluginmanager.getplugin("capturemanager")
        with capman.global_and_fixture_disabled() if capman is not None else contextlib.nullcontext():
            _terminal_fd = os.dup(2)  # kept open until exit: the watchdog writes to it
    faulthandler.dump_traceback_later(TEARDOWN_TIMEOUT, exit=True, file=_terminal_fd)


def _disarm_teardown_watchdog() -> None:
    faulthandler.cancel_dump_traceback_later()


@pytest.hookimpl(trylast=True)
def pytest_exception_interact(node: pytest.Item | pytest.Collector, call: pytest.CallInfo[None],
                              report: pytest.TestReport | pytest.CollectReport) -> None:
    # pytest-timeout cancels its timer in this hook (tryfirst): watch the rest of the test instead
    global _armed_for_failed
    if isinstance(node, pytest.Item) and getattr(report, "when", None) in ("setup", "call") and not _finishing:
        _arm_teardown_watchdog(node.config)
        _armed_for_failed = node.nodeid


def pytest_runtest_logfinish(nodeid: str) -> None:
    global _armed_for_failed
    if _armed_for_failed == nodeid:
        _armed_for_failed = None
        if not _finishing:
            _disarm_teardown_watchdog()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    global _finishing
    if nextitem is None:  # the last test: its teardown ends the session fixtures and the event loop
        _finishing = True
        _arm_teardown_watchdog(item.config)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    # before pytest's own sessionfinish, which tears down what an interrupted run left set up
    global _finishing
    _finishing = True
    _arm_teardown_watchdog(session.config)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    _disarm_teardown_watchdog()
    if TEARDOWN_TIMEOUT > 0 and hasattr(threading, "_register_atexit"):
        # The interpreter's exit joins threads (an executor's, a non-daemon one) before it runs the
        # atexit functions: watch that join too, then disarm for good once it is over.
        with contextlib.suppress(RuntimeError):  # already shutting down
            threading._register_atexit(lambda: _arm_teardown_watchdog(config))
            atexit.register(_disarm_teardown_watchdog)


@pytest.fixture(scope="session")
async def nats_server() -> AsyncIterator[str]:
    server, root = await start_nats()
    try:
        assert server.url
        yield server.url
    finally:
        await server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
async def database() -> AsyncIterator[Database]:
    db = Database()
    await db.start()
    try:
        yield db
    finally:
        await db.stop()


@pytest.fixture(scope="session")
async def pg_dsn(database: Database) -> str:
    return database.dsn


@pytest.fixture(scope="session")
async def sandbox() -> AsyncIterator[SandboxPool]:
    """One JavaScript sandbox (two worker processes, 500 ms, 32 MB) for the tests that need V8 but no servers."""
    pool = SandboxPool(workers=2, timeout_ms=500, max_memory_mb=32)
    await pool.start()
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(scope="session")
async def nc(nats_server: str) -> AsyncIterator[nats.aio.client.Client]:
    client = await nats.connect(nats_server, max_reconnect_attempts=-1, reconnect_time_wait=0.25)
    await apply_streams(client, load_stream_specs())
    try:
        yield client
    finally:
        await close_nats(client)  # drain and close, bounded


@pytest.fixture
async def private_store(nc: nats.aio.client.Client) -> JetStreamEventStore:
    """An event store on a stream of its own, for tests that count the whole log."""
    from nats.js import api

    tag = uuid.uuid4().hex[:10]
    name, prefix = f"T{tag}", f"t{tag}"
    await nc.jetstream().add_stream(
        api.StreamConfig(name=name, subjects=[f"{prefix}.>"], allow_direct=True, duplicate_window=120)
    )
    return JetStreamEventStore(nc, stream=name, prefix=prefix)


@pytest.fixture(scope="session")
async def mongo_server() -> AsyncIterator[MongoServer]:
    """SecantusDB for the session (or the MongoDB at INKSTREAM_TEST_MONGO_URL); see tests/support/mongo.py."""
    server = MongoServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def mongo_url(mongo_server: MongoServer) -> AsyncIterator[str]:
    """A database of the test's own."""
    name = new_database_name()
    yield mongo_server.database_url(name)
    await mongo_server.drop_database(name)


@pytest.fixture(scope="session")
async def pg_system(nats_server: str, database: Database, nc: nats.aio.client.Client) -> AsyncIterator[RunningSystem]:
    """The whole system (API + projectors into PostgreSQL) on the session's servers, over real HTTP."""

    dsn = await database.new_database()
    running = await start_system(nats_server, dsn)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture(scope="session")
async def mongo_system(nats_server: str, database: Database, mongo_server: MongoServer,
                       nc: nats.aio.client.Client) -> AsyncIterator[RunningSystem]:
    """The same system answering queries from MongoDB (INKSTREAM_READ_STORE=mongo); it
    projects the same log into PostgreSQL too, so both stores can be compared."""

    dsn = await database.new_database()
    running = await start_system(nats_server, dsn, mongo_url=mongo_server.database_url(), read_store="mongo")
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture(scope="session")
def system(pg_system: RunningSystem) -> RunningSystem:
    """The system the integration tests talk to; the areas that run on both read stores
    override it (tests/support/stores.py)."""
    return pg_system


@pytest.fixture
async def http(system: RunningSystem) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=system.base_url) as session:
        yield session


@pytest.fixture
def sign_up(system: RunningSystem, http: aiohttp.ClientSession) -> SignUp:
    """``ink = await sign_up("author")``: a new user's SDK client, on the test's HTTP session."""

    async def make(prefix: str = "user", **options: object) -> InkstreamClient:
        return await new_client(system.base_url, prefix, session=http, **options)

    return make


@pytest.fixture(scope="session")
async def seeded(system: RunningSystem) -> Seeded:
    """The fixture schemas (tests/fixtures/schemas.json), registered through the API once per run."""

    return await load_schemas(system.base_url)
