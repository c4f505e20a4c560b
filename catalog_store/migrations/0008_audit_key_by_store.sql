-- deletion_audit's primary key becomes (store_id, request_id), as every table distributed by
-- store_id has its store in each unique key (catalog_store/distribution.py; a Citus shard can
-- only enforce a key that holds the distribution column). Request ids are unique anyway, so no
-- row breaks the new key, and gateways of the previous version keep writing audit rows as
-- before (they name no constraint): it can run while they serve.
--
-- Safe on a live database. Migrations run inside one transaction (catalog_store/migrate.py),
-- where CREATE INDEX CONCURRENTLY is not allowed, so:
-- 1. The unique index on (store_id, request_id) is built first, and skipped when it already
--    exists: on a large deletion_audit, build it by hand beforehand, without blocking writes
--    (docs/operations.md, "Outgrowing one database server: Citus"):
--      CREATE UNIQUE INDEX CONCURRENTLY deletion_audit_store_request
--          ON deletion_audit (store_id, request_id);
--    A concurrent build that failed leaves an invalid index: it is dropped and built here.
--    Built here, it holds writes to deletion_audit (not reads) for as long as the build takes.
-- 2. The key is swapped in one ALTER TABLE: dropping the old key and promoting the index is a
--    catalog change (the columns are already NOT NULL, so nothing is scanned), under a brief
--    ACCESS EXCLUSIVE lock.
-- Neither step queues behind partner traffic for long: when the runner has set no lock
-- timeout, this migration sets one of 2 s, so it fails (and rolls back whole) instead of
-- queueing every request behind it; run `partner-gateway migrate` again then.
DO $$
BEGIN
    IF current_setting('lock_timeout') IN ('0', '0ms') THEN
        PERFORM set_config('lock_timeout', '2s', true);
    END IF;
    IF EXISTS (SELECT FROM pg_index
                WHERE indexrelid = to_regclass('deletion_audit_store_request')
                  AND NOT indisvalid) THEN
        DROP INDEX deletion_audit_store_request;
    END IF;
END
$$;
CREATE UNIQUE INDEX IF NOT EXISTS deletion_audit_store_request
    ON deletion_audit (store_id, request_id);
ALTER TABLE deletion_audit
    DROP CONSTRAINT deletion_audit_pkey,
    ADD CONSTRAINT deletion_audit_pkey PRIMARY KEY USING INDEX deletion_audit_store_request;
