"""A subscription's catch-up from ``since``: its turn (``CatchUpGate``) and its read of the log.

A client that subscribes with an old ``since`` makes the server read the log
from there, which costs this process memory (the batches read, the states
built from them) and CPU for as long as it lasts. So:

* **Turns.** At most ``per_user`` catch-ups of one user and ``per_process``
  catch-ups in all read the log at once; the others wait their turn (in the
  order they asked, a user at its own limit never holding anyone else's
  turn), they are not refused. A waiting catch-up's subscription is already
  registered, so the router's pushes wait for it in its pending list, charged
  to its connection's budget (``outbox.py``): one that waits too long
  overflows (4408) like any connection too slow to keep up, and resumes with
  ``since``. A turn is not held by a client that does not read: a catch-up
  that has waited, in all, ``catch_up_stall_seconds`` for room in its
  connection's queue while holding its turn overflows its connection as soon
  as another catch-up waits for a turn of the process (``LiveHub.catch_up``).
  Nor by one that reads much and pushes little: past ``catch_up_slice_seconds``
  with another catch-up waiting, it lets go of its states (``Replay.forget``)
  and of its turn between two reads, and waits for the next (``hub._Turn``).
* **Bounded reads.** The log is read through the subject filter in batches of
  at most ``read_events`` events and about ``read_bytes`` bytes (the batch
  stops after the event that reaches it), each batch let go before the next.
* **Bounded states.** The replay's own ``AggregateStates`` (it goes back in
  time, so not the router's) is bounded in bytes. A bucket's replay reads
  every blob event (``ink.blob.>``) but holds only the states of blobs in
  its bucket: a blob found outside it is remembered by id only (a bounded
  set), and its later events are skipped without building or holding its
  state until a move brings it in (a creation or a move names its buckets:
  ``projections.pushes.buckets_named``).
"""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict, deque
from collections.abc import Awaitable, Callable

from adapters.live.states import AggregateStates, Loader, pushes_or_none
from commands.ports import EventStore
from domain.base import EventCodec
from domain.recorded import Recorded
from projections.pushes import BUCKET, Push, Topic, buckets_named


class CatchUpGate:
    """At most ``per_user`` turns per user and ``per_process`` in all; the rest wait, first come first served
    among those whose user is under its own limit."""

    def __init__(self, per_user: int = 2, per_process: int = 4) -> None:
        self.per_user = max(1, per_user)
        self.per_process = max(1, per_process)
        self.active = 0
        self._by_user: Counter[str] = Counter()
        self._waiting: deque[tuple[str, asyncio.Future[None]]] = deque()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def active_for(self, user_id: str) -> int:
        return self._by_user[user_id]

    def contended(self) -> bool:
        """Whether a catch-up waits for a turn that only the process's limit keeps from it (its user
        is under its own): the turns held are then everyone's business, not just their users'."""
        return any(not turn.done() and self._by_user[user_id] < self.per_user for user_id, turn in self._waiting)

    async def acquire(self, user_id: str) -> None:
        # Every waiter is held by its own user's limit or by the process's (granting is eager),
        # so a caller free of both goes first without passing anyone who could have gone.
        if self._free(user_id):
            self._take(user_id)
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (user_id, turn)
        self._waiting.append(entry)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self.release(user_id)  # granted as it was cancelled: hand the turn on
            else:
                self._waiting.remove(entry)
            raise

    def release(self, user_id: str) -> None:
        self.active -= 1
        self._by_user[user_id] -= 1
        if self._by_user[user_id] <= 0:
            del self._by_user[user_id]
        self._grant()

    def _free(self, user_id: str) -> bool:
        return self.active < self.per_process and self._by_user[user_id] < self.per_user

    def _take(self, user_id: str) -> None:
        self.active += 1
        self._by_user[user_id] += 1

    def _grant(self) -> None:
        for entry in list(self._waiting):
            if self.active >= self.per_process:
                return
            user_id, turn = entry
            if turn.done():  # cancelled: its waiter removes it
                continue
            if self._by_user[user_id] < self.per_user:
                self._waiting.remove(entry)
                self._take(user_id)
                turn.set_result(None)


