"""The plan of a deletion request's entries: which are invalid or repeated, and what to look up
by id or by external id, before the database is touched."""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "ID_PATTERN",
    "DeletedProduct",
    "DeletionOutcome",
    "DeletionPlan",
    "EntryFailure",
    "EntryKind",
    "Problem",
    "plan_deletion",
]

#: What an entry of ``ids`` must be: a canonical UUID, in any case. The same text serves
#: Python's ``re`` and PostgreSQL's ``~`` (the batch path checks its entries in SQL).
ID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_UUID = re.compile(ID_PATTERN)


class Problem(enum.Enum):
    """Why one entry of a request deleted nothing."""

    ID_NOT_FOUND = "id_not_found"
    EXTERNAL_ID_NOT_FOUND = "external_id_not_found"
    REPEATED = "repeated"
    INVALID_ID = "invalid_id"


class EntryKind(enum.Enum):
    """How an entry names its product: by id or by external id. The value is the one stored in
    ``deletion_batch_entries.field``; how a partner spells the kind is the gateway's business."""

    ID = 0
    EXTERNAL_ID = 1


@dataclass(frozen=True, slots=True)
class DeletedProduct:
    id: str  # as PostgreSQL writes a uuid: lower case, with hyphens
    external_id: str | None


@dataclass(frozen=True, slots=True)
class EntryFailure:
    problem: Problem
    kind: EntryKind
    row_index: int
    value: str  # the entry exactly as sent


@dataclass(frozen=True, slots=True)
class DeletionOutcome:
    total: int
    deleted: list[DeletedProduct]  # in request order
    failures: list[EntryFailure]  # in request order: ids first, then external ids


@dataclass(frozen=True, slots=True)
class DeletionPlan:
    """The entries of one request, checked and de-duplicated before touching the database."""

    ids: Sequence[str]
    external_ids: Sequence[str]
    #: The valid ids, each once, in lower case: PostgreSQL's text of the uuid (``id::text``),
    #: so that the rows it returns are matched by their text, never parsed into ``uuid.UUID``.
    target_ids: list[str]
    target_external_ids: list[str]
    id_failures: dict[int, Problem]
    external_id_repeats: frozenset[int]

    @property
    def total(self) -> int:
        return len(self.ids) + len(self.external_ids)

    def resolve(self, rows: Sequence[DeletedProduct]) -> DeletionOutcome:
        """Attribute each deleted row to the first entry that named it."""
        by_id = {row.id: row for row in rows}
        by_external_id = {row.external_id: row for row in rows if row.external_id is not None}
        named_by_id = set(self.target_ids)
        deleted: list[DeletedProduct] = []
        failures: list[EntryFailure] = []
        targets = iter(self.target_ids)
        for index, raw in enumerate(self.ids):
            problem = self.id_failures.get(index)
            if problem is None:
                row = by_id.get(next(targets))
                if row is not None:
                    deleted.append(row)
                    continue
                problem = Problem.ID_NOT_FOUND
            failures.append(EntryFailure(problem, EntryKind.ID, index, raw))
        for index, raw in enumerate(self.external_ids):
            if index in self.external_id_repeats:
                problem = Problem.REPEATED
            else:
                row = by_external_id.get(raw)
                if row is None:
                    problem = Problem.EXTERNAL_ID_NOT_FOUND
                elif row.id in named_by_id:
                    problem = Problem.REPEATED  # the same product, named earlier by its id
                else:
                    deleted.append(row)
                    continue
            failures.append(EntryFailure(problem, EntryKind.EXTERNAL_ID, index, raw))
        return DeletionOutcome(total=self.total, deleted=deleted, failures=failures)


def plan_deletion(ids: Sequence[str], external_ids: Sequence[str]) -> DeletionPlan:
    """Check each entry: ids must be canonical UUIDs (any case); repeats are flagged. Ids stay
    text from the body to the answer: a canonical UUID in lower case is the text PostgreSQL
    gives back for it, which is also the answer's (a ``uuid.UUID`` per entry, parsed, hashed
    and written back, cost about 5 µs an entry)."""
    target_ids: list[str] = []
    seen_ids: set[str] = set()
    id_failures: dict[int, Problem] = {}
    for index, raw in enumerate(ids):
        if not _UUID.fullmatch(raw):
            id_failures[index] = Problem.INVALID_ID
            continue
        value = raw.lower()
        if value in seen_ids:
            id_failures[index] = Problem.REPEATED
            continue
        seen_ids.add(value)
        target_ids.append(value)
    target_external_ids: list[str] = []
    seen_external: set[str] = set()
    repeats: set[int] = set()
    for index, raw in enumerate(external_ids):
        if raw in seen_external:
            repeats.add(index)
            continue
        seen_external.add(raw)
        target_external_ids.append(raw)
    return DeletionPlan(
        ids=ids,
        external_ids=external_ids,
        target_ids=target_ids,
        target_external_ids=target_external_ids,
        id_failures=id_failures,
        external_id_repeats=frozenset(repeats),
    )
