"""Read-your-writes for every query route, in one place.

With ``consistency=eventual`` a query answers at once; with
``min_position=N`` it waits for the read model to reach N; with neither it
waits for the log's last position at query time, so it reflects every
command whose answer arrived before the query was sent. Waits are bounded
(``INKSTREAM_READ_WAIT_SECONDS``), then 503.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
from aiohttp import web

from adapters.http.keys import container
from domain.errors import BadRequest


async def read_model(request: web.Request, projections: Sequence[str]) -> asyncpg.Pool:
    c = container(request)
    query = request.query
    consistency = query.get("consistency")
    if consistency not in (None, "eventual", "strong"):
        raise BadRequest("consistency must be 'eventual' or 'strong'")
    if consistency != "eventual":
        raw = query.get("min_position")
        last = await c.store.last_position()
        if raw is not None:
            try:
                target = int(raw)
            except ValueError:
                raise BadRequest("min_position must be an integer") from None
            if target > last:
                raise BadRequest(f"min_position {target} is beyond the end of the log ({last})")
        else:
            target = last
        await c.watch.wait(target, projections, c.settings.read_wait_seconds)
    c.metrics.db_queries.labels("query").inc()
    return c.pool
