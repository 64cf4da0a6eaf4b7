"""Loading and saving aggregates through the event store port.

Two caches, each bounded in entries and in bytes: an aggregate weighs the
bytes of the events it was built from as the log stores them (the oldest
entries leave once the total passes the budget, and an aggregate heavier
than the whole budget is not kept at all). Decoded into Python objects an
aggregate takes several times those bytes (about 6x measured for JSON-heavy
data), which is what the budgets' sizing in docs/operations.md allows for.

* The write-side cache keeps the aggregates commands decided on, with the
  position of their last event. A stale entry cannot do harm: its append
  fails the log's expected-sequence check, the entry is dropped, and the
  command is decided once more on a fresh load. Commands on one aggregate are
  serialised per process, so an in-memory aggregate is never decided on by two
  coroutines at once.
* The read cache keeps what ``get`` read (a bucket checked on every create
  filed in it, a schema, a processor, a job's input) and checks it against
  the log on every use: ``has_events_after`` the kept position (one Direct
  Get of at most one message), false unless someone wrote since (then the
  aggregate is read whole again). So ``get`` is exactly as current as a full load, for one
  small round trip instead of every event of the aggregate. Its aggregates are
  never the ones commands decide on (those change in place), and a fresh read
  replaces an entry rather than changing it, so what a caller holds never
  changes under it.

A load that finds neither reads a snapshot when its aggregate type is one the
composition root snapshots: the kept state at one position and the events
after it, instead of every event (``domain/snapshot.py``). The snapshot's own
last event is read too and must still be the log's, at the same position and
version, command id and time; a snapshot that fails that (a log restored
from a backup reuses positions), or cannot be read, is ignored and the log
folded whole. A load at a past position (``as_of``, a retried command's
answer) uses the snapshot too when it was taken at or before that position,
and never keeps one (it would replace a later one). A load that folded
``snapshot_after`` events or more keeps a fresh snapshot, taken from the
aggregate it folded from the log.

Rungs: the latest snapshot is no help to a load at a past position before it,
and such loads are a user's to ask for (``as_of``, a retried command's answer,
a revert's or a job input's version): folding a long history from its start
(or from a latest snapshot far below) for each one let one account keep a core
busy. So every fold of a snapshotted aggregate also keeps the snapshot at each
version that is a multiple of ``rung_events`` (``RUNG_EVENTS``, 1,024) it
passes, beside the latest. A load at a past position asks the log for the
aggregate's last event there (``EventStore.last_before``), starts from the
latest snapshot when that is at or before it and no rung is closer, else from
the rung at or below that version (checked against the log like any snapshot),
and folds at most ``rung_events`` events; a rung that is not kept is looked for
lower down, and without any the fold starts from the latest snapshot below or
the first event and keeps the rungs it passes for the next load. A rung is kept
only when it weighs at most ``RUNG_WEIGHT`` times the events it spans, so rungs
cost the snapshot bucket at most a few times the history they shortcut.

Every fold from the log streams (``fold``, reading ``pages``): a batch of at most
``FOLD_BYTES`` of event data (``EventStore.load_page``, the first event always),
folded into the aggregate and let go before the next batch is read, until the log
says no more follow. However long an aggregate's history grew, a load holds one batch of
its events besides the aggregate itself (whose state is bounded: a blob is at
most 512 KiB): a whole load, a load at a past position (``as_of``, a retried
command's answer) and the search for a command id (``replayed``) alike. Nothing
here answers a history as one list: a summary of one (a job's or a migration
run's answer, which its owner can make long: a job retried and cancelled over and
over, a run over many blobs) is folded from ``pages`` too.
"""

from __future__ import annotations

import asyncio
import inspect
import weakref
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractContextManager, aclosing, nullcontext
from dataclasses import dataclass
from typing import Generic, TypeVar, Union

from domain.base import EventCodec, InkAggregate
from domain.errors import ConcurrencyError, DomainError
from domain.ids import is_id, may_come_again
from domain.recorded import Recorded
from domain.snapshot import Taken, restore, take

from commands.ports import CommandIndex, EventStore, Guard, SnapshotStore

MIB = 1024 * 1024

FOLD_BYTES = 4 * MIB
"""The most event data (``Recorded.size``) one batch of a fold holds (the first event of a batch always
comes, whatever its size): what a load holds of an aggregate's history at a time."""

RUNG_EVENTS = 1024
"""A snapshotted aggregate also keeps the snapshot at every ``RUNG_EVENTS``-th version (a rung), so
that a load at a past position or version folds at most about this many events, however long the
history grew (see "Rungs" above)."""

