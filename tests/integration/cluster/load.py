"""Writers spread over the API processes, and what the log and the read model hold afterwards.

Each writer is a user of its own that creates buckets, one at a time, through
one API process (writers alternate between processes). A command that is not
answered 201 (a 503, a dropped connection) is sent again with the same
``Idempotency-Key`` and body, as the SDK does, until it is acknowledged: so
every command that landed is acknowledged by the end, and the log must hold
each exactly once. Every answer is counted with the time it arrived.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import aiohttp
import asyncpg
import nats

from adapters.jetstream.event_store import JetStreamEventStore
from tests.support.users import new_user


@dataclass
class Answer:
    at: float  # monotonic time the answer (or the failure) arrived
    sent: float
    status: int  # 0: the connection dropped or timed out


@dataclass
class Writers:
    urls: list[str]
    count: int = 50
    acked: dict[str, str] = field(default_factory=dict)  # bucket id -> owner
    answers: list[Answer] = field(default_factory=list)
    owners: set[str] = field(default_factory=set)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        async def register(url: str) -> dict[str, str]:
            async with aiohttp.ClientSession(base_url=url) as http:
                user = await new_user(http, "writer")
            self.owners.add(user.user_id)
            return user.headers

        headers = await asyncio.gather(*(register(self.urls[i % len(self.urls)]) for i in range(self.count)))
        self._tasks = [asyncio.create_task(self._writer(self.urls[i % len(self.urls)], headers[i]))
                       for i in range(self.count)]

    async def stop(self) -> None:
        """Stop sending new commands; each writer finishes (acknowledges) the one it has in hand."""
        self._stop.set()
        await asyncio.gather(*self._tasks)

    def statuses(self, since: float = 0.0, until: float = float("inf")) -> Counter[int]:
        return Counter(a.status for a in self.answers if since <= a.at <= until)

    def first_success_sent_after(self, moment: float) -> float | None:
        """Seconds from ``moment`` to the first 201 of a request sent after it (writes work again)."""
        times = [a.at for a in self.answers if a.status == 201 and a.sent >= moment]
        return min(times) - moment if times else None

    async def _writer(self, url: str, headers: dict[str, str]) -> None:
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(base_url=url, timeout=timeout) as http:
            while not self._stop.is_set():
                key, body = uuid.uuid4().hex, {"name": f"b-{uuid.uuid4().hex[:8]}", "type": "library"}
                while True:  # the same command until it is acknowledged
                    sent = time.monotonic()
                    try:
                        async with http.post("/v1/buckets", json=body,
                                             headers={**headers, "Idempotency-Key": key}) as r:
                            status = r.status
                            data = await r.json() if status == 201 else None
                    except (aiohttp.ClientError, asyncio.TimeoutError):
                        status, data = 0, None
                    self.answers.append(Answer(time.monotonic(), sent, status))
                    if data is not None:
                        self.acked[data["id"]] = data["owner_id"]
                        break
                    if status not in (0, 503):
                        break  # neither 201 nor "try again": the test fails on the status
                    await asyncio.sleep(0.1)
                await asyncio.sleep(0.005)


async def buckets_in_log(nats_url: str, owners: set[str]) -> Counter[str]:
    """How many events each bucket of ``owners`` has in the log (1 each: they were only created)."""
    nc = await nats.connect(nats_url.split(","))
    try:
        store = JetStreamEventStore(nc)
        last = await store.last_position()
        found: Counter[str] = Counter()
        cursor = await store.open_cursor(1)
        try:
            position = 0
            while position < last:
                batch = await cursor.next_batch(5000, timeout=10)
                assert batch, f"the log stopped at {position}, before its last position {last}"
                for record in batch:
                    position = record.position
                    if record.aggregate_type == "bucket" and record.actor in owners:
                        found[record.aggregate_id] += 1
        finally:
            await cursor.close()
        return found
    finally:
        await nc.close()


async def buckets_in_read_model(dsn: str, owners: set[str]) -> Counter[str]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT id FROM buckets WHERE owner_id = ANY($1::text[])", list(owners))
        return Counter(r["id"] for r in rows)
    finally:
        await conn.close()


AUDIT_SQL = """
CREATE TABLE IF NOT EXISTS test_bucket_writes (id text, position bigint, at timestamptz DEFAULT clock_timestamp());
CREATE OR REPLACE FUNCTION test_audit_bucket_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO test_bucket_writes (id, position) VALUES (NEW.id, NEW.position);
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS test_audit_bucket_write ON buckets;
CREATE TRIGGER test_audit_bucket_write AFTER INSERT OR UPDATE ON buckets
    FOR EACH ROW EXECUTE FUNCTION test_audit_bucket_write();
"""


async def install_write_audit(dsn: str) -> None:
    """Every write of a bucket row, with the log position it applied: an event applied twice would
    write its row twice at the same position."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(AUDIT_SQL)
    finally:
        await conn.close()


async def applied_twice(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(
            "SELECT count(*) FROM (SELECT 1 FROM test_bucket_writes GROUP BY id, position HAVING count(*) > 1) d"
        ))
    finally:
        await conn.close()


async def wait_projected(dsn: str, nats_url: str, timeout: float = 60) -> float:
    """Until every projection's checkpoint has reached the log's last position."""
    nc = await nats.connect(nats_url.split(","))
    try:
        last = await JetStreamEventStore(nc, wait_seconds=10).last_position()
    finally:
        await nc.close()
    started = time.monotonic()
    conn = await asyncpg.connect(dsn)
    try:
        while time.monotonic() - started < timeout:
            if await conn.fetchval("SELECT min(position) FROM projection_checkpoints") >= last:
                return time.monotonic() - started
            await asyncio.sleep(0.2)
    finally:
        await conn.close()
    raise AssertionError(f"the projections did not reach position {last} within {timeout} s")
