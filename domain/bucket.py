"""Buckets: an owner's tree of folders that blobs are filed in.

The aggregate knows its own parent only. Whether a move makes a cycle depends
on other buckets, so the command handler walks the new parent's ancestors in
the log and hands them in; whether a bucket is empty depends on blobs and
children, which the handler asks a port about (see ``commands.buckets``).
Both checks read other aggregates; ``commands.buckets`` says which races the
log's guard closes and which remain (the log cannot lock several subjects at once).
"""

from __future__ import annotations

from collections.abc import Sequence

from eventsourcing.domain import event

from domain.base import InkAggregate
from domain.errors import NotFound, ensure_storable, invalid
from domain.ids import is_id

MAX_NAME = 200
MAX_TYPE = 64
MAX_DEPTH = 64


def check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise invalid("/name", f"must be a non-blank string of at most {MAX_NAME} characters")
    ensure_storable(name, "/name", "name")
    return name


def check_type(type_: object) -> str:
    if not isinstance(type_, str) or not type_.strip() or len(type_) > MAX_TYPE:
        raise invalid("/type", f"must be a non-blank string of at most {MAX_TYPE} characters")
    ensure_storable(type_, "/type", "type")
    return type_


def check_parent(parent_id: object) -> None:
    """None (the root) or a bucket id: the handler has checked that it is one of the owner's buckets."""
    if parent_id is not None and not is_id(parent_id):
        raise invalid("/parent_id", "must be a bucket id or null")


def check_depth(ancestors: Sequence[str]) -> None:
    """A tree deeper than this is refused: the ancestor walk must stay bounded."""
    if len(ancestors) >= MAX_DEPTH:
        raise invalid("/parent_id", f"buckets nest at most {MAX_DEPTH} levels deep")


class Bucket(InkAggregate):
    TYPE = "bucket"

    @classmethod
    def create(cls, owner_id: str, name: str, type: str, parent_id: str | None, ancestors: Sequence[str] = ()) -> Bucket:
        """``ancestors``: the new parent and its ancestors (empty at the root)."""
        check_name(name)
        check_type(type)
        check_parent(parent_id)
        check_depth(ancestors)
        return cls(owner_id=owner_id, name=name, type=type, parent_id=parent_id)

    @event("Created")
    def __init__(self, owner_id: str, name: str, type: str, parent_id: str | None) -> None:
        self.owner_id = owner_id
        self.name = name
        self.type = type
        self.parent_id = parent_id
        self.deleted = False

    def ensure_live(self) -> None:
        if self.deleted:
            raise NotFound(f"bucket {self.id_str}")

    def update(self, name: str, parent_id: str | None, ancestors: Sequence[str]) -> None:
        """Rename and/or move in one event (a PATCH is one command).

        ``ancestors`` are the ids from ``parent_id`` up to the root, read from
        the log by the handler: this bucket among them means the move would
        hang it under itself.
        """
        self.ensure_live()
        check_name(name)
        check_parent(parent_id)
        if parent_id is not None and (parent_id == self.id_str or self.id_str in ancestors):
            raise invalid("/parent_id", "a bucket cannot move under itself or one of its descendants")
        check_depth(ancestors)
        self._updated(name=name, parent_id=parent_id)

    @event("Updated")
    def _updated(self, name: str, parent_id: str | None) -> None:
        self.name = name
        self.parent_id = parent_id

    def delete(self) -> None:
        self.ensure_live()
        self._deleted()

    @event("Deleted")
    def _deleted(self) -> None:
        self.deleted = True