RUNG_WEIGHT = 4
"""A rung is kept only when its snapshot weighs at most this many times the events folded since the
previous one (or the fold's start): what rungs add to the snapshot bucket stays within a few times the
history they shortcut."""

RUNG_PROBES = 16
"""How many rungs below a missing one are asked for one by one before the probes widen."""

RUNGS_REMEMBERED = 100_000
"""Rungs this process kept, remembered (about 200 bytes each) so that folds passing them again do
not write them again."""

A = TypeVar("A", bound=InkAggregate)


@dataclass(frozen=True, slots=True)
class Folded:
    """What a fold read from the log: the aggregate (``start`` when no event was folded), the last event
    read (None: none), and how many events were folded and their bytes."""

    aggregate: InkAggregate | None
    last: Recorded | None
    count: int
    weight: int


class NotAfter(Exception):
    """The first event a fold read is not the one its start was taken after (``fold(after=)``)."""


async def pages(
    store: EventStore, aggregate_type: str, aggregate_id: str, *, from_position: int = 1,
    until_position: int | None = None, max_bytes: int = FOLD_BYTES, limit: int | None = None,
) -> AsyncIterator[list[Recorded]]:
    """The aggregate's events from ``from_position`` (to ``until_position``), in order, a batch of at most
    ``max_bytes`` of event data at a time (the first event of a batch always), until the log says no more
    follow (a short history is one request). The one way the log is read a bounded batch at a time: a fold,
    a summary of a history (a job's answer) and ``inkstream audit`` alike.

    With ``limit``, at most that many events in all.

    A batch is not held here while the next is read; a caller that lets each batch go before asking for
    the next (``del``, or rebinding) holds one batch of the history at a time, however long it grew."""
    position = from_position
    while (until_position is None or position <= until_position) and (limit is None or limit > 0):
        batch, more = await store.load_page(aggregate_type, aggregate_id, from_position=position,
                                            until_position=until_position, max_bytes=max_bytes, limit=limit)
        if not batch:
            return
        position = batch[-1].position + 1
        if limit is not None:
            limit -= len(batch)
        yield batch
        del batch  # not held while the next batch is read
        if not more:
            return


async def fold(
    store: EventStore, codec: EventCodec, aggregate_type: str, aggregate_id: str, *,
    start: InkAggregate | None = None, from_position: int = 1, until_position: int | None = None,
    after: Callable[[Recorded], bool] | None = None, stop: Callable[[Recorded], bool] | None = None,
    max_bytes: int = FOLD_BYTES, rung: Rung | None = None, rung_events: int = 0, limit: int | None = None,
) -> Folded:
    """The aggregate's events from ``from_position`` (to ``until_position``) folded onto ``start``, read
    in ``pages`` of at most ``max_bytes`` of event data, each let go before the next is read.

    With ``after``, the first event read is the one ``start`` was taken after (a snapshot's last
    event): it must pass ``after`` (else ``NotAfter``, also when there is none) and is not folded.
    With ``stop``, the fold ends with the first event ``stop`` is true of (folded too): nothing after
    the batch that holds it is read. With ``limit``, at most that many events are read (the start's
    own event included). With ``rung``, it is called with the aggregate as each event
    whose version is a multiple of ``rung_events`` left it (that event just folded): see ``Rung``."""
    aggregate, last, count, weight, span = start, None, 0, 0, (0, 0)
    async with aclosing(pages(store, aggregate_type, aggregate_id, from_position=from_position,
                              until_position=until_position, max_bytes=max_bytes, limit=limit)) as batches:
        async for batch in batches:
            if after is not None:
                if not after(batch[0]):
                    raise NotAfter(f"{aggregate_type} {aggregate_id} at {from_position}")
                after, last = None, batch[0]
                del batch[0]
                if not batch:  # only the start's own event came
                    continue
            found = False
            if stop is not None:
                for i, record in enumerate(batch):
                    if stop(record):
                        del batch[i + 1:]
                        found = True
                        break
            if rung is None:
                aggregate = codec.rebuild(batch, aggregate)
            else:
                aggregate, span = _rebuild_with_rungs(codec, batch, aggregate, rung, rung_events, span)
            last = batch[-1]
            count += len(batch)
            weight += sum(record.size for record in batch)
            del batch  # not held while the next batch is read
            if found:
                break
    if after is not None:
        raise NotAfter(f"{aggregate_type} {aggregate_id} at {from_position}")  # nothing to read at all
    return Folded(aggregate, last, count, weight)


