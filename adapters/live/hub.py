"""The live fan-out of one API process: one reader of the log, routing to every connection.

One ``Follower`` of the process's ``SharedLog`` (never one consumer per
connection) reads each event once; the router turns it into pushes
(``projections.pushes``) and hands each push to the subscriptions of its
topic, through each connection's bounded ``Outbox``.

The seam between history and live
----------------------------------
``position`` is the first position the router has not yet dispatched. Batches
are prepared (aggregate states may need a load: an await) and then dispatched
with no await in between, so registering a subscription, which reads
``position`` synchronously, falls cleanly between two dispatches. A
subscription registered at ``live_from = position`` receives from the router
every push at ``live_from`` or later, and nothing earlier; a subscription with
``since`` replays ``since + 1 .. live_from - 1`` from the log (a subject
filter: ``read_range``). Until the replay ends, the router's pushes wait in the
subscription's ``pending`` list (charged to the connection's budget), and the switch-over
flushes them and sends ``caught_up`` in one synchronous step. Every push is
also dropped when its position is not after the subscription's ``after`` (its
``since``), so a client resuming from a position this process has not routed
yet (it came from a node further ahead) gets no duplicate either.

Ownership is checked when subscribing (from the log, never behind), and again
whenever a routed bucket event names an owner other than the subscriber or
deletes the bucket: the subscription ends with ``unsubscribed``.

What one user can make this process hold is bounded (``LiveLimits``): the
router's aggregate states in entries and bytes (``states.py``), each
connection's queue and the pending lists of its subscriptions, together, in
messages and bytes (``outbox.py``), and the catch-ups from ``since`` in number
(two per user, four per process read the log at once; the others wait their
turn; a turn is not kept by a client that does not read), in the bytes of each
read of the log and in the states each keeps (``replay.py``).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

import structlog

from adapters.cancellation import raise_if_cancelling
from adapters.live.outbox import End, Message, Outbox, Subscription, UserHolding, topic_field
from adapters.live.replay import CatchUpGate, Replay
from adapters.live.states import OUTAGES, AggregateStates, Loader, pushes_for, pushes_or_none
from adapters.shared_log import SharedLog
from commands.authorization import ensure_owner
from commands.ports import EventStore
from commands.repository import fold
from domain.base import EventCodec
from domain.errors import NotFound
from domain.limits import MAX_INT64 as LAST_POSITION
from domain.recorded import Recorded
from projections.pushes import Push, Topic, bucket_access

__all__ = ["OUTAGES", "LiveHub", "LiveLimits", "pushes_for", "pushes_or_none"]

log = structlog.get_logger("inkstream.live")

REPLAY_BATCH = 500
MIB = 1024 * 1024


class LiveError(Exception):
    def __init__(self, reason: str = "", retry_after: float | None = None) -> None:
        self.reason = reason
        self.retry_after = retry_after
        super().__init__(reason)


class SinceOutOfRange(LiveError):
    """``since`` is negative or beyond the log's end (400 ``bad_request``)."""


class TooManyLive(LiveError):
    """A per-user limit on connections or subscriptions (429 ``rate_limited``)."""


class AlreadySubscribed(LiveError):
    """The connection already follows this topic (409 ``conflict``)."""


@dataclass(frozen=True)
class LiveLimits:
    """Every limit of the live endpoints (settings ``INKSTREAM_LIVE_*`` / ``INKSTREAM_WS_*``;
    docs/live.md, "Limits", and docs/operations.md have the table)."""

    queue_size: int = 1000
    """Messages held for one connection: its queue and the pushes pending behind its subscriptions'
    catch-ups, together; more: 4408."""
    queue_bytes: int = 8 * MIB
    """Their encoded bytes (a connection holding nothing takes any one message); more: 4408."""
    user_queue_bytes: int = 32 * MIB
    """The same bytes for all of one user's connections together (a user holding nothing takes any
    one message); the connection a message does not fit: 4408."""
    max_connections_per_user: int = 20
    max_subscriptions_per_user: int = 200
    heartbeat_seconds: float = 20.0
    max_message_bytes: int = 64 * 1024
    frames_per_second: float = 100.0
    """Frames other than text messages (ping, pong, binary) one ``/ws`` connection may send, after a
    burst of ``frames_burst``; past them it is closed, 4429. Text messages count against the user's
    request limit (each past it is answered with an error), but pings were answered by the server
    unseen and unbounded, and a flood of tiny frames cost the event loop more than its client."""
    frames_burst: int = 200
    auth_timeout_seconds: float = 10.0
    keepalive_seconds: float = 15.0
    states: int = 10_000
    """Aggregate states the router keeps (an LRU)..."""
    states_bytes: int = 64 * MIB
    """... and their encoded bytes."""
    catch_ups_per_user: int = 2
    """Catch-ups from ``since`` of one user reading the log at once; more wait their turn."""
    catch_ups_per_process: int = 4
    """Catch-ups reading the log at once in this process; more wait their turn."""
    catch_up_read_bytes: int = 8 * MIB
    """About the bytes of one read of the log by a catch-up (the event that reaches it included)."""
    catch_up_read_events: int = REPLAY_BATCH
    """The events of one read of the log by a catch-up."""
    catch_up_states_bytes: int = 16 * MIB
    """The encoded bytes of the aggregate states one catch-up keeps."""
    catch_up_stall_seconds: float = 10.0
    """The time, in all, a catch-up may wait for room in its connection's queue while it holds a
    turn; past it, its connection overflows (4408) as soon as another catch-up waits for a turn."""
    catch_up_slice_seconds: float = 1.0
    """How long a catch-up reads the log on one turn while another catch-up waits for one: then it
    goes to the back of the line and goes on from where it was when its turn comes again."""


