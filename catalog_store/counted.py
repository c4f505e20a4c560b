"""The deletion's statements with the request rate limit in them: each one's last write is the
request's step of its partner's allowance (catalog_store/replay.py), a data-modifying WITH that
nothing reads, so it runs after the statement's main query, once the deletes are done, and the
partner's row stays locked only until the commit. Each is the statement of the same name in
deletions.py with the step added; the parameters are those of ``replay.nonce_params`` besides
the statement's own."""

from __future__ import annotations

__all__ = ["DELETE_AUDITED_COUNTED", "DELETE_PRODUCTS_COUNTED", "PREVIEW_COUNTED"]

# A request with an idempotency key: deletions.DELETE_PRODUCTS, then the step.
DELETE_PRODUCTS_COUNTED = """
WITH deleted AS (
    UPDATE all_products
       SET deleted_at = now(), deleted_by = %(partner)s, deleted_request = %(request)s,
           deleted_batch = %(batch)s::uuid, restored_at = NULL
     WHERE store_id = %(store)s
       AND (id = ANY(%(ids)s::uuid[]) OR external_id = ANY(%(external_ids)s::text[]))
       AND deleted_at IS NULL
    RETURNING id, external_id
), step AS (
    INSERT INTO rate_allowances AS r (partner_id, spent_until_ms, ceiling_ms)
    VALUES (%(partner)s, %(now)s + %(step)s, %(now)s + %(window_ms)s)
    ON CONFLICT (partner_id) DO UPDATE
       SET spent_until_ms = greatest(r.spent_until_ms, %(now)s) + %(step)s,
           ceiling_ms = excluded.ceiling_ms
)
SELECT id::text, external_id FROM deleted
"""
# A dry run: deletions._PREVIEW, then the step.
PREVIEW_COUNTED = """
WITH step AS (
    INSERT INTO rate_allowances AS r (partner_id, spent_until_ms, ceiling_ms)
    VALUES (%(partner)s, %(now)s + %(step)s, %(now)s + %(window_ms)s)
    ON CONFLICT (partner_id) DO UPDATE
       SET spent_until_ms = greatest(r.spent_until_ms, %(now)s) + %(step)s,
           ceiling_ms = excluded.ceiling_ms
)
SELECT p.id::text, p.external_id, (SELECT count(*) FROM product_variants v
                              WHERE v.store_id = p.store_id AND v.product_id = p.id)
  FROM products p WHERE p.store_id = %(store)s
   AND (p.id = ANY(%(ids)s::uuid[]) OR p.external_id = ANY(%(external_ids)s::text[]))
"""
# A request without an idempotency key, with the rate limit, checked and taken as replay.py
# says (deletions._DELETE_AUDITED is the same without it): the replay record
# is written first, new or not; the partner's allowance is read without a lock, and only a new
# record that fits is counted; only a counted request deletes, is audited and takes
# its step. The step is a data-modifying WITH that nothing reads, so it runs after the main
# query, once the deletes are done: the partner's row stays locked only until the commit. A
# request over the limit as read is spent (its record commits) and changes nothing else; its
# first row says so, with the allowance it read. A step refused by the check of rate_allowances
# (another request took the allowance meanwhile) fails the statement: nothing is kept.
DELETE_AUDITED_COUNTED = """
WITH nonce AS (
    INSERT INTO replay_nonces (partner_id, signature, expires_at)
    VALUES (%(partner)s, %(signature)s, to_timestamp(%(expires)s / 1000.0))
    ON CONFLICT DO NOTHING
    RETURNING 1
), allowance AS (
    SELECT greatest(a.spent_until_ms, %(now)s) + %(step)s <= %(now)s + %(window_ms)s AS fits,
           a.spent_until_ms
      FROM (SELECT (SELECT spent_until_ms FROM rate_allowances WHERE partner_id = %(partner)s)
                    AS spent_until_ms) AS a
), counted AS (
    SELECT 1 FROM nonce, allowance WHERE allowance.fits
), deleted AS (
    UPDATE all_products
       SET deleted_at = now(), deleted_by = %(partner)s, deleted_request = %(request)s,
           deleted_batch = %(batch)s::uuid, restored_at = NULL
     WHERE store_id = %(store)s
       AND (id = ANY(%(ids)s::uuid[]) OR external_id = ANY(%(external_ids)s::text[]))
       AND deleted_at IS NULL
       AND EXISTS (SELECT FROM counted)
    RETURNING id, external_id
), audit AS (
    INSERT INTO deletion_audit
        (request_id, partner_id, store_id, total, succeeded, failed, deleted_ids)
    SELECT %(request)s, %(partner)s, %(store)s, %(total)s, d.n, %(total)s - d.n, d.ids
      FROM counted,
           (SELECT count(*)::int AS n, coalesce(array_agg(id ORDER BY id), '{}') AS ids
              FROM deleted) AS d
), step AS (
    INSERT INTO rate_allowances AS r (partner_id, spent_until_ms, ceiling_ms)
    SELECT %(partner)s, %(now)s + %(step)s, %(now)s + %(window_ms)s FROM counted
    ON CONFLICT (partner_id) DO UPDATE
       SET spent_until_ms = greatest(r.spent_until_ms, %(now)s) + %(step)s,
           ceiling_ms = excluded.ceiling_ms
)
SELECT 'accepted', NULL::text, NULL::text, NULL::numeric FROM counted
UNION ALL
SELECT 'over the limit', NULL, NULL, allowance.spent_until_ms
  FROM nonce, allowance WHERE NOT allowance.fits
UNION ALL
SELECT 'deleted', id::text, external_id, NULL FROM deleted
"""
