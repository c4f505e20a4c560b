-- Credentials, catalog, replay records and audit. Catalog tables are keyed by (store_id, ...)
-- and every foreign key stays within one store, so they can be distributed by store_id.

CREATE TABLE partners (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id   text NOT NULL UNIQUE,
    name        text NOT NULL,
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE partner_secrets (
    partner_id  bigint NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    key_id      text NOT NULL,
    secret      bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz,
    PRIMARY KEY (partner_id, key_id)
);

CREATE TABLE stores (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id   text NOT NULL UNIQUE,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Only the SHA-256 of a store token is kept; the token itself is shown once, at issue time.
CREATE TABLE store_tokens (
    token_hash  bytea PRIMARY KEY,
    store_id    bigint NOT NULL REFERENCES stores (id) ON DELETE CASCADE,
    partner_id  bigint NOT NULL REFERENCES partners (id) ON DELETE CASCADE,
    scopes      text[] NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX store_tokens_store_partner ON store_tokens (store_id, partner_id);

CREATE TABLE products (
    store_id     bigint NOT NULL REFERENCES stores (id),
    id           uuid NOT NULL,
    external_id  text,
    name         text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (store_id, id),
    UNIQUE (store_id, external_id)
);

CREATE TABLE product_variants (
    store_id    bigint NOT NULL,
    id          uuid NOT NULL,
    product_id  uuid NOT NULL,
    sku         text NOT NULL,
    PRIMARY KEY (store_id, id),
    FOREIGN KEY (store_id, product_id) REFERENCES products (store_id, id) ON DELETE CASCADE
);
CREATE INDEX product_variants_product ON product_variants (store_id, product_id);

-- One row per accepted signature, kept until its timestamp can no longer pass the window.
CREATE TABLE replay_nonces (
    partner_id  bigint NOT NULL,
    signature   bytea NOT NULL,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (partner_id, signature)
);
CREATE INDEX replay_nonces_expires ON replay_nonces (expires_at);

CREATE TABLE deletion_audit (
    request_id   uuid PRIMARY KEY,
    partner_id   bigint NOT NULL,
    store_id     bigint NOT NULL,
    total        integer NOT NULL,
    succeeded    integer NOT NULL,
    failed       integer NOT NULL,
    deleted_ids  uuid[] NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX deletion_audit_store ON deletion_audit (store_id, created_at);