class _Turn:
    """A catch-up's turn of the process's ``CatchUpGate``, given up between two reads of the log once
    it has been held ``slice`` seconds while another catch-up waits.

    A catch-up holds its turn while it reads: one resuming an empty bucket from position 1 reads
    every blob event of every user and pushes none, and so never waited for its client (what
    ``_PutInTurn`` counts). Held for the whole scan, two users' such catch-ups, asked again in a
    loop, kept every other user's resumes waiting for seconds.
    """

    def __init__(self, gate: CatchUpGate, user_id: str, slice_seconds: float) -> None:
        self._gate = gate
        self._user = user_id
        self._slice = max(0.0, slice_seconds)
        self._held = False
        self._since = 0.0

    async def __aenter__(self) -> _Turn:
        await self._take()
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._held:
            self._held = False
            self._gate.release(self._user)

    async def _take(self) -> None:
        await self._gate.acquire(self._user)
        self._held = True
        self._since = asyncio.get_running_loop().time()

    def due(self) -> bool:
        """Whether it should give way now: held past its slice, with another catch-up waiting."""
        return asyncio.get_running_loop().time() - self._since >= self._slice and self._gate.contended()

    async def give_way(self) -> None:
        """To the back of the line, and back when its turn comes again."""
        self._held = False
        self._gate.release(self._user)  # granted to the first waiting, before this one asks again
        await self._take()


class _PutInTurn:
    """A catch-up's ``put`` while it holds a turn: a client that does not read must not keep it.

    The time spent waiting for room in the connection's queue is added up; once it passes
    ``limit`` seconds, the connection overflows (4408, or the SSE stream ends) as soon as another
    catch-up waits for a turn of the process. The client resumes with ``since`` from what it did
    receive, and waits its turn again. With nobody waiting, a slow reader is not cut off, and a
    user's own waiting catch-ups (held by its per-user limit) do not count.
    """

    def __init__(self, outbox: Outbox, gate: CatchUpGate, limit: float, topic: Topic) -> None:
        self._outbox = outbox
        self._gate = gate
        self._limit = max(0.0, limit)
        self._topic = topic
        self.stalled = 0.0

    async def __call__(self, push: Push) -> bool:
        message = Message.of(push)
        loop = asyncio.get_running_loop()
        while True:
            # checked before each wait too: a client reading a trickle, just often enough, gives way as well
            if self.stalled >= self._limit and self._gate.contended():
                log.info("live.catch_up_stalled", user_id=self._outbox.user_id, topic=self._topic,
                         stalled_seconds=round(self.stalled, 1), position=push.position)
                self._outbox.overflow()
                return False
            started = loop.time()
            try:
                # until the limit, then a look every second (or sooner, for a short limit)
                async with asyncio.timeout(max(self._limit - self.stalled, min(1.0, self._limit), 0.01)):
                    return await self._outbox.put(message)
            except TimeoutError:
                pass
            finally:
                self.stalled += loop.time() - started


@dataclass
class _TopicState:
    owner: str | None = None
    subscriptions: set[Subscription] = field(default_factory=set)


