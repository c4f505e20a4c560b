"""Bulk deletion of one store's products in a request's transaction, and its dry run (the
preview). Each statement is written out whole, as it is sent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg.errors

from .counted import DELETE_AUDITED_COUNTED, DELETE_PRODUCTS_COUNTED, PREVIEW_COUNTED
from .deadline import nothing_committed
from .errors import Replayed
from .plan import DeletedProduct, DeletionOutcome, DeletionPlan
from .replay import (
    STEP_REFUSED,
    RateLimit,
    execute_counted,
    nonce_params,
    not_counted,
    over_the_limit,
)
from .request_transaction import RequestTransaction

__all__ = [
    "DELETE_AUDITED",
    "DELETE_PRODUCTS",
    "DeletionPreview",
    "delete_products",
    "preview_deletion",
]

# The delete leaves a tombstone (docs/safety-net.md): the product's row is marked deleted, by
# whom, in which request and batch (NULL for a synchronous request), and its variants stay in
# place; the views ``products`` and ``product_variants`` no longer show either. Only live rows
# are named: a product already deleted is not found, and its external id may be a live one's.
DELETE_PRODUCTS = """
WITH deleted AS (
    UPDATE all_products
       SET deleted_at = now(), deleted_by = %(partner)s, deleted_request = %(request)s,
           deleted_batch = %(batch)s::uuid, restored_at = NULL
     WHERE store_id = %(store)s
       AND (id = ANY(%(ids)s::uuid[]) OR external_id = ANY(%(external_ids)s::text[]))
       AND deleted_at IS NULL
    RETURNING id, external_id
)
SELECT id::text, external_id FROM deleted
"""
# A request without an idempotency key, whole, in one statement, so one round trip: the replay
# record, the deletes as tombstones (as DELETE_PRODUCTS's, only when the record is new)
# and the audit row (only then too) commit together or not at all. A replayed signature inserts
# nothing, so nothing is deleted or audited, and no row comes back. Every deleted row
# counts once as a success (resolve() attributes each row to exactly one entry), so the audit's
# counts are computed here, from the rows deleted. The first row says what became of the
# request; the others are the products deleted. With the rate limit it is
# counted.DELETE_AUDITED_COUNTED.
DELETE_AUDITED = """
WITH nonce AS (
    INSERT INTO replay_nonces (partner_id, signature, expires_at)
    VALUES (%(partner)s, %(signature)s, to_timestamp(%(expires)s / 1000.0))
    ON CONFLICT DO NOTHING
    RETURNING 1
), deleted AS (
    UPDATE all_products
       SET deleted_at = now(), deleted_by = %(partner)s, deleted_request = %(request)s,
           deleted_batch = %(batch)s::uuid, restored_at = NULL
     WHERE store_id = %(store)s
       AND (id = ANY(%(ids)s::uuid[]) OR external_id = ANY(%(external_ids)s::text[]))
       AND deleted_at IS NULL
       AND EXISTS (SELECT FROM nonce)
    RETURNING id, external_id
), audit AS (
    INSERT INTO deletion_audit
        (request_id, partner_id, store_id, total, succeeded, failed, deleted_ids)
    SELECT %(request)s, %(partner)s, %(store)s, %(total)s, d.n, %(total)s - d.n, d.ids
      FROM nonce,
           (SELECT count(*)::int AS n, coalesce(array_agg(id ORDER BY id), '{}') AS ids
              FROM deleted) AS d
)
SELECT 'accepted', NULL::text, NULL::text, NULL::numeric FROM nonce
UNION ALL
SELECT 'deleted', id::text, external_id, NULL FROM deleted
"""
_AUDIT = """
INSERT INTO deletion_audit
    (request_id, partner_id, store_id, total, succeeded, failed, deleted_ids)
VALUES (%s, %s, %s, %s, %s, %s, %s::uuid[])
"""
_PREVIEW = """
SELECT p.id::text, p.external_id,
       (SELECT count(*) FROM product_variants v
         WHERE v.store_id = p.store_id AND v.product_id = p.id)
  FROM products p
 WHERE p.store_id = %(store)s
   AND (p.id = ANY(%(ids)s::uuid[]) OR p.external_id = ANY(%(external_ids)s::text[]))
