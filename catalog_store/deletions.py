"""Bulk deletion of one store's products in one transaction, and its dry run (the preview)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import psycopg
import psycopg.errors

from .counted import DELETE_AUDITED_COUNTED, DELETE_PRODUCTS_COUNTED, PREVIEW_COUNTED
from .deadline import commit_point, nothing_committed
from .errors import Replayed
from .idempotency import Idempotency
from .plan import DeletedProduct, DeletionOutcome, DeletionPlan
from .pool import Pool, connection
from .replay import (
    STEP_REFUSED,
    Nonce,
    RateLimit,
    execute_counted,
    nonce_params,
    not_counted,
    over_the_limit,
    spend_nonce,
)
from .request_transaction import in_request_transaction

__all__ = ["DELETE_PRODUCTS", "DeletionPreview", "delete_products", "preview_deletion"]

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
# then too) commit together or not at all. A replayed signature inserts nothing, so nothing is
# deleted, archived or audited, and no row comes back. Every deleted row counts once as a
# success (resolve() attributes each row to exactly one entry), so the audit's counts are
# computed here, from the rows deleted. The archive is DELETE_PRODUCTS's, for one request. The
# first row says what became of the request; the others are the products deleted.
_DELETE_AUDITED = """
WITH nonce AS (
    INSERT INTO replay_nonces (partner_id, signature, expires_at)
    VALUES (%(partner)s, %(signature)s, to_timestamp(%(expires)s / 1000.0))
    ON CONFLICT DO NOTHING
    RETURNING 1
), deleted AS (
    DELETE FROM products
     WHERE store_id = %(store)s
       AND (id = ANY(%(ids)s::uuid[]) OR external_id = ANY(%(external_ids)s::text[]))
       AND EXISTS (SELECT FROM nonce)
    RETURNING *
), archived AS (
    INSERT INTO archived_products
        (store_id, request_id, id, external_id, batch_id, partner_id, product, variants)
    SELECT d.store_id, %(request)s, d.id, d.external_id, %(batch)s::uuid, %(partner)s,
           to_jsonb(d),
           COALESCE((SELECT jsonb_agg(to_jsonb(v) ORDER BY v.id) FROM product_variants v
                      WHERE v.store_id = d.store_id AND v.product_id = d.id), '[]'::jsonb)
      FROM deleted d
), audit AS (
    INSERT INTO deletion_audit
        (request_id, partner_id, store_id, total, succeeded, failed, deleted_ids)
    SELECT %(request)s, %(partner)s, %(store)s, %(total)s, d.n, %(total)s - d.n, d.ids
      FROM nonce,
           (SELECT count(*)::int AS n, coalesce(array_agg(id ORDER BY id), '{}') AS ids
              FROM deleted) AS d
)
SELECT 'accepted', NULL::uuid, NULL::text, NULL::numeric FROM nonce
UNION ALL
SELECT 'deleted', id, external_id, NULL FROM deleted
"""


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

    params = nonce_params(nonce, rate)
    params.update(
        store=store_id,
        ids=plan.target_ids,
        external_ids=plan.target_external_ids,
        request=request_id,
        batch=None,
    )

    async def work(conn: psycopg.AsyncConnection[Any]) -> DeletionOutcome:
        if rate is None:
            cur = await conn.execute(DELETE_PRODUCTS, params)
        else:
            cur = await execute_counted(conn, DELETE_PRODUCTS_COUNTED, params, nonce, rate)
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
    params = nonce_params(nonce, rate)
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
        result = await _run_one_statement(conn, params, rate)
        if result == []:
            nothing_committed(conn)
            raise Replayed("signature already accepted")
        over = next((row for row in result or () if row[0] == "over the limit"), None)
        if over is not None:
            assert rate is not None
            await not_counted(conn, nonce)
            raise over_the_limit(nonce, rate, over[3])
    if result is None:  # the step was refused, and nothing was kept: spend the nonce now
        assert rate is not None
        await spend_nonce(pool, nonce)
        raise over_the_limit(nonce, rate, None)
    rows = [DeletedProduct(row[1], row[2]) for row in result if row[0] == "deleted"]
    return plan.resolve(rows)


async def _run_one_statement(
    conn: psycopg.AsyncConnection[Any], params: dict[str, Any], rate: RateLimit | None
) -> list[tuple[Any, ...]] | None:
    """The statement's rows (none: a replay), or None when its step was refused by the check
    of rate_allowances: the statement failed, nothing was kept."""
    try:
        cur = await conn.execute(
            _DELETE_AUDITED if rate is None else DELETE_AUDITED_COUNTED, params
        )
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

    params = nonce_params(nonce, rate)
    params.update(store=store_id, ids=plan.target_ids, external_ids=plan.target_external_ids)

    async def work(conn: psycopg.AsyncConnection[Any]) -> DeletionPreview:
        if rate is None:
            cur = await conn.execute(_PREVIEW, params)
        else:
            cur = await execute_counted(conn, PREVIEW_COUNTED, params, nonce, rate)
        found = await cur.fetchall()
        return DeletionPreview(
            outcome=plan.resolve([DeletedProduct(row[0], row[1]) for row in found]),
            variants={row[0]: int(row[2]) for row in found},
        )

    return await in_request_transaction(pool, nonce, store_id, idempotency, rate, work)