class LiveHub:
    def __init__(self, shared: SharedLog, store: EventStore, codec: EventCodec,
                 limits: LiveLimits | None = None, load: Loader | None = None) -> None:
        self._shared = shared
        self._store = store
        self._codec = codec
        self.limits = limits or LiveLimits()
        self.position = 0
        self._load = load
        self._states = AggregateStates(store, codec, capacity=self.limits.states,
                                       max_bytes=self.limits.states_bytes, load=load)
        self.gate = CatchUpGate(self.limits.catch_ups_per_user, self.limits.catch_ups_per_process)
        self._topics: dict[Topic, _TopicState] = {}
        self._connections: Counter[str] = Counter()
        self._outboxes: set[Outbox] = set()
        self._holdings: dict[str, UserHolding] = {}  # by user: what all their connections hold
        self._subscriptions: Counter[str] = Counter()
        self.started = asyncio.Event()

    # -- the router -------------------------------------------------------------------

    async def run(self) -> None:
        """Route every event from the log's tail on, until cancelled; outages are waited out."""
        self.position = await self._store.last_position() + 1
        self.started.set()
        delay = 0.1
        while True:
            # a batch is dispatched at once: never more pushes than a queue holds
            follower = self._shared.follow(self.position, max_batch=min(REPLAY_BATCH, self.limits.queue_size),
                                           idle=1.0)
            try:
                while True:
                    raise_if_cancelling()
                    batch = await follower.next_batch()
                    if batch:
                        await self._route(batch)
                        delay = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - an outage: resume where we stopped
                raise_if_cancelling()
                log.warning("live.router_outage", error=str(exc) or type(exc).__name__, position=self.position)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            finally:
                await follower.close()

    async def _route(self, batch: list[Recorded]) -> None:
        prepared = [(record, await self._prepare(record)) for record in batch]
        # no await from here on: a subscription registers before or after the whole batch
        for record, pushes in prepared:
            self._dispatch(record, pushes)
        self.position = batch[-1].position + 1

    async def _prepare(self, record: Recorded) -> list[Push]:
        delay = 0.1
        while True:
            try:
                return await pushes_or_none(record, self._states)
            except OUTAGES as exc:  # the log went away mid-load: a push must not be lost
                log.warning("live.state_unavailable", error=str(exc) or type(exc).__name__, position=record.position)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    def _dispatch(self, record: Recorded, pushes: list[Push]) -> None:
        access = bucket_access(record)
        if access is not None and access.topic in self._topics:
            state = self._topics[access.topic]
            if access.owner_id is not None:
                state.owner = access.owner_id
            for sub in list(state.subscriptions):
                if access.deleted:
                    self._end(sub, "deleted", record.position)
                elif access.owner_id is not None and access.owner_id != sub.outbox.user_id:
                    self._end(sub, "forbidden", record.position)
        for push in pushes:
            state = self._topics.get(push.topic)
            if state is None or not state.subscriptions:
                continue
            message = Message.of(push)
            for sub in list(state.subscriptions):
                self._deliver(sub, message)

    def _deliver(self, sub: Subscription, message: Message) -> None:
        if sub.ended or message.position is None or message.position <= sub.after:
            return
        if sub.pending is None:
            sub.outbox.offer(message)
        else:  # not live yet: held, in the connection's budget (past it, the connection overflows)
            sub.outbox.hold(sub, message)

    def _end(self, sub: Subscription, reason: str, position: int) -> None:
        """The subscription stops: its bucket is gone, or no longer the subscriber's."""
        if sub.pending is not None:
            sub.pending.append(End(reason, position))
            sub.ended = True
            return
        self._drop(sub)
        sub.outbox.offer(Message("unsubscribed", {**topic_field(sub.topic), "position": position, "reason": reason},
                                 position))

    # -- connections and subscriptions -----------------------------------------------------

    def connect(self, user_id: str, transport: str) -> Outbox:
        if self._connections[user_id] >= self.limits.max_connections_per_user:
            raise TooManyLive(f"at most {self.limits.max_connections_per_user} live connections per user",
                              retry_after=5.0)
        self._connections[user_id] += 1
        holding = self._holdings.get(user_id)
        if holding is None:
            holding = self._holdings[user_id] = UserHolding(self.limits.user_queue_bytes)
        outbox = Outbox(user_id, self.limits.queue_size, transport, max_bytes=self.limits.queue_bytes, user=holding)
        self._outboxes.add(outbox)
        return outbox

    def disconnect(self, outbox: Outbox) -> None:
        for sub in list(outbox.subscriptions.values()):
            self._drop(sub)
        outbox.close()
        if outbox not in self._outboxes:
            return
        self._outboxes.discard(outbox)
        self._connections[outbox.user_id] -= 1
        if self._connections[outbox.user_id] <= 0:
            del self._connections[outbox.user_id]
            self._holdings.pop(outbox.user_id, None)

    async def open(self, outbox: Outbox, topic: Topic, since: int | None) -> Subscription:
        """Check and register a subscription; it goes live (after its replay) with ``catch_up``.

        Raises ``SinceOutOfRange``, ``TooManyLive``, ``AlreadySubscribed``, ``NotFound``,
        ``Forbidden`` or ``Unavailable``; nothing is registered then.
        """
        user = outbox.user_id
        if topic in outbox.subscriptions:
            raise AlreadySubscribed(f"this connection already follows {topic[0]} {topic[1]}")
        if self._subscriptions[user] >= self.limits.max_subscriptions_per_user:
            raise TooManyLive(f"at most {self.limits.max_subscriptions_per_user} live subscriptions per user")
        if since is not None:
            if since < 0:
                raise SinceOutOfRange("since must be a log position (0 or more)")
            last = await self._store.last_position()
            if since > last:
                raise SinceOutOfRange(f"since {since} is beyond the log's end ({last})")
        # registered before the ownership check reads the log: nothing routed meanwhile is missed
        sub = Subscription(outbox, topic, after=since if since is not None else self.position - 1,
                           live_from=self.position, replay=since is not None)
        self._topics.setdefault(topic, _TopicState()).subscriptions.add(sub)
        outbox.subscriptions[topic] = sub
        self._subscriptions[user] += 1
        try:
            owner = await self._owner(topic)
            ensure_owner(user, owner, topic[0])
        except BaseException:
            self._drop(sub)
            raise
        self._topics[topic].owner = owner
        return sub

    async def catch_up(self, sub: Subscription) -> None:
        """``subscribed``, the replay from the log (with ``since``), then live: no gap, no duplicate."""
        outbox = sub.outbox
        if not await outbox.put(Message("subscribed", {**topic_field(sub.topic), "position": sub.after}, sub.after)):
            return
        if sub.replay and sub.after + 1 <= sub.live_from - 1:
            limits = self.limits
            # the log is read by a few catch-ups at a time, each for a slice while others wait
            async with _Turn(self.gate, outbox.user_id, limits.catch_up_slice_seconds) as turn:
                if outbox.overflowed or outbox.closed:
                    return  # it went (or fell behind) while waiting for its turn
                replay = Replay(self._store, self._codec, sub.topic, read_events=limits.catch_up_read_events,
                                read_bytes=limits.catch_up_read_bytes, states_bytes=limits.catch_up_states_bytes,
                                load=self._load)

                async def between_reads() -> bool:
                    if turn.due():
                        replay.forget()  # a catch-up waiting for its turn holds nothing
                        await turn.give_way()
                    return not (outbox.overflowed or outbox.closed)  # it may have gone while it waited

                if not await replay.run(sub.after + 1, sub.live_from - 1,
                                        _PutInTurn(outbox, self.gate, limits.catch_up_stall_seconds, sub.topic),
                                        between_reads):
                    return
        self._go_live(sub)

    def _go_live(self, sub: Subscription) -> None:
        outbox = sub.outbox
        for item in outbox.release(sub):  # already in the connection's budget: moved, not offered
            if isinstance(item, End):
                sub.ended = False
                self._end(sub, item.reason, item.position)
                return
            if not outbox.admit(item):
                return
        if sub.replay:
            position = max(sub.after, self.position - 1)
            outbox.admit(Message("caught_up", {**topic_field(sub.topic), "position": position}, position))

    def close(self, sub: Subscription) -> None:
        """The client unsubscribed."""
        self._drop(sub)

    def _drop(self, sub: Subscription) -> None:
        outbox = sub.outbox
        if outbox.subscriptions.get(sub.topic) is not sub:
            return
        del outbox.subscriptions[sub.topic]
        if sub.pending:
            outbox.release(sub)
            sub.pending = []  # still not live: a catch-up still running finds nothing to flush
        self._subscriptions[outbox.user_id] -= 1
        if self._subscriptions[outbox.user_id] <= 0:
            del self._subscriptions[outbox.user_id]
        state = self._topics.get(sub.topic)
        if state is not None:
            state.subscriptions.discard(sub)
            if not state.subscriptions:
                del self._topics[sub.topic]

    async def _owner(self, topic: Topic) -> str:
        kind, topic_id = topic
        first = await self._store.load(kind, topic_id, limit=1)
        known = bool(first) and self._codec.knows(first[0].type)
        aggregate = None
        if known and self._load is not None:  # from its snapshot: a job's owner can make its history long
            aggregate = await self._load(kind, topic_id, LAST_POSITION)
        elif known:  # a batch of its events at a time, never its whole history at once
            aggregate = (await fold(self._store, self._codec, kind, topic_id)).aggregate
        if aggregate is None or getattr(aggregate, "deleted", False):
            raise NotFound(f"{kind} {topic_id}")
        return str(aggregate.owner_id)  # type: ignore[attr-defined]

    def shutdown(self) -> None:
        """The process is stopping: every connection's transport ends (a WebSocket closes with 1001)."""
        for outbox in list(self._outboxes):
            outbox.close()

    def connection_count(self) -> int:
        return len(self._outboxes)
