"""The schema registry's aggregate: one per schema NAME.

The aggregate id is a hash of the name, so the log's expected-sequence-0 check
makes "the first registrant owns the name" exact without any index. Versions
are semantic versions; "latest" is the highest by semver precedence, not the
most recently registered. Two versions that differ only in build metadata have
the same precedence, so the second one is refused like an exact duplicate:
otherwise "latest" would be ambiguous.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import event

from domain.base import InkAggregate
from domain.errors import Conflict, Forbidden, ensure_size, ensure_storable, invalid
from domain.ids import hashed_id
from domain.limits import MAX_INT64, Limits, encoded_size

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\Z")

# semver.org's suggested regular expression (numbered groups), with ASCII digits only: Python's ``\d`` also
# matches "١" and the like, which int() reads, so "3١.0.0" would have been stored as version 31.0.0.
_SEMVER_RE = re.compile(
    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-((?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?\Z"
)
MAX_VERSION_LENGTH = 128
MAX_SCHEMA_ID_LENGTH = 64 + 1 + MAX_VERSION_LENGTH
"""``name@version`` at its longest (a name is at most 64 characters)."""


@dataclass(frozen=True, slots=True)
class SemVer:
    """A parsed semantic version; ordering is semver precedence (build ignored)."""

    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()
    build: str = ""

    @classmethod
    def parse(cls, text: str) -> SemVer:
        match = _SEMVER_RE.match(text) if isinstance(text, str) and len(text) <= MAX_VERSION_LENGTH else None
        if match is None:
            raise ValueError(f"{text!r} is not a semantic version (MAJOR.MINOR.PATCH[-pre][+build])")
        major, minor, patch, pre, build = match.groups()
        return cls(int(major), int(minor), int(patch), tuple(pre.split(".")) if pre else (), build or "")

    def _key(self) -> tuple[Any, ...]:
        # A release outranks its pre-releases; numeric identifiers rank below
        # alphanumeric ones and compare numerically; a longer list of equal
        # leading identifiers ranks higher (tuple comparison does that).
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre)

    def __lt__(self, other: SemVer) -> bool:
        return self._key() < other._key()

    def __le__(self, other: SemVer) -> bool:
        return self._key() <= other._key()

    def __gt__(self, other: SemVer) -> bool:
        return self._key() > other._key()

    def __ge__(self, other: SemVer) -> bool:
        return self._key() >= other._key()

    def same_precedence(self, other: SemVer) -> bool:
        return self._key() == other._key()

    def pre_sort_key(self) -> str:
        """A string whose byte order (COLLATE "C") is the pre-release precedence,
        so SQL can order versions by (major, minor, patch, pre_sort_key).

        A release is "~" (above every pre-release); a numeric identifier is
        "0" + its length in 3 digits + digits (no leading zeros in semver, so
        length then digits is numeric order); an alphanumeric one is "1" + it;
        identifiers are joined with "!", which sorts below every identifier
        character so that a shorter list of equal identifiers sorts first.
        """
        if not self.pre:
            return "~"
        parts = [f"0{len(p):03d}{p}" if p.isdigit() else f"1{p}" for p in self.pre]
        return "!".join(parts)

    def sort_columns(self) -> tuple[int, int, int, str]:
        """(major, minor, patch, pre) for the read model's ``bigint`` columns.

        ``check_version`` refuses parts beyond ``MAX_INT64``; a version the log
        held before that check existed is clamped, so that it still projects
        (it sorts with the highest) instead of halting the projection.
        """
        return (min(self.major, MAX_INT64), min(self.minor, MAX_INT64), min(self.patch, MAX_INT64),
                self.pre_sort_key())

    def __str__(self) -> str:
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.pre:
            text += "-" + ".".join(self.pre)
        if self.build:
            text += "+" + self.build
        return text


def check_name(name: object) -> str:
    """The name, or a validation failure on ``/name``: it becomes part of ids and must be subject-safe."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise invalid("/name", "must be 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit")
    return name


