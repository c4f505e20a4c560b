-- Dispatched deletion batches (contract §3-§4): the batch, and one row per entry that carries
-- the entry as sent and, once processed, its result. Keyed by (store_id, ...) like the catalog.

CREATE TABLE deletion_batches (
    store_id    bigint NOT NULL,
    id          uuid NOT NULL,
    partner_id  bigint NOT NULL,
    request_id  uuid NOT NULL,
    status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'processing', 'succeeded', 'completed')),
    total       integer NOT NULL,
    processed   integer NOT NULL DEFAULT 0,
    succeeded   integer NOT NULL DEFAULT 0,
    failed      integer NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store_id, id)
);
CREATE INDEX deletion_batches_created ON deletion_batches (created_at);

-- field: 0 for ids, 1 for externalIds. problem: decided when the batch is accepted
-- ('invalid_id', 'repeated'). code: once done, the entry's outcome ('id_not_found',
-- 'external_id_not_found', 'repeated', 'invalid_id'; NULL for a deleted entry);
-- product_id/external_id: the product it deleted.
CREATE TABLE deletion_batch_entries (
    store_id     bigint NOT NULL,
    batch_id     uuid NOT NULL,
    seq          integer NOT NULL,
    field        smallint NOT NULL,
    row_index    integer NOT NULL,
    value        text NOT NULL,
    problem      text,
    done         boolean NOT NULL DEFAULT false,
    code         text,
    product_id   uuid,
    external_id  text,
    PRIMARY KEY (store_id, batch_id, seq),
    FOREIGN KEY (store_id, batch_id) REFERENCES deletion_batches (store_id, id) ON DELETE CASCADE
);
CREATE INDEX deletion_batch_entries_pending
    ON deletion_batch_entries (store_id, batch_id, seq) WHERE NOT done;
CREATE INDEX deletion_batch_entries_deleted_external
    ON deletion_batch_entries (store_id, batch_id, external_id) WHERE done AND field = 0;
