-- The request rate limit, one row per partner (catalog_store/replay.py): a hard cap at a cost
-- that does not grow with the limit. ``spent_until_ms`` is the moment (milliseconds of the
-- gateway's clock, fractional) until which the partner's allowance is spent: each accepted
-- request moves it window / limit later (from now, when it lies in the past), and a request is
-- accepted only while it stays within one window of now. The statement that writes a request's
-- replay record moves it in the same transaction; a row whose moment has passed says no more
-- than no row at all, and the replay records' upkeep deletes it.
--
-- Expand only: the replay records' ``counts`` and ``accepted_at`` columns and their partial
-- index stay for the gateways of the previous release (which count those records) until a
-- later release removes them.
CREATE TABLE rate_allowances (
    partner_id      bigint PRIMARY KEY,
    spent_until_ms  numeric NOT NULL
);
