"""A JetStream cluster of local nats-server nodes, for ``inkstream dev-cluster`` and the cluster tests.

Three nodes on loopback, each an ``EmbeddedNats`` with its own store, a fixed
name (``ink-1``..``ink-3``: a node's identity in the cluster's Raft groups
must survive its restarts) and routes to the others. Clients and routes
present passwords generated once into the cluster's directory (0600); every
node takes the same client password, so one URL list reaches them all.

Ports are chosen on first start and kept in ``cluster.json``, because every
node's routes name the others' ports. An R3 stream is acknowledged once a
quorum holds it, so the nodes sync to disk on JetStream's own schedule
(every 2 minutes) rather than on every write, unless ``sync_always``; see
docs/operations.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from pathlib import Path
from typing import Any

import nats
from nats.aio.client import Client

from adapters.runtime.nats_server import ClusterRoutes, EmbeddedNats
from adapters.runtime.processes import EmbeddedRuntimeError, find_free_port, read_or_create_secret, write_private

__all__ = ["NatsCluster"]


class NatsCluster:
    READY_TIMEOUT = 30.0

    def __init__(
        self, root: Path, size: int = 3, host: str = "127.0.0.1", *, name: str = "inkstream",
        sync_always: bool = False,
    ) -> None:  # fmt: skip
        self.root = Path(root).absolute()
        self.size = size
        self.host = host
        self.name = name
        self.sync_always = sync_always
        self.nodes: list[EmbeddedNats] = []

    @property
    def url(self) -> str:
        """Every node's client URL (with the password), comma-separated: what ``INKSTREAM_NATS_URL`` takes."""
        return ",".join(node.url or "" for node in self.nodes)

    def _ports(self) -> tuple[list[int], list[int]]:
        """(client ports, route ports), chosen once and kept in cluster.json."""
        path = self.root / "cluster.json"
        with contextlib.suppress(OSError, ValueError, KeyError):
            saved = json.loads(path.read_text())
            if len(saved["client"]) == self.size:
                return list(saved["client"]), list(saved["route"])
        client = [find_free_port(self.host) for _ in range(self.size)]
        route = [find_free_port(self.host) for _ in range(self.size)]
        write_private(path, json.dumps({"client": client, "route": route}))
        return client, route

    def _build(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        client, route = self._ports()
        route_password = read_or_create_secret(self.root / "route-password")
        self.nodes = [
            EmbeddedNats(
                self.root / f"nats-{i + 1}",
                port=client[i],
                host=self.host,
                server_name=f"ink-{i + 1}",
                cluster=ClusterRoutes(self.name, route[i], tuple(route), "route", route_password),
                password_path=self.root / "password",
                sync_always=self.sync_always,
            )
            for i in range(self.size)
        ]

    async def start(self) -> str:
        """Start every node (together: each waits for the others' routes) and wait for a meta leader."""
        if not self.nodes:
            self._build()
        try:
            await asyncio.gather(*(node.start() for node in self.nodes))
            await self.wait_ready()
        except BaseException:
            await self.stop()
            raise
        return self.url

    async def stop(self) -> None:
        await asyncio.gather(*(node.stop() for node in self.nodes), return_exceptions=True)

    async def _client(self, timeout: float = 2.0) -> Client:
        return await nats.connect(
            [n.url for n in self.nodes if n.url and n.running], connect_timeout=timeout, allow_reconnect=False,
            max_reconnect_attempts=0,
        )  # fmt: skip

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Until the cluster has a JetStream meta leader (streams can be created)."""
        deadline = time.monotonic() + (timeout or self.READY_TIMEOUT)
        last: Any = "no attempt yet"
        while time.monotonic() < deadline:
            try:
                nc = await self._client()
                try:
                    await nc.jetstream().account_info()
                    return
                finally:
                    await nc.close()
            except Exception as exc:  # noqa: BLE001 - not ready yet
                last = exc
            await asyncio.sleep(0.2)
        raise EmbeddedRuntimeError(f"the NATS cluster under {self.root} has no JetStream leader: {last!r}")

    async def stream_info(self, stream: str) -> Any:
        nc = await self._client()
        try:
            return await nc.jetstream(timeout=5).stream_info(stream)
        finally:
            await nc.close()

    async def leader_of(self, stream: str) -> EmbeddedNats:
        """The node that leads ``stream`` now."""
        info = await self.stream_info(stream)
        leader = info.cluster.leader if info.cluster else None
        for node in self.nodes:
            if node.fixed_name == leader:
                return node
        raise EmbeddedRuntimeError(f"stream {stream} has no leader among {[n.fixed_name for n in self.nodes]}")

    async def wait_current(self, stream: str, timeout: float = 60.0) -> float:
        """Until ``stream`` has a leader and every other node is a current replica; returns the seconds it took."""
        started = time.monotonic()
        last: Any = None
        while time.monotonic() - started < timeout:
            try:
                info = await self.stream_info(stream)
                replicas = (info.cluster.replicas or []) if info.cluster else []
                if info.cluster and info.cluster.leader and len(replicas) == self.size - 1 and all(
                    r.current and not r.offline and not r.lag for r in replicas
                ):
                    return time.monotonic() - started
                last = info.cluster
            except Exception as exc:  # noqa: BLE001 - an election in progress
                last = exc
            await asyncio.sleep(0.2)
        raise EmbeddedRuntimeError(f"stream {stream} not current on every node within {timeout:.0f} s: {last!r}")
