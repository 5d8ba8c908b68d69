-- What Magento holds, as far as the platform knows: the last value Magento *accepted* per
-- (sku, MSI source). A delta publish sends only rows whose expected value differs from this.
CREATE TABLE IF NOT EXISTS oms.publish_ledger (
    sku               text NOT NULL,
    source_code       text NOT NULL,
    quantity          numeric(18, 4) NOT NULL CHECK (quantity >= 0),
    status            smallint NOT NULL CHECK (status IN (0, 1)),
    value_hash        text NOT NULL,
    published_at      timestamptz NOT NULL,
    run_id            text,
    magento_response  jsonb,
    PRIMARY KEY (sku, source_code)
);

-- Every chunk sent (sync) or operation submitted (async bulk), with Magento's answer.
CREATE TABLE IF NOT EXISTS oms.publish_attempt (
    attempt_id     bigserial PRIMARY KEY,
    run_id         text,
    mode           text NOT NULL CHECK (mode IN ('sync', 'async_bulk')),
    chunk_no       integer NOT NULL,
    item_count     integer NOT NULL,
    accepted       boolean NOT NULL,
    http_status    integer,
    bulk_uuid      text,
    response       jsonb,
    error          text,
    attempted_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS publish_attempt_run_idx ON oms.publish_attempt (run_id);

-- How each channel publishes: 'physical' = quantity on hand per source less safety
-- stock, Magento's own reservations hold open orders; 'sellable' = ATP per source (open orders
-- already subtracted), Magento's reservations switched off for the channel's stock.
ALTER TABLE ref.channel ADD COLUMN IF NOT EXISTS publish_mode text NOT NULL DEFAULT 'physical';
DO $$ BEGIN
    ALTER TABLE ref.channel ADD CONSTRAINT channel_publish_mode_ck CHECK (publish_mode IN ('physical', 'sellable'));
EXCEPTION WHEN duplicate_object THEN NULL; END $$;

-- Drift found by reconciliation: Magento's salable quantity vs the platform's expectation.
CREATE TABLE IF NOT EXISTS oms.stock_drift (
    drift_id          bigserial PRIMARY KEY,
    run_id            text,
    checked_at        timestamptz NOT NULL DEFAULT now(),
    channel_code      text NOT NULL,
    sku               text NOT NULL,
    stock_id          integer NOT NULL,
    expected_salable  numeric(18, 4) NOT NULL,
    magento_salable   numeric(18, 4),
    drift             numeric(18, 4),
    repaired          boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS stock_drift_checked_idx ON oms.stock_drift (checked_at DESC);
