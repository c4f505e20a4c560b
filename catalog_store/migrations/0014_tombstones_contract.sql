-- Tombstones, the contract step: drops archived_products. Applied only by
-- `partner-gateway migrate --contract` (or with the rest on a fresh database), once no process
-- of the previous version runs any more (docs/operations.md, "Upgrading to tombstones"):
-- those write every deletion into archived_products, and would fail without it.
--
-- A deletion archived in the last 10 minutes says a gateway of the previous version still
-- deletes: then nothing is done, and the migration fails with that said.
DO $$
DECLARE
    latest timestamptz := (SELECT max(deleted_at) FROM archived_products);
BEGIN
    IF latest > now() - interval '10 minutes' THEN
        RAISE EXCEPTION 'a gateway of the previous version archived a deletion at %: stop every'
            ' serve and worker of the previous version, then run migrate --contract again',
            latest;
    END IF;
END
$$;
-- What the previous version archived since 0013_tombstones_carry_over, moved as it did.
WITH moved AS (
    DELETE FROM archived_products RETURNING *
), latest AS (
    SELECT DISTINCT ON (store_id, id) *
      FROM moved
     WHERE restored_at IS NULL
     ORDER BY store_id, id, deleted_at DESC
), products_back AS (
    INSERT INTO all_products
        (store_id, id, external_id, name, created_at,
         deleted_at, deleted_by, deleted_request, deleted_batch)
    SELECT l.store_id, l.id, r.external_id, r.name, r.created_at,
           l.deleted_at, l.partner_id, l.request_id, l.batch_id
      FROM latest l, jsonb_populate_record(NULL::products, l.product) r
    ON CONFLICT (store_id, id) DO NOTHING
    RETURNING store_id, id
)
INSERT INTO all_product_variants (store_id, id, product_id, sku)
SELECT v.store_id, v.id, v.product_id, v.sku
  FROM products_back b
  JOIN latest l ON l.store_id = b.store_id AND l.id = b.id,
       jsonb_populate_recordset(NULL::product_variants, l.variants) v
ON CONFLICT (store_id, id) DO NOTHING;
DROP TABLE archived_products;
