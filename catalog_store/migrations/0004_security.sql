-- Security: partner secrets sealed with the server key, per-partner rate counting on the
-- replay records, and the open batches of a partner found by an index.

-- `sealed` holds AES-256-GCM of the secret (catalog_store/sealing.py). The plain `secret`
-- column stays only for rows written before this migration: the SQL cannot encrypt (the key
-- is not in the database), so every `partner-gateway` command that opens the database seals
-- such rows on start and empties `secret`. A retired secret keeps its key id and times, and
-- loses its key material.
ALTER TABLE partner_secrets ADD COLUMN sealed bytea;
ALTER TABLE partner_secrets ALTER COLUMN secret DROP NOT NULL;
ALTER TABLE partner_secrets
    ADD CONSTRAINT partner_secrets_one_form CHECK (secret IS NULL OR sealed IS NULL),
    ADD CONSTRAINT partner_secrets_active_has_key
        CHECK (retired_at IS NOT NULL OR secret IS NOT NULL OR sealed IS NOT NULL);

-- The rate limit counts a partner's accepted requests of the last window from here.
ALTER TABLE replay_nonces ADD COLUMN accepted_at timestamptz NOT NULL DEFAULT statement_timestamp();
CREATE INDEX replay_nonces_partner_accepted ON replay_nonces (partner_id, accepted_at);

CREATE INDEX deletion_batches_partner_open ON deletion_batches (partner_id)
    WHERE status IN ('pending', 'processing');
