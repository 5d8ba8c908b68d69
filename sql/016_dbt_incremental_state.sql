-- State the incremental ATP marts keep between dbt builds (docs/adr/0012-incremental-marts.md).
-- Written only by the models' own hooks, inside the transaction that writes the model, so it
-- advances exactly when the model's rows do; a failed or skipped build leaves it as it was, and
-- the next build then recomputes a superset. Not dbt's to own: a full refresh recreates the
-- marts, not this.

-- Per incremental model: the newest input timestamp its rows reflect (the next build recomputes
-- what landed after it, less the look-back) and a digest of the reference data it was built with
-- (a different digest makes the next build recompute every row).
CREATE TABLE IF NOT EXISTS oms.dbt_incremental_state (
    model             text PRIMARY KEY,
    watermark         timestamptz,
    reference_digest  text,
    built_at          timestamptz NOT NULL DEFAULT now()
);

-- (country, SKU) keys whose store ATP rows fct_atp_store rewrote and fct_atp_country has not
-- recomputed yet: fct_atp_store's post-hook adds them, fct_atp_country's pre-hook takes them
-- (a row with country_code '*' means every key, after a full refresh of fct_atp_store).
CREATE TABLE IF NOT EXISTS oms.atp_country_pending (
    country_code  text NOT NULL,
    sku           text NOT NULL
);
