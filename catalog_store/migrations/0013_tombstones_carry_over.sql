-- Tombstones, expand step 2 of 3: the products archived by the previous version come back as
-- tombstones with their variants, so `products restore` of this version puts them back and the
-- upkeep purges them after the retention as any other deleted product.
--
-- One statement, so one snapshot: every archived row it reads is moved (deleted from the
-- archive) and none that the previous version's gateways archive meanwhile is lost (those wait
-- for the contract step, 0014, which moves them the same way). It takes row locks only (new
-- rows and archive rows): gateways of either version keep serving while it runs.
-- Of a product archived more than once (deleted, restored, deleted again) the latest
-- deletion that was not restored comes back; archive rows of restores already done are
-- dropped. A product whose id is back in the catalog keeps that live row (nothing moves).
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
