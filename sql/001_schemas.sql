-- Warehouse layout for what dbt does not own (dbt owns staging, intermediate and marts).
--   ref  : reference data an admin changes without a deploy (channels, locations, SKUs, rules)
--   raw  : records landed as received (payload JSONB + extracted keys + batch id + loaded_at)
--   oms  : operational state written by the platform's operators and the API, never by dbt
CREATE SCHEMA IF NOT EXISTS ref;
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS oms;

-- One sales channel per country (seed 01 §2): one Magento website with its own MSI stock.
CREATE TABLE IF NOT EXISTS ref.channel (
    channel_code          text PRIMARY KEY,              -- e.g. 'ae_web'
    country_code          char(2) NOT NULL UNIQUE,       -- ISO 3166-1 alpha-2
    name                  text NOT NULL,
    currency_code         char(3) NOT NULL,
    magento_website_code  text NOT NULL,
    magento_store_code    text NOT NULL,
    magento_stock_id      integer NOT NULL,
    buffer_qty            numeric(12, 3) NOT NULL DEFAULT 0 CHECK (buffer_qty >= 0),
    active                boolean NOT NULL DEFAULT true,
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- Stores and warehouses. store_id is the ERP's location code (seed 01: "The Store id of OMS and
-- ERP has to be the same"); each location is one Magento MSI source.
CREATE TABLE IF NOT EXISTS ref.location (
    store_id             text PRIMARY KEY,
    name                 text NOT NULL,
    country_code         char(2) NOT NULL REFERENCES ref.channel (country_code) ON UPDATE CASCADE,
    location_type        text NOT NULL CHECK (location_type IN ('warehouse', 'store')),
    address_line         text,
    city                 text,
    postcode             text,
    latitude             double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude            double precision CHECK (longitude BETWEEN -180 AND 180),
    phone                text,
    email                text,
    ship_from_store      boolean NOT NULL DEFAULT false,
    pickup_enabled       boolean NOT NULL DEFAULT false,
    magento_source_code  text NOT NULL UNIQUE,
    active               boolean NOT NULL DEFAULT true,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS ref.sku (
    sku               text PRIMARY KEY,
    name              text NOT NULL,
    category          text,
    product_type      text NOT NULL DEFAULT 'simple',
    is_stock_managed  boolean NOT NULL DEFAULT true,
    weight_g          integer,
    active            boolean NOT NULL DEFAULT true,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Safety stock held back from promising. The most specific matching rule wins:
-- (store, sku) > (store, category) > (store) > (sku) > (category) > global (all null).
CREATE TABLE IF NOT EXISTS ref.safety_stock_rule (
    rule_id      bigserial PRIMARY KEY,
    store_id     text REFERENCES ref.location (store_id) ON DELETE CASCADE,
    sku          text REFERENCES ref.sku (sku) ON DELETE CASCADE,
    category     text,
    safety_qty   numeric(12, 3) NOT NULL CHECK (safety_qty >= 0),
    CHECK (sku IS NULL OR category IS NULL)
);
CREATE UNIQUE INDEX IF NOT EXISTS safety_stock_rule_scope_uq
    ON ref.safety_stock_rule (coalesce(store_id, ''), coalesce(sku, ''), coalesce(category, ''));

-- ERP store-wise stock rows as received. record_key identifies one ERP row version
-- (location, item, variant, lastModifiedDateTime) so that re-landing a window is a no-op.
CREATE TABLE IF NOT EXISTS raw.erp_stock (
    record_key           text PRIMARY KEY,
    store_id             text,
    sku                  text,
    modified_at          timestamptz,
    payload              jsonb NOT NULL,
    batch_id             text NOT NULL,
    data_interval_start  timestamptz NOT NULL,
    data_interval_end    timestamptz NOT NULL,
    loaded_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS erp_stock_store_sku_idx ON raw.erp_stock (store_id, sku, modified_at DESC);
-- (the index on batch_id alone was replaced by a BRIN index: sql/016)

-- Records that failed validation: kept with reason and payload, counted, visible, replayable.
CREATE TABLE IF NOT EXISTS raw.quarantine (
    quarantine_id  bigserial PRIMARY KEY,
    source         text NOT NULL,             -- e.g. 'erp_stock'
    record_key     text NOT NULL,             -- the raw table's key of the failing record
    batch_id       text NOT NULL,
    reason         text NOT NULL,             -- the failing check, e.g. 'quantity_not_numeric'
    detail         text,
    payload        jsonb NOT NULL,
    detected_at    timestamptz NOT NULL DEFAULT now(),
    resolved_at    timestamptz,
    UNIQUE (source, record_key, reason)
);
CREATE INDEX IF NOT EXISTS quarantine_open_idx ON raw.quarantine (source) WHERE resolved_at IS NULL;

-- API bearer tokens: only a SHA-256 of the secret is stored.
CREATE TABLE IF NOT EXISTS oms.api_token (
    token_id      bigserial PRIMARY KEY,
    name          text NOT NULL,
    token_sha256  text NOT NULL UNIQUE,
    scopes        text[] NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
-- the stores a `store` token acts for (oms token create --scope store --store X); NULL otherwise
ALTER TABLE oms.api_token ADD COLUMN IF NOT EXISTS store_ids text[];
