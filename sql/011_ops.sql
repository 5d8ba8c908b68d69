-- Operations: every alert a DAG's failure/retry callback raised, one row per task
-- instance try and kind. The row is written before anything is sent, so a callback that runs twice
-- for the same try (a worker restarted mid-callback, a re-parsed callback) sends nothing twice;
-- the delivery columns say what reached people, and the error if a channel refused.
CREATE TABLE IF NOT EXISTS oms.alert_log (
    alert_id             bigserial PRIMARY KEY,
    kind                 text NOT NULL CHECK (kind IN ('failure', 'retry')),
    dag_id               text NOT NULL,
    task_id              text NOT NULL,
    run_id               text NOT NULL,
    map_index            integer NOT NULL DEFAULT -1,
    try_number           integer NOT NULL,
    max_tries            integer,
    data_interval_start  timestamptz,
    data_interval_end    timestamptz,
    log_url              text,
    error                text,
    raised_at            timestamptz NOT NULL DEFAULT now(),
    email_to             text[],
    email_sent_at        timestamptz,
    webhook_sent_at      timestamptz,
    delivery_error       text,
    UNIQUE (dag_id, task_id, run_id, map_index, try_number, kind)
);
CREATE INDEX IF NOT EXISTS alert_log_raised_idx ON oms.alert_log (raised_at DESC);

-- Source lag for GET /v1/pipeline/health (max(loaded_at) per source) without a scan of the raw tables.
CREATE INDEX IF NOT EXISTS erp_stock_loaded_idx ON raw.erp_stock (loaded_at);
CREATE INDEX IF NOT EXISTS magento_order_loaded_idx ON raw.magento_order (loaded_at);
