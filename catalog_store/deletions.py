"""Bulk deletion of one store's products: the per-entry plan and its single transaction."""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg

from .deadline import commit_point, nothing_committed
from .errors import (
    AnsweredBefore,
    IdempotencyInProgress,
    IdempotencyMismatch,
    RateLimited,
    Replayed,
)
from .idempotency import Idempotency, StoredResponse, claim_key, record_response
from .pool import Pool, connection

__all__ = [
    "DeletedProduct",
    "DeletionOutcome",
    "DeletionPlan",
    "DeletionPreview",
    "EntryFailure",
    "Nonce",
    "Problem",
    "RateLimit",
    "accept_nonce",
    "delete_products",
    "plan_deletion",
    "preview_deletion",
    "purge_expired_nonces",
    "spend_nonce",
]

T = TypeVar("T")

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class Problem(enum.Enum):
    """Why one entry of a request deleted nothing."""

    ID_NOT_FOUND = "id_not_found"
    EXTERNAL_ID_NOT_FOUND = "external_id_not_found"
    REPEATED = "repeated"
    INVALID_ID = "invalid_id"


@dataclass(frozen=True, slots=True)
class DeletedProduct:
    id: uuid.UUID
    external_id: str | None


@dataclass(frozen=True, slots=True)
class EntryFailure:
    problem: Problem
    field: str  # "ids" or "externalIds"
    row_index: int
    value: str  # the entry exactly as sent


@dataclass(frozen=True, slots=True)
class DeletionOutcome:
    total: int
    deleted: list[DeletedProduct]  # in request order
    failures: list[EntryFailure]  # in request order: ids first, then externalIds


@dataclass(frozen=True, slots=True)
class Nonce:
    """A request's replay record: its partner, its signature and when it can be forgotten."""

    partner_id: int
    signature: bytes
    expires_at_ms: int


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``requests`` accepted requests per partner in any ``window_seconds``."""

    requests: int
    window_seconds: int


@dataclass(frozen=True, slots=True)
class DeletionPlan:
    """The entries of one request, checked and de-duplicated before touching the database."""

    ids: Sequence[str]
    external_ids: Sequence[str]
    target_ids: list[uuid.UUID]
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
            failures.append(EntryFailure(problem, "ids", index, raw))
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
            failures.append(EntryFailure(problem, "externalIds", index, raw))
        return DeletionOutcome(total=self.total, deleted=deleted, failures=failures)


def plan_deletion(ids: Sequence[str], external_ids: Sequence[str]) -> DeletionPlan:
    """Check each entry: ids must be canonical UUIDs (any case); repeats are flagged."""
    target_ids: list[uuid.UUID] = []
    seen_ids: set[uuid.UUID] = set()
    id_failures: dict[int, Problem] = {}
    for index, raw in enumerate(ids):
        if not _UUID.fullmatch(raw):
            id_failures[index] = Problem.INVALID_ID
            continue
        value = uuid.UUID(raw)
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


_INSERT_NONCE = """
    INSERT INTO replay_nonces (partner_id, signature, expires_at)
    VALUES (%(partner)s, %(signature)s, to_timestamp(%(expires)s / 1000.0))
    ON CONFLICT DO NOTHING"""
# The rate limit rides on the replay record that every accepted request writes anyway: one
# statement counts the partner's accepted requests of the window (never more than the limit
# of them, from the partial (partner_id, accepted_at) index of the records that count: a
# refused request's record does not) and inserts the new record only when fewer than the limit
# are there. No extra round trip, and no row that concurrent requests of
# one partner would queue on.
_INSERT_NONCE_LIMITED = """
    INSERT INTO replay_nonces (partner_id, signature, expires_at)
    SELECT %(partner)s, %(signature)s, to_timestamp(%(expires)s / 1000.0)
     WHERE (SELECT count(*) FROM (
              SELECT 1 FROM replay_nonces
               WHERE partner_id = %(partner)s AND counts
                 AND accepted_at > statement_timestamp() - make_interval(secs => %(window)s)
               LIMIT %(limit)s) recent) < %(limit)s
    ON CONFLICT DO NOTHING"""
# The delete archives what it deletes in the same statement: the products' rows and, read from
# the statement's snapshot (before the cascade removes them), their variants' rows, tagged with
# the request, the batch (NULL for a synchronous request) and the partner.
_ARCHIVE_DELETED = """
    INSERT INTO archived_products
        (store_id, request_id, id, external_id, batch_id, partner_id, product, variants)
    SELECT d.store_id, %(request)s, d.id, d.external_id, %(batch)s::uuid, %(partner)s,
           to_jsonb(d),
           COALESCE((SELECT jsonb_agg(to_jsonb(v) ORDER BY v.id) FROM product_variants v
                      WHERE v.store_id = d.store_id AND v.product_id = d.id), '[]'::jsonb)
      FROM deleted d"""
DELETE_PRODUCTS = (
    """
