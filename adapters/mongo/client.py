"""MongoDB through pymongo's asyncio client (``AsyncMongoClient``, the maintained successor of motor).

``Mongo`` is one client and its database (the URL's path, else ``inkstream``),
plus what the server offers: transactions exist on a replica set or behind a
``mongos``, not on a standalone server. Without them the projector still
changes nothing twice (position-guarded writes), only not atomically with its
checkpoint.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, PyMongoError

from adapters.telemetry.redaction import without_password

DEFAULT_DATABASE = "inkstream"

# Errors that mean "the server is unreachable" (AutoReconnect, NetworkTimeout and
# ServerSelectionTimeoutError are ConnectionFailures), as opposed to "this request is wrong".
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (ConnectionFailure, OSError, TimeoutError)


def is_outage(exc: BaseException) -> bool:
    """Unreachable, or a transaction that lost a race and is safe to run again."""
    if isinstance(exc, OUTAGE_ERRORS):
        return True
    return isinstance(exc, PyMongoError) and exc.has_error_label("TransientTransactionError")


@dataclass
class Mongo:
    client: AsyncMongoClient
    db: AsyncDatabase
    transactions: bool

    async def close(self) -> None:
        await self.client.close()


def mongo_client(url: str, *, timeout: float = 2.0) -> AsyncMongoClient:
    """``timeout`` bounds finding a server (and connecting): a query while MongoDB is
    down answers 503 after it, rather than hanging for the driver's default 30 s."""
    ms = int(timeout * 1000)
    return AsyncMongoClient(url, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms, tz_aware=True,
                            appname="inkstream")


async def offers_transactions(client: AsyncMongoClient) -> bool:
    hello = await client.admin.command("hello")
    return bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"


async def open_mongo(url: str, *, timeout: float = 30.0, transactions: bool | None = None) -> Mongo:
    """Connect, waiting up to ``timeout`` for the server to answer; ``transactions``
    None asks the server whether it offers them."""
    client = mongo_client(url)
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            offered = await offers_transactions(client)
            break
        except OUTAGE_ERRORS as exc:
            if asyncio.get_running_loop().time() > deadline:
                await client.close()
                raise RuntimeError(f"MongoDB at {without_password(url)} did not answer within {timeout:.0f} s: {exc}") from exc
            await asyncio.sleep(0.5)
    db = client.get_default_database(default=DEFAULT_DATABASE)
    return Mongo(client, db, offered if transactions is None else transactions and offered)