class _Outside:
    """Blob ids known to be outside the replayed bucket, least recently met first out."""

    def __init__(self, capacity: int) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def __contains__(self, blob_id: str) -> bool:
        return blob_id in self._ids

    def add(self, blob_id: str) -> None:
        self._ids[blob_id] = None
        self._ids.move_to_end(blob_id)
        while len(self._ids) > self._capacity:
            self._ids.popitem(last=False)  # forgotten: its next event is read whole again

    def discard(self, blob_id: str) -> None:
        self._ids.pop(blob_id, None)

    def clear(self) -> None:
        self._ids.clear()


class Replay:
    """The pushes of one topic between two positions, read from the log (see the module's docstring)."""

    def __init__(self, store: EventStore, codec: EventCodec, topic: Topic, *, read_events: int = 500,
                 read_bytes: int = 8 * 1024 * 1024, states_bytes: int = 16 * 1024 * 1024,
                 outside_ids: int = 50_000, load: Loader | None = None) -> None:
        self._store = store
        self._topic = topic
        self._read_events = read_events
        self._read_bytes = read_bytes
        self.states = AggregateStates(store, codec, max_bytes=states_bytes, load=load)
        self.outside = _Outside(outside_ids)
        self.skipped = 0
        """Events of blobs outside the bucket passed over without a state."""
        self.largest_read_bytes = 0
        """The most bytes one read of the log returned (what the reads are bounded by)."""

    def forget(self) -> None:
        """Let go of what it keeps to go faster (states, the ids known to be outside): both are read
        from the log again as needed, so the replay stays exact. A catch-up does this before it waits
        for another turn: it holds nothing while it waits, as before it had its first."""
        self.states.clear()
        self.outside.clear()

    async def run(self, start: int, end: int, put: Callable[[Push], Awaitable[bool]],
                  between_reads: Callable[[], Awaitable[bool]] | None = None) -> bool:
        """Every push of the topic at ``start .. end``, in order, through ``put``; False when
        ``put`` said stop (the connection went or overflowed), or ``between_reads`` did (asked
        before each read of the log but the first: the hub gives its turn way there)."""
        kind, topic_id = self._topic
        first = True
        while start <= end:
            if not first and between_reads is not None and not await between_reads():
                return False
            first = False
            batch = await self._store.read_range(
                "blob" if kind == BUCKET else kind, start, end,
                aggregate_id=None if kind == BUCKET else topic_id,
                limit=self._read_events, max_bytes=self._read_bytes)
            if not batch:
                break
            self.largest_read_bytes = max(self.largest_read_bytes, sum(r.size for r in batch))
            start = batch[-1].position + 1
            for record in batch:
                for push in await self._pushes(record):
                    if push.topic == self._topic and not await put(push):
                        return False
            del batch  # let it go before the next read: one batch held at a time
        return True

    async def _pushes(self, record: Recorded) -> list[Push]:
        kind, bucket_id = self._topic
        if kind != BUCKET:
            return await pushes_or_none(record, self.states)
        blob_id = record.aggregate_id
        named = buckets_named(record)
        if blob_id in self.outside:
            if named is None or bucket_id not in named:
                self.skipped += 1
                return []  # still outside: nothing to push, nothing to hold
            self.outside.discard(blob_id)  # moved in: its state is read from the log
        elif named is not None and bucket_id not in named and record.data.get("from_bucket_id") != bucket_id:
            # created elsewhere, or moved between two other buckets: it was not in ours and is not now
            self.outside.add(blob_id)
            self.skipped += 1
            return []
        pushes = await pushes_or_none(record, self.states)
        key = (record.aggregate_type, blob_id)
        if named is not None:
            inside = bucket_id in named
        else:
            state = self.states.peek(key)
            inside = state is None or (bucket_id in getattr(state, "bucket_ids", ()) and
                                       not getattr(state, "deleted", False))
            # not kept (unknown): neither held nor skipped, its next event tells
        if not inside:
            self.states.forget(key)
            self.outside.add(blob_id)
        return pushes