WITH deleted AS (
    DELETE FROM products WHERE store_id = %(store)s
       AND (id = ANY(%(ids)s::uuid[]) OR external_id = ANY(%(external_ids)s::text[]))
    RETURNING *
), archived AS ("""
    + _ARCHIVE_DELETED
    + """
    -- Deleted again by the same batch after a restore: the archive keeps the latest deletion.
    ON CONFLICT (store_id, request_id, id) DO UPDATE SET external_id = excluded.external_id,
       deleted_at = excluded.deleted_at, product = excluded.product,
       variants = excluded.variants, restored_at = NULL
)
SELECT id, external_id FROM deleted
"""
)
_PREVIEW = (
    "SELECT p.id, p.external_id, (SELECT count(*) FROM product_variants v"
    " WHERE v.store_id = p.store_id AND v.product_id = p.id)"
    " FROM products p WHERE p.store_id = %(store)s"
    " AND (p.id = ANY(%(ids)s::uuid[]) OR p.external_id = ANY(%(external_ids)s::text[]))"
)
_AUDIT = (
    "INSERT INTO deletion_audit"
    " (request_id, partner_id, store_id, total, succeeded, failed, deleted_ids)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s)"
)
# A request without an idempotency key, whole, in one statement, so one round trip: the replay
# record, the deletes with their archive (only when the record is new) and the audit row (only
# then too) commit together or not at all. A refused request (a replayed signature, or a
# partner over its rate limit, counted as _INSERT_NONCE_LIMITED does) inserts nothing, so
# nothing is deleted, archived or audited, and no row comes back. Every deleted row counts once
# as a success (resolve() attributes each row to exactly one entry), so the audit's counts are
# computed here, from the rows deleted. The archive is DELETE_PRODUCTS's, for one request.
_NONCE_CTE = "\nWITH nonce AS (" + _INSERT_NONCE + "\n    RETURNING 1\n)"
_NONCE_LIMITED_CTE = "\nWITH nonce AS (" + _INSERT_NONCE_LIMITED + "\n    RETURNING 1\n)"
_DELETE_AUDITED_REST = (
    """, deleted AS (
    DELETE FROM products
     WHERE store_id = %(store)s
       AND (id = ANY(%(ids)s::uuid[]) OR external_id = ANY(%(external_ids)s::text[]))
       AND EXISTS (SELECT FROM nonce)
    RETURNING *
), archived AS ("""
    + _ARCHIVE_DELETED
    + """
), audit AS (
    INSERT INTO deletion_audit
        (request_id, partner_id, store_id, total, succeeded, failed, deleted_ids)
    SELECT %(request)s, %(partner)s, %(store)s, %(total)s, d.n, %(total)s - d.n, d.ids
      FROM nonce,
           (SELECT count(*)::int AS n, coalesce(array_agg(id ORDER BY id), '{}') AS ids
              FROM deleted) AS d
)
SELECT true, NULL::uuid, NULL::text FROM nonce
UNION ALL
SELECT false, id, external_id FROM deleted
"""
)
_DELETE_AUDITED = _NONCE_CTE + _DELETE_AUDITED_REST
_DELETE_AUDITED_LIMITED = _NONCE_LIMITED_CTE + _DELETE_AUDITED_REST


# A refused request's record: it spends the signature but does not count toward the rate.
_SPEND_NONCE = """
    INSERT INTO replay_nonces (partner_id, signature, expires_at, counts)
    VALUES (%(partner)s, %(signature)s, to_timestamp(%(expires)s / 1000.0), false)
    ON CONFLICT DO NOTHING"""
# What the store refuses after the signature verified; the request is spent all the same.
_REFUSALS = (RateLimited, IdempotencyMismatch, IdempotencyInProgress)


# Only for a refused request: was it a replay, or over the limit, and until when.
_WHY_REFUSED = """
SELECT EXISTS (SELECT 1 FROM replay_nonces
                WHERE partner_id = %(partner)s AND signature = %(signature)s),
       (SELECT ceil(extract(epoch FROM min(accepted_at) + make_interval(secs => %(window)s)
                                       - statement_timestamp()))::int
          FROM (SELECT accepted_at FROM replay_nonces
                 WHERE partner_id = %(partner)s AND counts
                   AND accepted_at > statement_timestamp() - make_interval(secs => %(window)s)
                 ORDER BY accepted_at DESC LIMIT %(limit)s) recent)
