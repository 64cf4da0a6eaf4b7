"""Migration runs: request one (dry by default), follow it, list them, revert one.

A run is a job on the runners' shared consumer (``adapters/jobs/migrations.py``);
the command answers are built by folding the run's history with the
migrations projection (a bounded batch at a time), in the shape GET answers
from the read model. Only the owner reaches a run: someone else's is 403, an
unknown id 404.
"""

from __future__ import annotations

from aiohttp import web

from adapters.http.api import Api, actor, command_answer, context, page_answer, read_body, read_query, resource_answer
from adapters.http.keys import BUS, READS, REPOSITORY
from adapters.http.models import ReadQuery
from adapters.http.models_migrations import MigrationChanged, MigrationIn, MigrationListQuery, MigrationPage
from adapters.http.page_turns import BYTE_PAGING, page_turn
from commands.authorization import ensure_owner
from commands.migrations import RequestMigration, RevertMigration
from commands.repository import Saved
from domain.errors import NotFound
from domain.ids import is_id
from domain.migration import Migration
from projections.documents import MigrationOut

MIGRATIONS = "migrations"


async def _answer(request: web.Request, saved: Saved[Migration], status: int) -> web.Response:
    """The run as of the command's event, folded from its history a bounded batch at a time (a revert's
    answer follows every progress event of the run, one per batch of the owner's blobs)."""
    run = await MigrationOut.from_pages(request.app[REPOSITORY].pages(Migration.TYPE, saved.aggregate.id_str,
                                                                      until_position=saved.position))
    return command_answer(run, saved.position, status=status, version=run.version)


async def request_migration(request: web.Request) -> web.Response:
    body = await read_body(request, MigrationIn)
    command = RequestMigration(body.schema_id, body.from_version, body.bucket_id, body.dry_run)
    return await _answer(request, await request.app[BUS].handle(command, context(request)), 202)


async def get_migration(request: web.Request) -> web.Response:
    user = actor(request)
    query = read_query(request, ReadQuery)
    migration_id = request.match_info["id"]
    if not is_id(migration_id):
        raise NotFound(f"migration {migration_id}")
    model = await request.app[READS].read((MIGRATIONS,), query.min_position, query.consistency)
    found = await model.migration(migration_id)
    if found is None:
        raise NotFound(f"migration {migration_id}")
    ensure_owner(user, found.owner_id, "migration")
    return resource_answer(found, found.version)


async def list_migrations(request: web.Request) -> web.Response:
    user = actor(request)
    query = read_query(request, MigrationListQuery)
    model = await request.app[READS].read((MIGRATIONS,), query.min_position, query.consistency)
    async with page_turn(request, user):  # a run keeps up to 100 errors: a page is up to 2 MiB
        page = await model.migrations(user, query.limit, query.cursor)
        return page_answer(page.items, page.next_cursor)


async def revert_migration(request: web.Request) -> web.Response:
    saved = await request.app[BUS].handle(RevertMigration(request.match_info["id"]), context(request))
    return await _answer(request, saved, 202)


_OWNER_ONLY = "Only the owner may read or change it (403 for someone else's, 404 when unknown)."


def register_routes(api: Api) -> None:
    op = api.operation
    op("POST", "/v1/migrations", summary="Migrate your stored blobs from one schema version to another",
       tag="migrations", body=MigrationIn, response=MigrationChanged, status=202, errors=(403, 404, 409, 422),
       description="202 with the run `pending` (dry by default); a job runner runs it: the chain of transforms "
                   "from `from_version` to the target, in the sandbox in batches, each result validated against "
                   "the target, each blob written expecting the version read (a blob changed meanwhile is retried "
                   "once at the end, then `skipped`; a failing blob is left as it was and reported in `errors`). "
                   "422 when no chain of migrations leads from the source to the target or the source version "
                   "is unknown; 403 for someone else's schema or bucket; 404 for an unknown one; 409 when a run "
                   "from the same version to the same target has completed and none of your blobs is on the "
                   "source version any more (while some are, it migrates only those).")(request_migration)
    op("GET", "/v1/migrations", summary="Your migration runs, newest first", tag="migrations",
       query=MigrationListQuery, response=MigrationPage, errors=(400,),
       description="Paged with `limit` (1-500, default 50) and the previous page's `next_cursor`." + BYTE_PAGING
       )(list_migrations)
    op("GET", "/v1/migrations/{id}", summary="A migration run and its progress", tag="migrations",
       query=ReadQuery, response=MigrationOut, errors=(400, 403, 404),
       description=_OWNER_ONLY + " The counts move as the run goes (one change per batch); `errors` keeps the "
                   "first 100. Live: subscribe with `{\"migration_id\": M}` on `/ws` or "
                   "`/v1/events?migration_id=M`.")(get_migration)
    op("POST", "/v1/migrations/{id}/revert", summary="Revert a completed migration run", tag="migrations",
       response=MigrationChanged, status=202, errors=(403, 404, 409),
       description=_OWNER_ONLY + " 202 with the run `reverting`: every blob the run changed that nobody changed "
                   "since goes back to its previous schema and data (new events); the rest are counted in "
                   "`revert_skipped` (the first 100 listed). A revert that used up its 5 attempts goes back to "
                   "`completed` with `error` saying so; asking again goes on from where it stopped. 409 for a "
                   "dry run or a run that has not completed (or was reverted already).")(revert_migration)
