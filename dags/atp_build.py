"""dbt: staging → intermediate → ATP and order marts, on new stock, new orders or hourly."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from oms import schedules
from oms.assets import ATP_MARTS, RAW_ERP_STOCK, RAW_MAGENTO_ORDER
from oms.dag_defaults import default_args

DOC = """
### ATP build
Runs `dbt build` for the ATP marts (`marts.fct_atp_store`, `marts.fct_atp_country`), the order
marts (`marts.fct_orders`, `marts.fct_order_lines`) and their upstream models and tests whenever
`raw.erp_stock` or `raw.magento_order` receives a batch, and hourly as a safety net.
Records the snapshot in `oms.atp_snapshot` (the API says which snapshot its answers rest on),
marks the ERP movements the new snapshot already counts (the API's live path skips them), and
emits the `marts.atp` asset. Reservations are not synced here: landing an order (the pull and
`POST /v1/magento/orders`) reserves its stock lines in the landing transaction
(`oms.inventory.order_demand`), so the marts read the holds as they are.

The staging and intermediate tables under the marts are incremental: a run recomputes what
landed (or was released from quarantine) since the last build. Trigger with
`{"full_refresh": true}` to rebuild them whole. The task's return value lists each model's
status, seconds and rows written in this run (XCom tab), and `dbt_selector`, the selection it ran
(`dbt/selectors.yml`):

- `atp_build` — every view re-created and every data test over every row — on a full refresh, on
  the first build of a warehouse, on the first build of each UTC day (the day of the run's data
  interval end, else of the run; decided from the builds recorded in `oms.atp_snapshot`, so a
  backfill's runs, taken in order, choose the same whenever they run) and on the first build after
  the dbt project's code changed (that build deploys a changed view).
- `atp_build_changed` — every other build: the tables and incremental models, and the data tests
  of the models rebuilt from what lands (order and ERP stock staging on the landed slice, the
  incremental marts, the ledger's holds, the customer marts). The views (over raw tables and
  incremental models, which an incremental build does not drop) stay as the day's full build made
  them, and the data tests that read reference data only (locations, SKUs, channels, safety-stock
  rules and the dimensions built from them) wait for it.
"""


@dag(
    dag_id="atp_build",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(schedules.cron("atp_build"), timezone="UTC"),
        assets=RAW_ERP_STOCK | RAW_MAGENTO_ORDER,
    ),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args("analytics-engineering", retries=2, retry_delay=timedelta(seconds=30),
                              exponential_backoff=False),
    tags=["transform", "dbt", "atp"],
    doc_md=DOC,
    # Trigger with {"full_refresh": true} to rebuild the incremental models whole (same rows as
    # the incremental runs: tests/test_incremental.py).
    params={"full_refresh": Param(False, type="boolean", description="rebuild incremental models whole")},
)
def atp_build():
    @task(outlets=[ATP_MARTS])
    def dbt_build_atp(run_id=None, data_interval_end=None, params=None) -> dict:
        from oms.tasks import atp_build as tasks

        return tasks.dbt_build_atp(run_id, data_interval_end, full_refresh=bool((params or {}).get("full_refresh")))

    dbt_build_atp()


atp_build()