"""


async def insert_nonce(
    conn: psycopg.AsyncConnection[Any], nonce: Nonce, rate: RateLimit | None = None
) -> None:
    """Record the nonce; :class:`Replayed` if it was, :class:`RateLimited` if the partner is
    over ``rate`` (counted in the same statement). Either way nothing is recorded."""
    params = _nonce_params(nonce, rate)
    cur = await conn.execute(_INSERT_NONCE if rate is None else _INSERT_NONCE_LIMITED, params)
    if cur.rowcount != 1:
        nothing_committed(conn)
        raise await _refusal(conn, params, rate)


def _nonce_params(nonce: Nonce, rate: RateLimit | None) -> dict[str, Any]:
    params: dict[str, Any] = {
        "partner": nonce.partner_id,
        "signature": nonce.signature,
        "expires": nonce.expires_at_ms,
    }
    if rate is not None:
        params.update(window=rate.window_seconds, limit=rate.requests)
    return params


async def _refusal(
    conn: psycopg.AsyncConnection[Any], params: dict[str, Any], rate: RateLimit | None
) -> Replayed | RateLimited:
    """Why a replay record was not written: without a rate limit only a replay can refuse it;
    with one, one more statement (asked only now) says which, and until when."""
    if rate is None:
        return Replayed("signature already accepted")
    cur = await conn.execute(_WHY_REFUSED, params)
    row = await cur.fetchone()
    assert row is not None
    if row[0]:
        return Replayed("signature already accepted")
    return RateLimited(
        "requests", limit=rate.requests, retry_after=max(1, row[1] or rate.window_seconds)
    )


async def begin_request(
    conn: psycopg.AsyncConnection[Any],
    nonce: Nonce,
    store_id: int,
    idempotency: Idempotency[Any] | None,
    rate: RateLimit | None = None,
) -> StoredResponse | None:
    """Inside the request's transaction: record the nonce, then claim the idempotency key;
    return the key's earlier answer, if any (then the request must do nothing else)."""
    await insert_nonce(conn, nonce, rate)
    if idempotency is None:
        return None
    return await claim_key(conn, partner_id=nonce.partner_id, store_id=store_id, key=idempotency)


async def end_request(
    conn: psycopg.AsyncConnection[Any],
    nonce: Nonce,
    store_id: int,
    idempotency: Idempotency[T] | None,
    result: T,
) -> None:
    """Inside the request's transaction, after its work: keep its answer under its key."""
    if idempotency is not None:
        await record_response(
            conn,
            partner_id=nonce.partner_id,
            store_id=store_id,
            key=idempotency,
            response=idempotency.respond(result),
        )


async def in_request_transaction(
    pool: Pool,
    nonce: Nonce,
    store_id: int,
    idempotency: Idempotency[T] | None,
    rate: RateLimit | None,
    work: Callable[[psycopg.AsyncConnection[Any]], Awaitable[T]],
) -> T:
    """One request's transaction: its nonce, its idempotency key's claim, ``work`` and the
    answer kept under the key. Raises :class:`AnsweredBefore` (only the nonce was recorded,
    ``work`` never ran) when the key already has an answer. A refusal (rate limit, the key's
    other body or first request still running) rolls it all back and then spends the nonce
    without counting it (:func:`spend_nonce`)."""
    try:
        async with connection(pool) as conn:
            async with conn.transaction():
                before = await begin_request(conn, nonce, store_id, idempotency, rate)
                if before is None:
                    result = await work(conn)
                    await end_request(conn, nonce, store_id, idempotency, result)
                commit_point(conn)  # the block's end sends COMMIT
    except _REFUSALS:
        await spend_nonce(pool, nonce)
        raise
    if before is not None:
        assert idempotency is not None
        raise AnsweredBefore(idempotency.key, before)
    return result


async def delete_products(
    pool: Pool,
    *,
    store_id: int,
    nonce: Nonce,
    request_id: uuid.UUID,
    plan: DeletionPlan,
    idempotency: Idempotency[DeletionOutcome] | None = None,
    rate: RateLimit | None = None,
) -> DeletionOutcome:
    """Record the nonce, delete and archive, audit: one transaction, any batch size. Without
    an idempotency key it is one statement (one round trip); with one, it is three statements
    with the key's lock and lookup before the delete and its answer after.

    Raises :class:`Replayed` (nothing changed) when the nonce was already recorded,
    :class:`RateLimited` when the partner is over ``rate``, and the errors of
    :func:`claim_key`; :class:`AnsweredBefore` when the key already has an answer (only the
    nonce was recorded). Two concurrent requests naming one product serialise on its
    row: only one gets it back.
    """
    if idempotency is None:
        return await _delete_in_one_statement(pool, store_id, nonce, request_id, plan, rate)

    async def work(conn: psycopg.AsyncConnection[Any]) -> DeletionOutcome:
        cur = await conn.execute(
            DELETE_PRODUCTS,
            {
                "store": store_id,
                "ids": plan.target_ids,
                "external_ids": plan.target_external_ids,
                "request": request_id,
                "batch": None,
                "partner": nonce.partner_id,
            },
        )
        rows = [DeletedProduct(row[0], row[1]) for row in await cur.fetchall()]
        outcome = plan.resolve(rows)
        await conn.execute(
            _AUDIT,
            (
                request_id,
                nonce.partner_id,
                store_id,
                outcome.total,
                len(outcome.deleted),
                len(outcome.failures),
                sorted(row.id for row in rows),  # in id order, as the one-statement path
            ),
        )
        return outcome

    return await in_request_transaction(pool, nonce, store_id, idempotency, rate, work)


