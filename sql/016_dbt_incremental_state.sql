-- State the incremental ATP marts keep between dbt builds (docs/adr/0012-incremental-marts.md).
-- Written only by the models' own hooks, inside the transaction that writes the model, so it
-- advances exactly when the model's rows do; a failed or skipped build leaves it as it was, and
-- the next build then recomputes a superset. Not dbt's to own: a full refresh recreates the
-- marts, not this.

-- Per model: a digest of the reference data it was built with (a different digest makes the
-- next incremental build recompute every row); watermark is for models that recompute what
-- landed after a time (none of the hooks' models today).
CREATE TABLE IF NOT EXISTS oms.dbt_incremental_state (
    model             text PRIMARY KEY,
    watermark         timestamptz,
    reference_digest  text,
    built_at          timestamptz NOT NULL DEFAULT now()
);

-- (store, SKU) keys whose on-hand rows int_stock__on_hand rewrote and fct_atp_store has not
-- recomputed yet: int_stock__on_hand's post-hook adds them, fct_atp_store's pre-hook takes them
-- (store_id '*': every key, after a full refresh of int_stock__on_hand).
CREATE TABLE IF NOT EXISTS oms.atp_store_pending (
    store_id  text NOT NULL,
    sku       text NOT NULL
);

-- (country, SKU) keys whose store ATP rows fct_atp_store rewrote and fct_atp_country has not
-- recomputed yet: fct_atp_store's post-hook adds them, fct_atp_country's pre-hook takes them
-- (a row with country_code '*' means every key, after a full refresh of fct_atp_store).
CREATE TABLE IF NOT EXISTS oms.atp_country_pending (
    country_code  text NOT NULL,
    sku           text NOT NULL
);

-- (store, SKU) keys whose rows fct_atp_store wrote in its last build: its post-hook replaces them
-- (store_id '*': every key, after a full refresh). On an incremental build the data tests of
-- fct_atp_store read only these keys' rows (dbt/macros/test_slice.sql): the other rows are as the
-- previous build left and tested them, and the unique index on (sku, store_id) holds whatever runs.
CREATE TABLE IF NOT EXISTS oms.atp_store_written (
    store_id  text NOT NULL,
    sku       text NOT NULL
);
