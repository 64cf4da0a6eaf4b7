"""NATS nodes lost under load: the INK stream's leader SIGKILLed, then a rolling restart of every node.

50 writers create buckets through both API processes (tests/integration/cluster/load.py). Each test
prints what it killed and what it counted.
"""

from __future__ import annotations

import asyncio
import time

from adapters.runtime.dev_cluster import DevCluster
from tests.integration.cluster.load import Writers, applied_twice, buckets_in_log, buckets_in_read_model, wait_projected

WRITERS = 50


async def check_exactly_once(cluster: DevCluster, writers: Writers) -> tuple[int, float]:
    """Every acknowledged command once in the log and once in the read model, nothing unacknowledged
    landed, no event applied twice; (acknowledged, seconds the projections took to catch up)."""
    caught_up = await wait_projected(cluster.database_url, cluster.nats.url)
    in_log = await buckets_in_log(cluster.nats.url, writers.owners)
    in_model = await buckets_in_read_model(cluster.database_url, writers.owners)
    acked = set(writers.acked)
    assert {b for b, n in in_log.items() if n > 1} == set(), "a command landed twice in the log"
    assert acked - set(in_log) == set(), "an acknowledged command is missing from the log"
    assert set(in_log) - acked == set(), "a command landed that its writer never saw acknowledged"
    assert set(in_model) == acked and max(in_model.values(), default=1) == 1, "the read model differs"
    assert await applied_twice(cluster.database_url) == 0, "an event was applied twice"
    return len(acked), caught_up


async def test_the_stream_leader_sigkilled_under_load(cluster: DevCluster) -> None:
    writers = Writers([api.url for api in cluster.apis if api.url], WRITERS)
    await writers.start()
    try:
        await asyncio.sleep(4)
        leader = await cluster.nats.leader_of("INK")
        name, pid = leader.fixed_name, leader.pid
        leader.kill()
        killed = time.monotonic()
        # answers until every writer's in-flight command has been answered after the new leader took over
        await asyncio.sleep(12)
        new_leader = (await cluster.nats.leader_of("INK")).fixed_name
        back = writers.first_success_sent_after(killed)
        await leader.start()
        rejoined = await cluster.nats.wait_current("INK")
        await asyncio.sleep(2)
    finally:
        await writers.stop()
    during = writers.statuses(killed, killed + (back or 12) + 2)
    total = writers.statuses()
    acked, caught_up = await check_exactly_once(cluster, writers)
    print(
        f"\nSIGKILLed nats-server {name} (pid {pid}), the leader of INK, under {WRITERS} writers on both API "
        f"processes; {new_leader} leads now. Writes sent after the kill succeeded again after "
        f"{back and round(back, 1)} s; answers during the election (kill to 2 s after that): {dict(during)}; "
        f"all answers {dict(total)}; the node rejoined and was a current replica {rejoined:.1f} s after its "
        f"restart; acknowledged {acked}, each once in the log and in the read model (projections caught up in "
        f"{caught_up:.1f} s)"
    )
    assert set(total) <= {201, 503}, f"only 201 or 503 (never 500, never a dropped connection): {total}"
    assert during[503] <= 0.01 * sum(during.values()), f"more than 1% 503 during the election: {during}"
    assert back is not None and back < 12, "writes must work again within seconds of the kill"


async def test_a_rolling_restart_of_every_node_under_load(cluster: DevCluster) -> None:
    writers = Writers([api.url for api in cluster.apis if api.url], WRITERS)
    await writers.start()
    restarts = []
    try:
        await asyncio.sleep(2)
        for node in cluster.nats.nodes:
            started = time.monotonic()
            await node.stop()  # SIGTERM: a node going down for maintenance hands its leaderships over
            await node.start()
            current = await cluster.nats.wait_current("INK")
            restarts.append(f"{node.fixed_name} {time.monotonic() - started:.1f} s (current after {current:.1f} s)")
            await asyncio.sleep(1)
    finally:
        await writers.stop()
    total = writers.statuses()
    acked, caught_up = await check_exactly_once(cluster, writers)
    print(
        f"\nrolling restart (SIGTERM, start, wait until current) of {', '.join(restarts)} under {WRITERS} writers: "
        f"answers {dict(total)}; acknowledged {acked}, each once in the log and in the read model "
        f"(projections caught up in {caught_up:.1f} s)"
    )
    assert set(total) <= {201, 503}, total
    assert total[503] <= 0.01 * sum(total.values()), total
