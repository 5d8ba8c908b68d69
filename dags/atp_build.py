"""dbt: staging → intermediate → ATP and order marts, on new stock, new orders or hourly."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from oms.assets import ATP_MARTS, RAW_ERP_STOCK, RAW_MAGENTO_ORDER
from oms.dag_defaults import default_args

DOC = """
### ATP build
Runs `dbt build` for the ATP marts (`marts.fct_atp_store`, `marts.fct_atp_country`), the order
marts (`marts.fct_orders`, `marts.fct_order_lines`) and their upstream models and tests whenever
`raw.erp_stock` or `raw.magento_order` receives a batch, and hourly as a safety net.
Records the snapshot in `oms.atp_snapshot` (the API says which snapshot its answers rest on),
marks the ERP movements the new snapshot already counts (the API's live path skips them), then
brings reservations to the open orders' demand (`fct_order_lines` → `oms.reservation`: click &
collect at the pickup store, others at country level until routed; closed/cancelled release) and
emits the `marts.atp` asset.
"""


@dag(
    dag_id="atp_build",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 * * * *", timezone="UTC"), assets=RAW_ERP_STOCK | RAW_MAGENTO_ORDER
    ),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args("analytics-engineering", retries=2, retry_delay=timedelta(seconds=30),
                              exponential_backoff=False),
    tags=["transform", "dbt", "atp"],
    doc_md=DOC,
)
def atp_build():
    @task
    def dbt_build_atp(run_id=None, data_interval_end=None) -> dict:
        from oms.tasks import atp_build as tasks

        return tasks.dbt_build_atp(run_id, data_interval_end)

    @task(outlets=[ATP_MARTS])
    def sync_order_reservations() -> dict:
        from oms.tasks import atp_build as tasks

        return tasks.sync_order_reservations()

    dbt_build_atp() >> sync_order_reservations()


atp_build()
