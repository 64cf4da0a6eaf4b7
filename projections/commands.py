"""Command index: the event each keyed command landed as, by command id and aggregate.

A refused retry of a keyed command (its ``If-Match`` made stale by its own first
attempt, past the log's duplicate window) is answered with what its first attempt
did, which means finding that attempt's event. Without this index the only way was
to read the aggregate's whole history, which its owner can make long: one user's
refused retries kept a core busy. With it, the repository reads one row and the
events after this projection's checkpoint (``commands/repository.py``
``Repository.replayed``).

Only command ids that can come again are kept (``domain.ids.may_come_again``):
those derived from an ``Idempotency-Key`` (``idem-``), a bulk retry (``bulk-``),
a migration run's writes (``mig-``), a cancellation (``cancel-``). A command id
made up for one request is a UUID (``domain.ids.new_id``), never sent again, and
never looked up here. Nor is a creation under a made-up aggregate id (most
events of a studio: a blob, a bucket, a book created): only a command on an
existing aggregate (``Repository.execute`` with its id) is refused and looked
up, and a retried creation makes up another id, so it never is.
"""

from __future__ import annotations

from typing import ClassVar

from domain.ids import is_made_up, may_come_again
from domain.recorded import Recorded
from projections.changes import Change, Upsert

NAME = "commands"
TABLE = "command_events"


class CommandsProjection:
    name: ClassVar[str] = NAME
    tables: ClassVar[tuple[str, ...]] = (TABLE,)

    def changes(self, record: Recorded) -> list[Change]:
        if not may_come_again(record.command_id):
            return []
        if record.version == 1 and is_made_up(record.aggregate_id):
            # created under an id made up for it: a retry of that creation makes up another id, so no
            # command is ever refused on this aggregate and searched for with this command id
            return []
        # past the duplicate window a command can land twice on one aggregate: a row per landing, and
        # the first is the answer (what the search of the log finds first)
        return [Upsert(TABLE, ("command_id", "aggregate_id", "position"), {
            "command_id": record.command_id,
            "aggregate_id": record.aggregate_id,
            "aggregate_type": record.aggregate_type,
            "position": record.position,
        })]
