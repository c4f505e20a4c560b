-- Every request whose signature verified is spent, whatever its answer: a refused request
-- (rate limit, validation, idempotency key, unknown batch...) writes its replay record too, so
-- it cannot be sent again later, but that record does not count toward the partner's request
-- rate. ``counts`` tells the two apart; the rate limit reads only the records that count.
ALTER TABLE replay_nonces ADD COLUMN counts boolean NOT NULL DEFAULT true;
DROP INDEX replay_nonces_partner_accepted;
CREATE INDEX replay_nonces_partner_counted ON replay_nonces (partner_id, accepted_at) WHERE counts;
