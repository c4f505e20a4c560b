-- The safety net (contract §7): every deleted product is archived with its variants, in the
-- transaction that deletes it, so an operator can restore it; and idempotency keys keep the
-- first answer to a request so that a retry gets it back instead of running again.

-- One row per product deleted. ``product`` and ``variants`` are the rows exactly as they were
-- (to_jsonb of the table rows), so a restore puts back every column, created_at included.
-- A product restored and deleted again gets a second row (another request id).
CREATE TABLE archived_products (
    store_id     bigint NOT NULL,
    request_id   uuid NOT NULL,
    id           uuid NOT NULL,
    external_id  text,
    batch_id     uuid,
    partner_id   bigint NOT NULL,
    deleted_at   timestamptz NOT NULL DEFAULT now(),
    product      jsonb NOT NULL,
    variants     jsonb NOT NULL,
    restored_at  timestamptz,
    PRIMARY KEY (store_id, request_id, id)
);
CREATE INDEX archived_products_request ON archived_products (request_id);
CREATE INDEX archived_products_batch ON archived_products (batch_id) WHERE batch_id IS NOT NULL;
CREATE INDEX archived_products_product ON archived_products (store_id, id);
CREATE INDEX archived_products_deleted_at ON archived_products (deleted_at);

-- Keyed by (store_id, ...) like the catalog.
-- One row per idempotency key that got an answer: the SHA-256 of the body it was sent with,
-- and that answer, byte for byte. A request still running holds an advisory lock on its key
-- instead of a row, so a crashed request leaves nothing behind.
CREATE TABLE idempotency_keys (
    store_id     bigint NOT NULL,
    partner_id   bigint NOT NULL,
    key          text NOT NULL,
    body_sha256  bytea NOT NULL,
    request_id   uuid NOT NULL,
    status       smallint NOT NULL,
    response     bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (store_id, partner_id, key)
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);