Rung = Callable[[InkAggregate, Recorded, int], bool]
"""Called by a fold with the aggregate as an event of a rung's version left it, that event, and the
bytes of the events since the last rung kept (see ``_rebuild_with_rungs``); whether this one is kept."""


def _rebuild_with_rungs(codec: EventCodec, batch: list[Recorded], aggregate: InkAggregate | None, rung: Rung,
                        rung_events: int, span: tuple[int, int]) -> tuple[InkAggregate | None, tuple[int, int]]:
    """``codec.rebuild`` of ``batch``, stopping at each event of a rung's version to hand it on; the
    aggregate, and the (bytes, events) folded since the last rung kept or the fold's start. A fold that
    started between two rungs (from a snapshot) saw only part of the first one's span: it is counted as
    a whole span of events of the average size seen."""
    start = 0
    spanned, events = span
    for i, record in enumerate(batch):
        spanned, events = spanned + record.size, events + 1
        if record.version % rung_events == 0:
            aggregate = codec.rebuild(batch[start:i + 1], aggregate)
            start = i + 1
            weight = spanned if events >= rung_events else spanned * rung_events // events
            if aggregate is not None and rung(aggregate, record, weight):
                spanned, events = 0, 0
    return (codec.rebuild(batch[start:], aggregate) if start < len(batch) else aggregate), (spanned, events)


@dataclass(frozen=True, slots=True)
class Context:
    """Who is acting, under which command id, inside which trace."""

    actor: str | None
    command_id: str
    traceparent: str | None = None
    fresh: bool = False
    """The command id was made up for this request (no ``Idempotency-Key``): no event can carry it
    yet, so a refusal answers at once instead of searching the aggregate's history for it."""


@dataclass(frozen=True, slots=True)
class Saved(Generic[A]):
    aggregate: A
    position: int
    written: bool = True
    """False when a handler answers with what an earlier attempt already wrote (nothing was appended
    now): what is charged for a write is charged once. Only ``WriteOutput``'s handler sets it; the
    repository's own answers (a replayed command, a read) leave it True, so a caller that bills on it
    must be one whose retries are never billed (the job runner's are not)."""


Decision = Callable[[Union[A, None]], Union[A, Awaitable[A]]]
"""Receives the current aggregate (None when it does not exist yet) and returns
it holding exactly one new pending event, or raises a domain error. It may be
async when deciding needs I/O (resolving a schema, running a migration)."""


Key = tuple[str, str]  # (aggregate type, id)


class Kept:
    """Aggregates with the position of their last event, least recently used first out,
    bounded in entries and in bytes."""

    def __init__(self, size: int, budget: int) -> None:
        self._entries: OrderedDict[Key, tuple[InkAggregate, int, int]] = OrderedDict()
        self._size = size
        self._budget = budget
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: Key) -> bool:
        return key in self._entries

    def get(self, key: Key) -> tuple[InkAggregate, int, int] | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def peek(self, key: Key) -> tuple[InkAggregate, int, int] | None:
        """The entry, without making it recent."""
        return self._entries.get(key)

    def put(self, key: Key, aggregate: InkAggregate, position: int, weight: int) -> None:
        self.drop(key)
        if weight > self._budget:
            return  # heavier than the whole budget: loaded from the log each time instead
        self._entries[key] = (aggregate, position, weight)
        self.bytes += weight
        while len(self._entries) > self._size or self.bytes > self._budget:
            _, (_, _, dropped) = self._entries.popitem(last=False)
            self.bytes -= dropped

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0

    def drop(self, key: Key) -> tuple[InkAggregate, int, int] | None:
        """Take the entry out (and answer it)."""
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry[2]
        return entry