"""


async def delete_products(tx: RequestTransaction, *, plan: DeletionPlan) -> DeletionOutcome:
    """Delete (tombstones) what the plan names, and audit it, in the request's transaction,
    whatever the batch size. Without an idempotency key it is the request's one statement
    (replay record and rate limit included: one round trip); with one, two statements between
    the key's claim and its kept answer, the first of them taking the request's step of its
    rate. Raises as the transaction's replay record does (:class:`Replayed`,
    :class:`RateLimited`). Two concurrent requests naming one product serialise on its row:
    only one gets it back."""
    if tx.one_statement:
        return await _delete_in_one_statement(tx, plan)
    conn = await tx.connection()
    params = _params(tx, plan)
    if tx.rate is None:
        cur = await conn.execute(DELETE_PRODUCTS, params)
    else:
        cur = await execute_counted(conn, DELETE_PRODUCTS_COUNTED, params, tx.nonce, tx.rate)
    rows = [DeletedProduct(row[0], row[1]) for row in await cur.fetchall()]
    outcome = plan.resolve(rows)
    await conn.execute(
        _AUDIT,
        (
            tx.request_id,
            tx.nonce.partner_id,
            tx.store_id,
            outcome.total,
            len(outcome.deleted),
            len(outcome.failures),
            sorted(row.id for row in rows),  # in id order, as the one-statement path
        ),
    )
    return outcome


def _params(tx: RequestTransaction, plan: DeletionPlan) -> dict[str, Any]:
    params = nonce_params(tx.nonce, tx.rate)
    params.update(
        store=tx.store_id,
        ids=plan.target_ids,
        external_ids=plan.target_external_ids,
        request=tx.request_id,
        batch=None,
        total=plan.total,
    )
    return params


async def _delete_in_one_statement(tx: RequestTransaction, plan: DeletionPlan) -> DeletionOutcome:
    params = _params(tx, plan)
    async with tx.alone() as conn:
        result = await _run_one_statement(conn, params, tx.rate)
        if result == []:
            nothing_committed(conn)
            raise Replayed("signature already accepted")
        over = next((row for row in result or () if row[0] == "over the limit"), None)
        if over is not None:
            assert tx.rate is not None
            await not_counted(conn, tx.nonce)
            tx.spent()  # its record committed, marked as not counting
            raise over_the_limit(tx.nonce, tx.rate, over[3])
    if result is None:  # the step was refused, and nothing was kept: the nonce is spent as
        assert tx.rate is not None  # the transaction ends
        raise over_the_limit(tx.nonce, tx.rate, None)
    rows = [DeletedProduct(row[1], row[2]) for row in result if row[0] == "deleted"]
    return plan.resolve(rows)


async def _run_one_statement(
    conn: psycopg.AsyncConnection[Any], params: dict[str, Any], rate: RateLimit | None
) -> list[tuple[Any, ...]] | None:
    """The statement's rows (none: a replay), or None when its step was refused by the check
    of rate_allowances: the statement failed, nothing was kept."""
    try:
        cur = await conn.execute(DELETE_AUDITED if rate is None else DELETE_AUDITED_COUNTED, params)
    except psycopg.errors.CheckViolation as exc:
        if exc.diag.constraint_name != STEP_REFUSED:
            raise
        nothing_committed(conn)
        return None
    return await cur.fetchall()


@dataclass(frozen=True, slots=True)
class DeletionPreview:
    """What a request would delete: its report, and the variants of each product it names."""

    outcome: DeletionOutcome
    variants: dict[str, int]


async def preview_deletion(tx: RequestTransaction, *, plan: DeletionPlan) -> DeletionPreview:
    """A dry run: the report that :func:`delete_products` would give now, with variant counts.
    In the request's transaction, which records the nonce (and the key's answer) and nothing
    else: no delete, no audit."""
    conn = await tx.connection()
    params = nonce_params(tx.nonce, tx.rate)
    params.update(store=tx.store_id, ids=plan.target_ids, external_ids=plan.target_external_ids)
    if tx.rate is None:
        cur = await conn.execute(_PREVIEW, params)
    else:
        cur = await execute_counted(conn, PREVIEW_COUNTED, params, tx.nonce, tx.rate)
    found = await cur.fetchall()
    return DeletionPreview(
        outcome=plan.resolve([DeletedProduct(row[0], row[1]) for row in found]),
        variants={row[0]: int(row[2]) for row in found},
    )
