-- ERP ↔ platform stock reconciliation (the erp_reconciliation DAG, daily): per run date, every
-- (store, SKU) whose stock in the ERP differs from what the platform expects, with the likely cause.
-- What the platform expects = last snapshot + accepted ERP movements since (live on hand)
--                             − units of sales postings the ERP has not settled yet
--                             + units of restocked returns it has not settled yet.
-- Idempotent: a re-run of a date replaces that date's rows.
CREATE TABLE IF NOT EXISTS oms.erp_reconciliation (
    run_date            date NOT NULL,
    store_id            text NOT NULL,
    sku                 text NOT NULL,
    erp_qty             numeric(18, 4) NOT NULL,           -- the ERP's on hand when read
    expected_qty        numeric(18, 4) NOT NULL,           -- what the platform expects the ERP to hold
    diff_qty            numeric(18, 4) NOT NULL,           -- erp_qty − expected_qty (never 0 here)
    pending_posting_qty numeric(18, 4) NOT NULL,           -- net units of postings the ERP has not settled
    unacked_postings    integer NOT NULL,                  -- of those, postings the ERP has not acknowledged
    oldest_unacked_at   timestamptz,
    erp_modified_at     timestamptz,                       -- the ERP row's lastModifiedDateTime
    snapshot_as_of      timestamptz,
    cause               text NOT NULL CHECK (cause IN ('unacknowledged_posting', 'missing_movement', 'unexplained')),
    detail              text NOT NULL,
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_date, store_id, sku)
);
CREATE INDEX IF NOT EXISTS erp_reconciliation_cause_idx ON oms.erp_reconciliation (run_date, cause);

-- One row per reconciliation run, also when it found nothing (the health endpoint shows the last).
CREATE TABLE IF NOT EXISTS oms.erp_reconciliation_run (
    run_date            date PRIMARY KEY,
    pairs_compared      integer NOT NULL,
    differences         integer NOT NULL,
    by_cause            jsonb NOT NULL,
    stale_unacked       integer NOT NULL,                  -- postings unacknowledged past the threshold
    oldest_unacked_at   timestamptz,
    finished_at         timestamptz NOT NULL DEFAULT now()
);

-- Alerts raised by a condition a task found (stale unacknowledged postings), beside task failures.
-- (every kind: this file runs after sql/013, which added component_down)
ALTER TABLE oms.alert_log DROP CONSTRAINT IF EXISTS alert_log_kind_check;
ALTER TABLE oms.alert_log ADD CONSTRAINT alert_log_kind_check CHECK (kind IN ('failure', 'retry', 'component_down', 'condition'));