class Repository:
    def __init__(
        self, store: EventStore, codec: EventCodec, cache_size: int = 4096, cache_bytes: int = 256 * MIB,
        read_cache_bytes: int = 64 * MIB, snapshots: SnapshotStore | None = None,
        snapshotting: Iterable[type[InkAggregate]] = (), snapshot_after: int = 32, fold_bytes: int = FOLD_BYTES,
        commands: CommandIndex | None = None, rung_events: int = RUNG_EVENTS,
        unmetered: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> None:
        """``unmetered``: a context whose reads are not charged to the request being served (the
        composition root's is ``adapters.work.unmetered``): the fold that replaces a missing latest
        snapshot runs in it, since its cost is the system's doing (a deploy's new code fingerprint, a
        slow snapshot bucket), not the user's choice."""
        self._store = store
        self._codec = codec
        self._cache = Kept(cache_size, cache_bytes)
        self._seen = Kept(cache_size, read_cache_bytes)
        self._locks: weakref.WeakValueDictionary[Key, asyncio.Lock] = weakref.WeakValueDictionary()
        self._searches: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._snapshots = snapshots
        self._snapshotting = frozenset(snapshotting) if snapshots is not None and snapshot_after > 0 else frozenset()
        self._snapshot_after = snapshot_after
        self._fold_bytes = fold_bytes
        self._commands = commands
        self._rung_events = rung_events
        self._unmetered = unmetered
        self._rungs: OrderedDict[tuple[str, str, int], tuple[int, str | None]] = OrderedDict()
        self.cache_hits = 0
        self.read_hits = 0
        self.snapshot_hits = 0
        self.snapshots_kept = 0
        self.rungs_kept = 0
        self.rung_hits = 0
        self.log_loads = 0

    @property
    def cached_bytes(self) -> int:
        return self._cache.bytes

    @property
    def codec(self) -> EventCodec:
        return self._codec

    async def last_position(self) -> int:
        """The log's last position (what a read-your-writes wait targets)."""
        return await self._store.last_position()

    def pages(self, aggregate_type: str, aggregate_id: str, *, until_position: int | None = None,
              ) -> AsyncIterator[list[Recorded]]:
        """The aggregate's history (to ``until_position``) a batch of at most the fold's bytes at a time
        (``pages``): what a summary of a history that may grow long (a job's answer) is folded from. Let
        each batch go before asking for the next; never collect them into one list."""
        return pages(self._store, aggregate_type, aggregate_id, until_position=until_position,
                     max_bytes=self._fold_bytes)

    async def history_page(
        self, aggregate_type: str, aggregate_id: str, *, after: int = 0, limit: int, max_bytes: int,
    ) -> tuple[list[Recorded], bool]:
        """The aggregate's first events after position ``after``, in order: at most ``limit`` of them
        and ``max_bytes`` of event data (one event always fits), and whether more follow."""
        records = await self._store.load(aggregate_type, aggregate_id, from_position=after + 1, limit=limit + 1,
                                         max_bytes=max_bytes)
        if len(records) > limit:
            return records[:limit], True
        if not records:
            return [], False
        # the page ended before ``limit``: the log's end, or the next event would not fit in max_bytes
        return records, await self._store.has_events_after(aggregate_type, aggregate_id, records[-1].position)

    async def first_event(self, aggregate_type: str, aggregate_id: str) -> Recorded | None:
        """The aggregate's first event (what created it), alone: one event read."""
        records = await self._store.load(aggregate_type, aggregate_id, limit=1)
        return records[0] if records else None

    async def get(self, cls: type[A], aggregate_id: str, *, until_position: int | None = None,
                  unchecked: bool = False) -> Saved[A] | None:
        """The aggregate as the log holds it now (from the read cache when nothing was written
        to it since), or at ``until_position`` (always read). Callers only read what they get.

        ``unchecked``: the copy this process read last, when it keeps one, without asking the log
        whether anything was written since (the round trip that ``get`` otherwise makes). Only
        for a check whose append is guarded on the position it answers (``Guard``): the log then
        refuses the append if the copy was stale, and the caller checks again with ``get``. On a
        store that does not guard (``EventStore.guards``) it is an ordinary ``get``."""
        if until_position is not None:
            fetched = await self._fetch(cls, aggregate_id, until_position)
            return Saved(fetched[0], fetched[1]) if fetched is not None else None
        key = (cls.TYPE, aggregate_id)
        kept = self._seen.get(key)
        if kept is not None and unchecked and self._store.guards:
            self.read_hits += 1
            return Saved(kept[0], kept[1])  # type: ignore[arg-type]
        if kept is not None and not await self._store.has_events_after(cls.TYPE, aggregate_id, kept[1]):
            self.read_hits += 1
            return Saved(kept[0], kept[1])  # type: ignore[arg-type]
        fetched = await self._fetch(cls, aggregate_id)
        if fetched is None:
            self._seen.drop(key)
            return None
        self._seen.put(key, *fetched)
        return Saved(fetched[0], fetched[1])

    async def _fetch(self, cls: type[A], aggregate_id: str, until_position: int | None = None) -> tuple[A, int, int] | None:
        """(aggregate, position of its last event, bytes it weighs) from the log, starting from its
        latest snapshot (or, at a past position, from that or the rung below, whichever is closer),
        folded a batch of events at a time."""
        limit: int | None = None
        replacing = False  # the latest snapshot is missing (or unusable): this fold keeps a new one
        if cls in self._snapshotting:
            if until_position is None:
                fetched = await self._from_snapshot(cls, aggregate_id)
                replacing = True
            else:
                last = await self._store.last_before(cls.TYPE, aggregate_id, until_position)
                if last is None:
                    return None  # no event there yet: nothing to fold
                fetched = await self._from_past(cls, aggregate_id, last)
                limit = last.version  # from the first event, no more than that to read
            if fetched is not None:
                return fetched
        with self._unmetered() if replacing else nullcontext():
            folded = await self._fold(cls, aggregate_id, until_position=until_position, limit=limit)
        self.log_loads += 1
        if folded.last is None:
            return None
        aggregate = folded.aggregate
        assert isinstance(aggregate, cls)
        if until_position is None:
            self._snapshot(cls, aggregate, folded)
        return aggregate, folded.last.position, folded.weight

    async def _from_past(self, cls: type[A], aggregate_id: str, last: Recorded) -> tuple[A, int, int] | None:
        """The aggregate as ``last`` (its last event at a past position) left it: from the latest
        snapshot when that is at or before ``last`` and no rung is closer, else from the rung below
        (above the latest snapshot, when that is usable), else from the latest snapshot however far
        below; None when neither is there."""
        assert self._snapshots is not None
        taken = await self._snapshots.get(cls.TYPE, aggregate_id)
        usable = taken if taken is not None and taken.position <= last.position else None
        step = self._rung_events
        if usable is not None and (step <= 0 or usable.version >= last.version // step * step):
            fetched = await self._from_snapshot(cls, aggregate_id, last.position, taken=usable, version=last.version)
            if fetched is not None:
                return fetched
            usable = None  # not (or no longer) this log's history
        fetched = await self._from_rung(cls, aggregate_id, last.version, until_position=last.position,
                                        above=usable.version if usable is not None else 0)
        if fetched is None and usable is not None:
            fetched = await self._from_snapshot(cls, aggregate_id, last.position, taken=usable, version=last.version)
        return fetched

    async def _fold(self, cls: type[A], aggregate_id: str, **bounds: object) -> Folded:
        rung = self._keep_rung if cls in self._snapshotting and self._rung_events > 0 else None
        return await fold(self._store, self._codec, cls.TYPE, aggregate_id, max_bytes=self._fold_bytes,
                          rung=rung, rung_events=self._rung_events, **bounds)  # type: ignore[arg-type]

    def _keep_rung(self, aggregate: InkAggregate, last: Recorded, span: int) -> bool:
        """Keep the snapshot of a rung's version that a fold just passed (any fold: a load, one at a
        past position, a search), unless this process kept that very one already, or it would weigh
        more than ``RUNG_WEIGHT`` times the ``span`` bytes of events folded since the fold's start or
        its last rung (so rungs take at most a few times the bytes of the history they shortcut: a
        large book edited by tiny changes gets rungs further apart). Whether it is kept (or was)."""
        key = (type(aggregate).TYPE, aggregate.id_str, last.version // self._rung_events)
        event = (last.position, last.command_id)
        if self._rungs.get(key) == event:
            self._rungs.move_to_end(key)
            return True
        taken = take(aggregate, last)
        assert self._snapshots is not None
        if taken is None or not self._snapshots.keep(*key[:2], taken, rung=key[2], max_bytes=RUNG_WEIGHT * span):
            return False
        self._rungs[key] = event
        if len(self._rungs) > RUNGS_REMEMBERED:
            self._rungs.popitem(last=False)
        self.rungs_kept += 1
        return True

    async def _from_rung(self, cls: type[A], aggregate_id: str, version: int, *, until_position: int | None = None,
                         above: int = 0) -> tuple[A, int, int] | None:
        """The aggregate at ``version`` (its event at ``until_position`` when given), folded from the
        highest rung at or below it that is kept and above version ``above``; None when there is none."""
        if self._rung_events <= 0:
            return None
        taken = await self._find_rung(cls, aggregate_id, version // self._rung_events, above // self._rung_events + 1)
        if taken is None or taken.version > version or (until_position is not None and taken.position > until_position):
            return None
        limit = version - taken.version + 1  # the rung's own event, read to check it, and the rest
        bounds: dict[str, object] = (
            {"until_position": taken.position} if taken.version == version  # read its own event only, to check it
            else {"until_position": until_position, "limit": limit} if until_position is not None
            else {"stop": lambda record: record.version >= version, "limit": limit}
        )
        folded = await self._fold_after(cls, aggregate_id, taken, **bounds)
        if folded is None:
            return None
        aggregate = folded.aggregate
        assert isinstance(aggregate, cls) and folded.last is not None
        self.rung_hits += 1
        return aggregate, folded.last.position, taken.size + folded.weight

    async def _find_rung(self, cls: type[A], aggregate_id: str, rung: int, lowest: int = 1) -> Taken | None:
        """Rung ``rung``, or when it is not kept (no fold passed it yet, it was too heavy for the events
        it spans, or it left the bucket) the highest kept one below it down to ``lowest``: the next
        ``RUNG_PROBES`` one by one (rungs refused for their weight leave gaps of a few at the default
        spacing), then ``rung - 2 * RUNG_PROBES``, ``- 4 * RUNG_PROBES``, …, the last probe at
        ``lowest``. Folds keep the rungs they pass, so a longer gap (a stretch no fold has passed yet)
        costs at most about twice its length in events and a few reads. A rung found missing is
        forgotten as kept by this process, so that the next fold passing it writes it again."""
        assert self._snapshots is not None
        lowest = max(lowest, 1)
        at, step = rung, 1
        while at >= lowest:
            taken = await self._snapshots.get(cls.TYPE, aggregate_id, rung=at)
            if taken is not None:
                return taken
            self._rungs.pop((cls.TYPE, aggregate_id, at), None)
            if rung - at >= RUNG_PROBES:
                step *= 2
            at = lowest if at - step < lowest < at else at - step  # the last probe at the lowest rung
        return None

    async def _from_snapshot(self, cls: type[A], aggregate_id: str, until_position: int | None = None, *,
                             taken: Taken | None = None, version: int | None = None) -> tuple[A, int, int] | None:
        """From the aggregate's latest snapshot (``taken``, when the caller read it already) and the
        events after it (to ``until_position``, where its event of ``version`` is, when known: no more
        than those are read); None when there is no usable one (or it was taken after ``until_position``)."""
        assert self._snapshots is not None
        if taken is None:
            taken = await self._snapshots.get(cls.TYPE, aggregate_id)
        if taken is None or (until_position is not None and taken.position > until_position):
            return None
        bounds: dict[str, object] = {"until_position": until_position}
        if version is not None and version >= taken.version:
            bounds["limit"] = version - taken.version + 1  # the snapshot's own event, read to check it, and the rest
        folded = await self._fold_after(cls, aggregate_id, taken, **bounds)
        if folded is None:
            return None
        aggregate = folded.aggregate
        assert isinstance(aggregate, cls) and folded.last is not None
        self.snapshot_hits += 1
        if until_position is None:  # a snapshot at a past position would replace a later one
            self._snapshot(cls, aggregate, folded)
        return aggregate, folded.last.position, taken.size + folded.weight

    async def _fold_after(self, cls: type[A], aggregate_id: str, taken: Taken, **bounds: object) -> Folded | None:
        """The events after a snapshot (the latest or a rung) folded onto it, within ``bounds``; None when
        it cannot be read or is not (or no longer) this aggregate's history: the caller folds otherwise.
        The snapshot's own event is read too, and checked, so ``last`` is never None."""
        try:
            start = restore(cls, aggregate_id, taken)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        try:
            folded = await self._fold(cls, aggregate_id, start=start, from_position=taken.position,
                                      after=taken.taken_after, **bounds)
        except NotAfter:
            return None
        assert isinstance(folded.aggregate, cls) and folded.last is not None
        return folded

    def _snapshot(self, cls: type[A], aggregate: A, folded: Folded) -> None:
        """Keep a snapshot of ``aggregate``, just folded from the log, when that took many events."""
        if cls not in self._snapshotting or folded.count < self._snapshot_after or folded.last is None:
            return
        taken = take(aggregate, folded.last)
        assert self._snapshots is not None
        if taken is not None and self._snapshots.keep(cls.TYPE, aggregate.id_str, taken):
            self.snapshots_kept += 1

    async def _load(self, cls: type[A], aggregate_id: str, use_cache: bool) -> tuple[A | None, int, int, bool]:
        """(aggregate or None, position, weight, whether it came from the cache)."""
        kept = self._cache.get((cls.TYPE, aggregate_id)) if use_cache else None
        if kept is not None:
            self.cache_hits += 1
            return kept[0], kept[1], kept[2], True  # type: ignore[return-value]
        fetched = await self._fetch(cls, aggregate_id)
        if fetched is None:
            return None, 0, 0, False
        return fetched[0], fetched[1], fetched[2], False

    async def state_at(self, aggregate_type: str, aggregate_id: str, position: int) -> InkAggregate | None:
        """The aggregate of ``aggregate_type`` as its last event at or before ``position`` left it (None:
        none there, or a type the codec does not know), read like ``get(until_position=)``: from the
        latest snapshot or the rung below it. A fresh object, the caller's to change."""
        cls = self._codec.aggregate(aggregate_type)
        if cls is None:
            return None
        saved = await self.get(cls, aggregate_id, until_position=position)
        return saved.aggregate if saved is not None else None

    async def get_and_keep(self, cls: type[A], aggregate_id: str) -> Saved[A] | None:
        """The aggregate as the log holds it now, kept in the write-side cache for the change
        that usually follows (a stale copy fails the log's check and is read again, so keeping
        it only saves a read)."""
        fetched = await self._fetch(cls, aggregate_id)
        if fetched is None:
            return None
        self._cache.put((cls.TYPE, aggregate_id), *fetched)
        return Saved(fetched[0], fetched[1])

    async def execute(
        self,
        cls: type[A],
        aggregate_id: str | None,
        decide: Decision[A],
        ctx: Context,
        guard: Guard | None = None,
    ) -> Saved[A]:
        """Load once (or not, for a creation), let the domain decide, append its one event.

        The aggregate is loaded, authorized and decided on once; only a stale
        cached copy (another process wrote since) makes it load and decide
        again, on the log's state. With ``aggregate_id`` None the aggregate is
        new and its id comes from the decision. A retry (same command id) of a
        command the log already holds answers like the first attempt, even
        when deciding again would now fail (a second delete, the same move).
        ``guard`` (a creation only): the append lands only while the aggregate it
        names is unchanged, else ``ConcurrencyError`` (the caller checks again); on a
        store that does not guard it is dropped (the caller's check read the log).
        """
        if aggregate_id is None:
            aggregate = await _decided(decide, None)
            # a store that does not guard: the caller's check was a checked read (``get``), as before
            return await self._append(cls, aggregate, 0, 0, ctx, guard if self._store.guards else None)
        assert guard is None, "only a creation is guarded"
        key = (cls.TYPE, aggregate_id)
        lock = self._locks.get(key)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[key] = lock
        async with lock:
            use_cache = True
            while True:
                current, position, weight, cached = await self._load(cls, aggregate_id, use_cache)
                try:
                    aggregate = await _decided(decide, current)
                    return await self._append(cls, aggregate, position, weight, ctx)
                except (ConcurrencyError, DomainError):
                    # A cached copy may be stale (another process wrote since):
                    # decide once more on the log's current state before refusing.
                    self._cache.drop(key)
                    if not cached:
                        replayed = await self.replayed(cls, aggregate_id, ctx)  # a retry of a command the log holds?
                        if replayed is not None:
                            return replayed
                        raise
                    use_cache = False
                except BaseException:
                    self._cache.drop(key)
                    raise

    async def _append(
        self, cls: type[A], aggregate: A, expected_position: int, weight: int, ctx: Context,
        guard: Guard | None = None,
    ) -> Saved[A]:
        """Append the one pending event; ``weight`` is what the aggregate weighed before it."""
        pending = aggregate.collect_events()
        if len(pending) != 1:
            raise DomainError(f"a command must record exactly one event, got {len(pending)}")
        event = self._codec.encode(pending[0], actor=ctx.actor, traceparent=ctx.traceparent)
        appended = await self._store.append(cls.TYPE, aggregate.id_str, event, expected_position, ctx.command_id,
                                             guard=guard)
        if appended.duplicate:
            return await self._original(cls, appended.position)
        self._cache.put((cls.TYPE, aggregate.id_str), aggregate, appended.position, weight + appended.size)
        return Saved(aggregate, appended.position)

    async def refused_early(self, cls: type[A], aggregate_id: str, ctx: Context,
                            check: Callable[[A], None]) -> Saved[A] | None:
        """``check`` (raising a domain error) of the aggregate as the log holds it now (the read cache),
        before a handler's costly work (a validator, the sandbox), so that a refusal comes cheap. As in
        ``execute``, a refusal of a command the log already holds is no refusal: a retry gets the first
        attempt's answer, returned here. None: nothing refused (or no such aggregate): go on."""
        saved = await self.get(cls, aggregate_id)
        if saved is None:
            return None
        try:
            check(saved.aggregate)
        except DomainError:
            replayed = await self.replayed(cls, aggregate_id, ctx)
            if replayed is not None:
                return replayed
            raise
        return None

    async def replayed(self, cls: type[A], aggregate_id: str, ctx: Context) -> Saved[A] | None:
        """The first attempt's result when this command id already changed the
        aggregate (None otherwise): what ``Idempotency-Key`` promises a retry, as the
        first attempt left the aggregate (later changes by others are not its answer).

        A command id that may come again is found through the command index
        (``CommandIndex``, the ``commands`` projection): one lookup, and only the
        aggregate's events after the index's checkpoint are read. Without an index (a
        process given none), or for a made-up id, the log is folded a batch at a time up
        to the first event with the command id, and to the end when none has it: the log
        keeps no index of its own (JetStream's Msg-Id deduplication answers only an
        append, within its window), and the first attempt's event may be anywhere in the
        history (a retry may carry another If-Match, or none)."""
        # never a raw request token in a subject; never a fresh command id, which no event can carry yet
        # (the search would read the whole history, which its owner can make long)
        if not is_id(aggregate_id) or ctx.fresh:
            return None
        command_id = ctx.command_id
        # one search at a time per actor: each may read a long stretch of a history its owner made
        # long, so a burst of keyed stale writes reads it once after the other, never all at once
        search = self._searches.get(ctx.actor or "")
        if search is None:
            search = asyncio.Lock()
            self._searches[ctx.actor or ""] = search
        async with search:
            if self._commands is not None and may_come_again(command_id):
                position = await self._indexed(cls, aggregate_id, command_id)
                if position is None:
                    return None
                fetched = await self._fetch(cls, aggregate_id, until_position=position)
                if fetched is not None and fetched[1] == position:
                    return Saved(fetched[0], position)
                # the index names an event this aggregate's history does not have there (a log
                # restored from a backup under an index built from the old one): the log decides
            folded = await self._fold(cls, aggregate_id, stop=lambda record: record.command_id == command_id)
        if folded.last is None or folded.last.command_id != command_id:
            return None
        aggregate = folded.aggregate
        assert isinstance(aggregate, cls)
        return Saved(aggregate, folded.last.position)

    async def _indexed(self, cls: type[A], aggregate_id: str, command_id: str) -> int | None:
        """The position of the aggregate's event with ``command_id`` (None: there is none): from the
        command index, else from the events the index has not reached yet, which are all that is read."""
        assert self._commands is not None
        checkpoint, position = await self._commands.command_position(cls.TYPE, aggregate_id, command_id)
        if position is not None:
            return position
        async with aclosing(pages(self._store, cls.TYPE, aggregate_id, from_position=checkpoint + 1,
                                  max_bytes=self._fold_bytes)) as batches:
            async for batch in batches:
                for record in batch:
                    if record.command_id == command_id:
                        return record.position
        return None

    async def at_version(self, cls: type[A], aggregate_id: str, version: int) -> A | None:
        """The aggregate folded from the log up to its event of ``version`` (a batch at a time, none
        after it): at an earlier version when the log holds no later one, None when it has no event."""
        if cls in self._snapshotting:
            fetched = await self._from_rung(cls, aggregate_id, version)
            if fetched is not None:
                return fetched[0] if fetched[0].version <= version else None
        # versions run 1, 2, 3, …: the event of ``version`` is the aggregate's ``version``-th
        folded = await self._fold(cls, aggregate_id, stop=lambda record: record.version >= version,
                                  limit=max(version, 1))
        found = folded.aggregate
        if found is not None and found.version > version:
            return None  # no event of that version (never happens: versions follow each other)
        assert found is None or isinstance(found, cls)
        return found

    async def _original(self, cls: type[A], position: int) -> Saved[A]:
        """A retried command: answer with the aggregate as its first attempt left it (not as it is now,
        after later changes: the retry must get the answer the first attempt would have had)."""
        original = await self._store.event_at(position)
        if original is None or original.aggregate_type != cls.TYPE:
            raise ConcurrencyError("the command id was already used for another change")
        self._cache.drop((cls.TYPE, original.aggregate_id))
        saved = await self.get(cls, original.aggregate_id, until_position=position)
        assert saved is not None
        return Saved(saved.aggregate, position)


async def _decided(decide: Decision[A], current: A | None) -> A:
    result = decide(current)
    if inspect.isawaitable(result):
        return await result
    return result
