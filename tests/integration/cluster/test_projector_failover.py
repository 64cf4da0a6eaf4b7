"""The active projector SIGKILLed under load: the standby takes over from the checkpoint, no event
applied twice (a trigger records every write of a bucket row with the position it applied)."""

from __future__ import annotations

import asyncio
import json
import time

import asyncpg

from adapters.runtime.dev_cluster import DevCluster, RoleProcess
from tests.integration.cluster.load import Writers
from tests.integration.cluster.test_node_loss import check_exactly_once


def started_lines(role: RoleProcess, since: int = 0) -> list[dict]:
    """The role's ``projector.started`` log lines (a runner that took the lead, and from where)."""
    with role.log_path.open("rb") as fh:
        fh.seek(since)
        lines = [json.loads(line) for line in fh if b'"projector.started"' in line]
    return lines


async def checkpoints(dsn: str) -> dict[str, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return {r["name"]: int(r["position"]) for r in await conn.fetch("SELECT name, position FROM projection_checkpoints")}
    finally:
        await conn.close()


async def test_the_active_projector_sigkilled_the_standby_takes_over(cluster: DevCluster) -> None:
    active = [p for p in cluster.projectors if p.running and started_lines(p)]
    assert len(active) == 1, "the first projector leads every projection, the other stands by"
    (leader,) = active
    (standby,) = [p for p in cluster.projectors if p is not leader]
    standby_log = standby.log_path.stat().st_size
    writers = Writers([api.url for api in cluster.apis if api.url], 20)
    await writers.start()
    try:
        await asyncio.sleep(3)
        pid = leader.pid
        # What the leader had committed: the standby never starts before it. (Read again right after the
        # kill, a checkpoint may be further on: a move the dying leader's process had in flight can land
        # after the standby read its start, harmlessly, since a commit skips what the checkpoint passed.)
        before_kill = await checkpoints(cluster.database_url)
        leader.kill()
        killed = time.monotonic()
        at_kill = await checkpoints(cluster.database_url)
        took_over = None
        while time.monotonic() - killed < 20:
            if len(started_lines(standby, standby_log)) == len(at_kill):
                took_over = time.monotonic() - killed
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(2)
    finally:
        await writers.stop()
    acked, caught_up = await check_exactly_once(cluster, writers)
    resumed = {line["projection"]: line["position"] for line in started_lines(standby, standby_log)}
    leader.start()  # back as the standby, for the tests after this one
    await leader.wait_ready()
    print(
        f"\nSIGKILLed the active projector {leader.name} (pid {pid}) under 20 writers; the standby "
        f"{standby.name} led every projection {took_over and round(took_over, 1)} s later, resuming from "
        f"{resumed} (checkpoints right after the kill {at_kill}); acknowledged {acked}, each once in the read "
        f"model, no event applied twice; projections caught up {caught_up:.1f} s after the writers stopped"
    )
    assert took_over is not None, "the standby must take over"
    for name, position in resumed.items():
        assert position >= before_kill[name], f"{name} must resume from its checkpoint, not before it"
