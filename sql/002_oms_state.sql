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
-- Which dbt selection the build ran (dbt/selectors.yml: atp_build, the whole ATP path; or
-- atp_build_changed, without the views and the reference data's tests) and a digest of the dbt
-- project it ran: oms.tasks.atp_build runs the whole selection on the first build of a UTC day and
-- after the project changed.
ALTER TABLE oms.atp_snapshot ADD COLUMN IF NOT EXISTS dbt_selector text;
ALTER TABLE oms.atp_snapshot ADD COLUMN IF NOT EXISTS dbt_project_digest text;
