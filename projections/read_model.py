"""What queries ask of a read-model store: the port every store implements.

The HTTP layer serves every query through this port, so a second store
(MongoDB) answers the same questions with the same documents, the same
ordering and the same paging. Cursors are opaque to clients; a store refuses
one it did not hand out with ``InvalidCursor``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from projections.documents import (
    BlobOut,
    BookOut,
    BookSummary,
    BucketOut,
    Document,
    JobOut,
    MigrationOut,
    ProcessorOut,
    SchemaOut,
    UserOut,
)

D = TypeVar("D", bound=Document)

MAX_LIMIT = 500

PAGE_BYTES = 2 * 1024 * 1024
"""What the items of one page of blobs, schema versions, books, processors, jobs or migration runs
may weigh (their ``data_bytes``, ``schema_bytes``, a book's ``metadata_bytes`` and its chapters'
``summary_bytes`` over ``BOOK_ROW_BYTES``, ``config_bytes``, a job's ``error_bytes`` and
``last_error_bytes`` over ``JOB_ROW_BYTES``, or a run's ``errors_bytes`` and
``revert_skipped_bytes`` over ``MIGRATION_ROW_BYTES``; ``projections/sizes.py``): a page ends
early, with a cursor, before its items would pass it, whatever ``limit`` asks; one item always
fits. Stores pick the page by these weights and read the data of its items only.

2 MiB, not more: a page costs the API's event loop and memory in proportion to its bytes (an
8 MiB page measured about 0.23 s of the loop and ~190 MiB at its peak, decoded, validated and
encoded again), so a few of them at once held every other request. At 2 MiB a page costs about
as much as a few of the largest blobs, and a client walks a little more often."""


class BadQuery(Exception):
    """Query parameters no store can answer (the client's mistake, not the store's)."""


class InvalidCursor(BadQuery):
    """A list cursor this store never handed out (forged, truncated or from another list)."""


@dataclass(frozen=True, slots=True)
class Page(Generic[D]):
    items: list[D]
    next_cursor: str | None = None


class ReadModel(Protocol):
    async def user(self, user_id: str) -> UserOut | None: ...

    async def user_account(self, user_id: str) -> str | None:
        """The id of the user's aggregate (a hash of the email), for audits by public ``user_id``."""
        ...

    async def schema(self, schema_id: str) -> SchemaOut | None:
        """``name@version``, or a bare name for its latest version."""
        ...

    async def schema_versions(self, name: str, limit: int, cursor: str | None) -> Page[SchemaOut]:
        """Newest (highest semver precedence) first; at most ``PAGE_BYTES`` of schemas a page."""
        ...

    async def bucket(self, bucket_id: str) -> BucketOut | None: ...

    async def buckets(self, owner_id: str, parent_id: str | None, limit: int, cursor: str | None) -> Page[BucketOut]:
        """The owner's children of ``parent_id`` (None: their roots), oldest first."""
        ...

    async def bucket_is_empty(self, bucket_id: str) -> bool:
        """No child buckets and no blobs."""
        ...

    async def blob(self, blob_id: str) -> BlobOut | None: ...

    async def blobs(self, owner_id: str, bucket_id: str | None, schema_id: str | None, limit: int,
                    cursor: str | None) -> Page[BlobOut]:
        """The owner's blobs, oldest first, optionally in one bucket and/or of one schema
        version (a bare name means its latest version); at most ``PAGE_BYTES`` of data a page."""
        ...

    async def book(self, book_id: str) -> BookOut | None: ...

    async def books(self, owner_id: str, limit: int, cursor: str | None) -> Page[BookSummary]:
        """The owner's books in creation order, without chapter contents; at most ``PAGE_BYTES`` of
        books (metadata and chapter lists) a page."""
        ...


    async def processor(self, processor_id: str) -> ProcessorOut | None: ...

    async def processors(self, owner_id: str, limit: int, cursor: str | None) -> Page[ProcessorOut]:
        """The owner's processors, oldest first; at most ``PAGE_BYTES`` of configs a page."""
        ...

    async def triggered_processors(self, owner_id: str) -> int:
        """How many processors of the owner have triggers (deleted ones are gone)."""
        ...

    async def job(self, job_id: str) -> JobOut | None: ...

    async def jobs(self, owner_id: str, processor_id: str | None, status: str | None, limit: int,
                   cursor: str | None) -> Page[JobOut]:
        """The owner's jobs, newest first, optionally of one processor and/or in one status; at most
        ``PAGE_BYTES`` of jobs a page."""
        ...

    async def job_ids(self, processor_id: str, statuses: tuple[str, ...]) -> list[str]:
        """A processor's jobs in one of ``statuses``, oldest first."""
        ...

    async def running_job_ids(self, owner_id: str) -> set[str]:
        """A user's running jobs and migration runs, every runner's: the runners' count of what one user
        holds at once (a run holds a slot as a job does). Not reverts: their status says ``reverting``
        from the moment one is asked for, while it still waits in a queue, and counted they would
        hold the user's slots before they run."""
        ...


    async def migration(self, migration_id: str) -> MigrationOut | None: ...

    async def migrations(self, owner_id: str, limit: int, cursor: str | None) -> Page[MigrationOut]:
        """The owner's migration runs, newest first; at most ``PAGE_BYTES`` of runs a page."""
        ...

    async def migration_candidates(self, owner_id: str, schema_ids: list[str], bucket_id: str | None) -> list[str]:
        """The owner's blobs on one of ``schema_ids``, within ``bucket_id`` and its sub-buckets when
        given, oldest first: what a migration run moves."""
        ...

    async def completed_run(self, owner_id: str, from_schema_id: str, schema_id: str, bucket_id: str | None) -> bool:
        """Whether a real run of the owner from one version to the other over the same bucket completed."""
        ...

    async def command_position(self, aggregate_type: str, aggregate_id: str, command_id: str) -> tuple[int, int | None]:
        """The ``commands`` projection's checkpoint, and the position of the aggregate's first event
        with that command id when one at or before it has it (``projections/commands.py``), read together:
        implements ``commands.ports.CommandIndex``."""
        ...


class ProjectionPositions(Protocol):
    """How far each projection has applied the log: what read-your-writes waits on."""

    def position(self, name: str) -> int: ...

    def reached(self, position: int, names: Iterable[str]) -> bool: ...

    async def wait(self, position: int, names: Iterable[str], timeout: float) -> None:
        """Return once every named projection is at ``position`` or later; raise
        ``commands.ports.Unavailable`` when that does not happen within ``timeout``
        or the store is unreachable."""
        ...
