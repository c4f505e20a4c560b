-- The request rate limit, one row per partner (catalog_store/replay.py): a hard cap at a cost
-- that does not grow with the limit. ``spent_until_ms`` is the moment (milliseconds of the
-- gateway's clock, fractional) until which the partner's allowance is spent: each accepted
-- request moves it window / limit later (from now, when it lies in the past) and sets
-- ``ceiling_ms`` to now + window, and the check refuses a move past that ceiling. The move is
-- the last write of the request's transaction, so the row's lock is held only until its
-- commit; a row whose moment has passed says no more than no row at all, and the replay
-- records' upkeep deletes it.
--
-- Expand only: the replay records' ``counts`` and ``accepted_at`` columns and their partial
-- index stay for the gateways of the previous release (which count those records) until a
-- later release removes them.
CREATE TABLE rate_allowances (
    partner_id      bigint PRIMARY KEY,
    spent_until_ms  numeric NOT NULL,
    ceiling_ms      numeric NOT NULL,
    CONSTRAINT rate_allowances_within_window CHECK (spent_until_ms <= ceiling_ms)
);
