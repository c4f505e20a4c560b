-- Work done by batch workers, counted in each chunk's own transaction: any gateway's /metrics
-- shows it for every worker, wherever the worker runs (workers have no metrics endpoint).
-- One row; its counters only grow (gateway_batch_chunks_total, gateway_entries_total).
CREATE TABLE batch_work_totals (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    chunks bigint NOT NULL DEFAULT 0,
    deleted bigint NOT NULL DEFAULT 0,
    failed bigint NOT NULL DEFAULT 0
);

-- When a partner secret last verified a request. Coarse: each gateway process writes it at
-- most once a minute per secret, so a request never pays a write for it.
ALTER TABLE partner_secrets ADD COLUMN last_used_at timestamptz;