def check_version(version: object, path: str = "/version") -> SemVer:
    """A semantic version whose MAJOR, MINOR and PATCH each fit a 64-bit column (at most ``MAX_INT64``)."""
    try:
        semver = SemVer.parse(version)  # type: ignore[arg-type]
    except ValueError:
        raise invalid(path, "must be a semantic version such as 1.0.0 or 2.1.0-beta.1") from None
    if max(semver.major, semver.minor, semver.patch) > MAX_INT64:
        raise invalid(path, f"MAJOR, MINOR and PATCH must each be at most {MAX_INT64}")
    return semver


def parse_schema_id(schema_id: str) -> tuple[str, str | None]:
    """``name@version`` -> (name, version); a bare ``name`` -> (name, None): its latest.

    Raises ValueError when the text cannot name any schema.
    """
    if not isinstance(schema_id, str):
        raise ValueError("a schema id is a string")
    if len(schema_id) > MAX_SCHEMA_ID_LENGTH:  # before any pattern: 500 KB of it took 78 ms of the loop
        raise ValueError(f"a schema id is at most {MAX_SCHEMA_ID_LENGTH} characters")
    name, sep, version = schema_id.partition("@")
    if not NAME_RE.match(name) or (sep and not _SEMVER_RE.match(version)):
        raise ValueError(f"{schema_id!r} is not a schema id")
    return name, (version if sep else None)


def schema_id(name: str, version: str) -> str:
    return f"{name}@{version}"


def schema_aggregate_id(name: str) -> str:
    return str(hashed_id("schema", name))


def check_migration(migration: object) -> dict[str, str] | None:
    """The migration's shape (not whether it compiles: that needs the sandbox)."""
    if migration is None:
        return None
    if not isinstance(migration, dict):
        raise invalid("/migration", "must be an object with from_version and transform")
    unknown = set(migration) - {"from_version", "transform"}
    if unknown:
        raise invalid("/migration", f"unknown fields: {', '.join(sorted(str(k) for k in unknown))}")
    check_version(migration.get("from_version"), "/migration/from_version")
    transform = migration.get("transform")
    if not isinstance(transform, str) or not transform.strip():
        raise invalid("/migration/transform", "must be JavaScript source defining function migrate(data)")
    return {"from_version": migration["from_version"], "transform": transform}


def check_document(schema: object, migration: dict[str, str] | None, limits: Limits) -> int:
    """A JSON object the log can hold, within ``limits.schema_bytes`` together with its (checked)
    migration; what it weighs."""
    if not isinstance(schema, dict):
        raise invalid("/schema", "must be a JSON Schema object")
    ensure_storable({"schema": schema, "migration": migration}, "", "the schema")
    return ensure_size({"schema": schema, "migration": migration}, "/schema", "the schema with its migration",
                       limits.schema_bytes)


@dataclass(slots=True)
class SchemaVersion:
    version: str
    schema: dict[str, Any]
    migration: dict[str, str] | None
    created_at: datetime | None = field(default=None)


