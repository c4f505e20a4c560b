-- Tombstones instead of the archive copy (docs/safety-net.md), expand step 1 of 3: safe to
-- apply while gateways of the previous version still serve on this database.
--
-- A deletion now marks the product deleted (deleted_at and who, which request, which batch)
-- instead of copying it and its variants into archived_products and deleting them; the
-- variants stay in place. The tables keep every row, deleted or not, under new names, and
-- ``products`` and ``product_variants`` become views of the live rows only: every reader,
-- this version's and the previous version's alike, sees a deleted product and its variants as
-- gone. Both views are automatically updatable, so the previous version's DELETE (its archive
-- copy included), INSERT and restore keep working through them while the rollout lasts.
--
-- An external id is unique among live products only (a partial unique index), so it can be
-- given to a new product as soon as its product is deleted.
--
-- Every step is a change to the catalog (no table rewrite) except the partial unique index,
-- which is built here under a lock that holds writes to the products for as long as the
-- build takes. On a large catalog, build it beforehand without blocking writes
-- (docs/operations.md, "Upgrading to tombstones"):
--   ALTER TABLE products ADD COLUMN IF NOT EXISTS deleted_at timestamptz;
--   CREATE UNIQUE INDEX CONCURRENTLY all_products_live_external
--       ON products (store_id, external_id) WHERE deleted_at IS NULL;
-- A concurrent build that failed leaves an invalid index: it is dropped and built here.
ALTER TABLE products RENAME TO all_products;
ALTER TABLE product_variants RENAME TO all_product_variants;
ALTER TABLE all_products
    ADD COLUMN IF NOT EXISTS deleted_at timestamptz,
    ADD COLUMN deleted_by bigint,
    ADD COLUMN deleted_request uuid,
    ADD COLUMN deleted_batch uuid,
    ADD COLUMN restored_at timestamptz;
DO $$
BEGIN
    IF EXISTS (SELECT FROM pg_index
                WHERE indexrelid = to_regclass('all_products_live_external')
                  AND NOT indisvalid) THEN
        DROP INDEX all_products_live_external;
    END IF;
END
$$;
CREATE UNIQUE INDEX IF NOT EXISTS all_products_live_external
    ON all_products (store_id, external_id) WHERE deleted_at IS NULL;
ALTER TABLE all_products DROP CONSTRAINT products_store_id_external_id_key;

-- Restore by request or batch, and the upkeep's purge, find tombstones by these. Every one is
-- empty on a catalog that has no tombstone yet, so each build only reads the table.
CREATE INDEX all_products_deleted_request ON all_products (deleted_request)
    WHERE deleted_request IS NOT NULL;
CREATE INDEX all_products_deleted_batch ON all_products (deleted_batch)
    WHERE deleted_batch IS NOT NULL;
CREATE INDEX all_products_deleted_at ON all_products (deleted_at)
    WHERE deleted_at IS NOT NULL;

-- The columns the previous version knew, of the live rows only.
CREATE VIEW products AS
SELECT store_id, id, external_id, name, created_at
  FROM all_products
 WHERE deleted_at IS NULL;

CREATE VIEW product_variants AS
SELECT v.store_id, v.id, v.product_id, v.sku
  FROM all_product_variants v
 WHERE EXISTS (SELECT FROM all_products p
                WHERE p.store_id = v.store_id AND p.id = v.product_id
                  AND p.deleted_at IS NULL);
