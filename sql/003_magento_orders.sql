-- Magento orders in: the landed order versions, the exceptions queue, and how far ingestion got.

-- Which channel a Magento order belongs to: Magento stamps every order with the store (view) id it
-- was placed in. One channel per country = one Magento website; its store view's numeric id here.
ALTER TABLE ref.channel ADD COLUMN IF NOT EXISTS magento_store_id integer;
CREATE UNIQUE INDEX IF NOT EXISTS channel_magento_store_id_uq
    ON ref.channel (magento_store_id) WHERE magento_store_id IS NOT NULL;

-- Magento orders as received from GET /V1/orders, one row per order version (entity_id,
-- updated_at). record_key is '<entity_id>@<updated_at UTC, ISO>' for a version with both keys, and
-- 'sha1:<hash of the payload>' for a record missing one (it lands too, so validation can
-- quarantine it with its payload: nothing received is dropped).
CREATE TABLE IF NOT EXISTS raw.magento_order (
    record_key           text PRIMARY KEY,
    entity_id            bigint,                 -- Magento's order id (GET /V1/orders/{id})
    updated_at           timestamptz,            -- payload updated_at read as UTC
    increment_id         text,                   -- the order number customers see
    store_id             integer,                -- Magento store (view) id of the order
    channel_code         text,                   -- the channel partition that pulled it; null = unmapped stores
    payload              jsonb NOT NULL,
    batch_id             text NOT NULL,
    data_interval_start  timestamptz NOT NULL,
    data_interval_end    timestamptz NOT NULL,
    loaded_at            timestamptz NOT NULL DEFAULT now(),
    UNIQUE (entity_id, updated_at)
);
CREATE INDEX IF NOT EXISTS magento_order_updated_idx ON raw.magento_order (updated_at);
CREATE INDEX IF NOT EXISTS magento_order_interval_idx ON raw.magento_order (data_interval_end, data_interval_start);
-- Look-ups by the order number customers, stores and the reservation ledger use.
CREATE INDEX IF NOT EXISTS magento_order_increment_idx ON raw.magento_order (increment_id);
CREATE INDEX IF NOT EXISTS magento_order_pending_idx ON raw.magento_order (entity_id)
    WHERE payload ->> 'state' IN ('pending_payment', 'payment_review');

-- The exceptions queue: orders that landed and are visible downstream, but need someone (or a
-- rule) to act: unknown SKU or channel, unusable pickup store, no shipping address, non-positive
-- quantities, payment not completed. One row per (order version, reason); an entry is open while
-- resolved_at is null. docs/exceptions.md gives each reason's path.
CREATE TABLE IF NOT EXISTS oms.order_exception (
    exception_id   bigserial PRIMARY KEY,
    increment_id   text NOT NULL,
    entity_id      bigint NOT NULL,
    updated_at     timestamptz NOT NULL,          -- the order version the finding is about
    record_key     text NOT NULL,                 -- raw.magento_order.record_key of that version
    reason         text NOT NULL,                 -- e.g. 'unknown_sku'
    detail         text,                          -- the offending values, for people
    payload        jsonb NOT NULL,                -- copy of the order version
    batch_id       text NOT NULL,                 -- the ingest window whose validation found it
    detected_at    timestamptz NOT NULL DEFAULT now(),
    resolved_at    timestamptz,
    resolution     text CHECK (resolution IN ('superseded', 'passed_recheck')),
    UNIQUE (entity_id, updated_at, reason),
    CHECK ((resolved_at IS NULL) = (resolution IS NULL))
);
CREATE INDEX IF NOT EXISTS order_exception_open_idx ON oms.order_exception (reason) WHERE resolved_at IS NULL;
CREATE INDEX IF NOT EXISTS order_exception_increment_idx ON oms.order_exception (increment_id);

-- How far each windowed feed has been ingested: the latest data_interval_end whose run landed and
-- validated. A run that starts after it (the scheduler skipped windows while the platform was
-- down) reads from here instead, so catch-up needs no manual backfill; time-based checks (payment
-- not completed) measure against it, never against the wall clock.
CREATE TABLE IF NOT EXISTS oms.ingest_watermark (
    source             text PRIMARY KEY,          -- e.g. 'magento_order'
    high_water_end     timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now()
);