class Schema(InkAggregate):
    TYPE = "schema"

    class Event(InkAggregate.Event):
        """Stamps the version an event added with that event's time: an
        ``@event`` body runs before the aggregate's ``modified_on`` moves on,
        and must not take the time as an argument."""

        def apply(self, aggregate: Any) -> None:
            super().apply(aggregate)
            for entry in reversed(aggregate.versions.values()):  # only the newest can be unstamped:
                if entry.created_at is not None:  # every version was looked at once per event before,
                    break  # which made a fold of n versions n squared steps
                entry.created_at = self.timestamp

    @classmethod
    def create_id(cls, name: str, *args: Any, **kwargs: Any) -> UUID:  # type: ignore[override]
        return hashed_id("schema", name)

    @classmethod
    def register(
        cls,
        name: str,
        owner_id: str,
        version: str,
        schema: dict[str, Any],
        migration: dict[str, str] | None,
        limits: Limits = Limits(),
    ) -> Schema:
        """The first version of a new name. A migration needs an earlier version, which a new name lacks."""
        check_name(name)
        check_version(version)
        check_document(schema, None, limits)
        if check_migration(migration) is not None:
            raise invalid("/migration/from_version", f"unknown version {migration['from_version']} of {name}")  # type: ignore[index]
        return cls(name=name, owner_id=owner_id, version=version, schema=schema)

    @event("Created")
    def __init__(self, name: str, owner_id: str, version: str, schema: dict[str, Any]) -> None:
        self.name = name
        self.owner_id = owner_id
        self.versions: dict[str, SchemaVersion] = {version: SchemaVersion(version, schema, None, self.created_on)}
        self._history_bytes: int | None = None  # see history_bytes()

    def add_version(
        self,
        actor: str | None,
        version: str,
        schema: dict[str, Any],
        migration: dict[str, str] | None,
        limits: Limits = Limits(),
    ) -> None:
        migration = check_migration(migration)
        size = check_document(schema, migration, limits)
        total = self.check_room(actor, version, size, limits)
        if migration is not None and migration["from_version"] not in self.versions:
            raise invalid("/migration/from_version", f"unknown version {migration['from_version']} of {self.name}")
        self._version_added(
            name=self.name, owner_id=self.owner_id, version=version, schema=schema, migration=migration
        )
        self._history_bytes = total

    def check_room(self, actor: str | None, version: str, size: int, limits: Limits = Limits()) -> int:
        """Whether ``actor`` may add ``version`` weighing ``size`` bytes: the owner (403), a new version
        (409), and room for it (422, at most ``Limits.schema_versions`` versions and
        ``schema_history_bytes`` in all); what the versions would weigh with it. Asked by the handler too, of the schema it has read, before the
        costly checks of the document (the validator, the sandbox): a refusal costs nothing more."""
        if actor is None or actor != self.owner_id:
            raise Forbidden(f"the schema name {self.name} belongs to another user")
        semver = check_version(version)
        for existing in self.versions:
            if SemVer.parse(existing).same_precedence(semver):
                raise Conflict(f"schema version exists: {self.name}@{existing}")
        if len(self.versions) >= limits.schema_versions:
            raise invalid("", f"a schema has at most {limits.schema_versions} versions: register a new name")
        total = self.history_bytes() + size
        if total > limits.schema_history_bytes:
            raise invalid("/schema", f"the schema's versions would take {total} bytes as JSON, over the limit of "
                                     f"{limits.schema_history_bytes} bytes: register a new name")
        return total

    def history_bytes(self) -> int:
        """What the versions weigh against ``Limits.schema_history_bytes`` (each schema with its migration,
        as JSON): summed when first asked of a loaded schema, then kept by ``add_version``. Not in the
        events: a fold would encode every version again."""
        if self._history_bytes is None:
            self._history_bytes = sum(encoded_size({"schema": v.schema, "migration": v.migration})
                                      for v in self.versions.values())
        return self._history_bytes

    @event("VersionAdded")
    def _version_added(
        self, name: str, owner_id: str, version: str, schema: dict[str, Any], migration: dict[str, str] | None
    ) -> None:
        # name and owner_id repeat the aggregate's so that a projector can
        # write the version's row from this event alone.
        self.versions[version] = SchemaVersion(version, schema, migration)
        self._history_bytes = None

    def latest(self) -> SchemaVersion:
        return self.versions[max(self.versions, key=SemVer.parse)]

    def resolve(self, version: str | None) -> SchemaVersion | None:
        """A version by its text, or the latest for None."""
        return self.latest() if version is None else self.versions.get(version)

    def migration_path(self, from_version: str, to_version: str) -> list[SchemaVersion] | None:
        """The versions whose transforms lead from ``from_version`` to ``to_version``, in order.

        Each version's migration is an edge from its ``from_version`` to it;
        the shortest path wins, ties broken towards lower versions so that the
        answer is deterministic. None when no path exists.
        """
        if from_version not in self.versions or to_version not in self.versions:
            return None
        edges: dict[str, list[str]] = {}
        for entry in sorted(self.versions.values(), key=lambda v: SemVer.parse(v.version)):
            if entry.migration is not None:
                edges.setdefault(entry.migration["from_version"], []).append(entry.version)
        previous: dict[str, str] = {from_version: from_version}
        frontier = [from_version]
        while frontier and to_version not in previous:
            following: list[str] = []
            for node in frontier:
                for nxt in edges.get(node, []):
                    if nxt not in previous:
                        previous[nxt] = node
                        following.append(nxt)
            frontier = following
        if to_version not in previous or from_version == to_version:
            return None
        path: list[SchemaVersion] = []
        node = to_version
        while node != from_version:
            path.append(self.versions[node])
            node = previous[node]
        return list(reversed(path))
