-- Results of dispatched batches kept per chunk: one row per chunk, written by the chunk's own
-- statement, instead of an update of every entry's row (1,000 row versions and their index
-- entries per chunk). Keyed by (store_id, ...) like the catalog.
--
-- Expand only. deletion_batch_entries keeps its result columns (done, code, product_id,
-- external_id): workers of the previous version go on writing them until they are stopped,
-- and they hold the results of every chunk such a worker ran. The status read takes an entry's
-- result from its row when it is done, else from its chunk's row, so nothing needs copying and
-- both kinds of worker can finish a batch the other began (one kind at a time: see
-- docs/operations.md, "Upgrading to per-chunk batch results").
--
-- codes, product_ids and external_ids hold one element per entry of the chunk, in seq order
-- from first_seq to last_seq: the entry's problem ('id_not_found', 'external_id_not_found',
-- 'repeated', 'invalid_id'; NULL when it deleted a product), and the product it deleted.
CREATE TABLE deletion_batch_chunks (
    store_id      bigint NOT NULL,
    batch_id      uuid NOT NULL,
    first_seq     integer NOT NULL,
    last_seq      integer NOT NULL,
    codes         text[] NOT NULL,
    product_ids   uuid[] NOT NULL,
    external_ids  text[] NOT NULL,
    PRIMARY KEY (store_id, batch_id, first_seq),
    FOREIGN KEY (store_id, batch_id) REFERENCES deletion_batches (store_id, id) ON DELETE CASCADE,
    CHECK (last_seq >= first_seq)
);
