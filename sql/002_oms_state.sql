-- Each successful dbt build of the ATP marts: the API's answers say which snapshot they rest on.
CREATE TABLE IF NOT EXISTS oms.atp_snapshot (
    snapshot_id          bigserial PRIMARY KEY,
    built_at             timestamptz NOT NULL DEFAULT now(),
    dag_run_id           text,
    data_interval_end    timestamptz,
    stock_as_of          timestamptz,
    store_rows           bigint NOT NULL,
    country_rows         bigint NOT NULL
);