async def _delete_in_one_statement(
    pool: Pool,
    store_id: int,
    nonce: Nonce,
    request_id: uuid.UUID,
    plan: DeletionPlan,
    rate: RateLimit | None,
) -> DeletionOutcome:
    params = _nonce_params(nonce, rate)
    params.update(
        store=store_id,
        ids=plan.target_ids,
        external_ids=plan.target_external_ids,
        request=request_id,
        batch=None,
        total=plan.total,
    )
    async with connection(pool) as conn:
        commit_point(conn)  # one statement in autocommit: it commits as it ends
        cur = await conn.execute(
            _DELETE_AUDITED if rate is None else _DELETE_AUDITED_LIMITED, params
        )
        result = await cur.fetchall()
        refusal = None
        if not result:
            nothing_committed(conn)
            refusal = await _refusal(conn, params, rate)
    if refusal is not None:
        if isinstance(refusal, RateLimited):
            await spend_nonce(pool, nonce)
        raise refusal
    rows = [DeletedProduct(row[1], row[2]) for row in result if not row[0]]
    return plan.resolve(rows)


@dataclass(frozen=True, slots=True)
class DeletionPreview:
    """What a request would delete: its report, and the variants of each product it names."""

    outcome: DeletionOutcome
    variants: dict[uuid.UUID, int]


async def preview_deletion(
    pool: Pool,
    *,
    store_id: int,
    nonce: Nonce,
    plan: DeletionPlan,
    idempotency: Idempotency[DeletionPreview] | None = None,
    rate: RateLimit | None = None,
) -> DeletionPreview:
    """A dry run: the report that :func:`delete_products` would give now, with variant counts.

    Records the nonce (and the idempotency key's answer) and nothing else: no delete, no
    archive, no audit. Raises as :func:`delete_products` does.
    """

    async def work(conn: psycopg.AsyncConnection[Any]) -> DeletionPreview:
        cur = await conn.execute(
            _PREVIEW,
            {"store": store_id, "ids": plan.target_ids, "external_ids": plan.target_external_ids},
        )
        found = await cur.fetchall()
        return DeletionPreview(
            outcome=plan.resolve([DeletedProduct(row[0], row[1]) for row in found]),
            variants={row[0]: int(row[2]) for row in found},
        )

    return await in_request_transaction(pool, nonce, store_id, idempotency, rate, work)


async def accept_nonce(pool: Pool, nonce: Nonce, rate: RateLimit | None = None) -> None:
    """Record a nonce on its own (requests that change nothing else); raises :class:`Replayed`
    or :class:`RateLimited` (then the nonce is spent without counting)."""
    try:
        async with connection(pool) as conn:
            commit_point(conn)  # autocommit: the replay record commits with its statement
            await insert_nonce(conn, nonce, rate)
    except RateLimited:
        await spend_nonce(pool, nonce)
        raise


async def spend_nonce(pool: Pool, nonce: Nonce) -> None:
    """Record the nonce of a refused request, so that it cannot be sent again, without counting
    it toward the partner's request rate; raises :class:`Replayed` when it was recorded."""
    async with connection(pool) as conn:
        commit_point(conn)  # autocommit: the replay record commits with its statement
        cur = await conn.execute(_SPEND_NONCE, _nonce_params(nonce, None))
        if cur.rowcount != 1:
            nothing_committed(conn)
            raise Replayed("signature already accepted")


async def purge_expired_nonces(pool: Pool, *, now_ms: int) -> int:
    """Delete replay records that expired before ``now_ms``, the caller's clock (the one that
    checks the timestamp window, not the database's); return how many."""
    async with connection(pool) as conn:
        cur = await conn.execute(
            "DELETE FROM replay_nonces WHERE expires_at < to_timestamp(%s / 1000.0)", (now_ms,)
        )
        return cur.rowcount
