"""Daily reconciliation of the ERP's stock per store and SKU with what the platform expects."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import CronTriggerTimetable, dag, task

from oms import schedules
from oms.dag_defaults import default_args

DOC = """
### ERP ↔ platform reconciliation
Once a day reads the ERP's whole store-wise stock (`locationInventory`) and compares each
(store, SKU) with what the platform expects: live on hand (last snapshot + accepted ERP movements
since) − units of sales postings the ERP has not settled + restocked returns it has not settled.
Each difference lands in `oms.erp_reconciliation` with its likely cause (unacknowledged_posting,
missing_movement, unexplained); the run's summary in `oms.erp_reconciliation_run`. Postings the
ERP has not acknowledged for longer than `OMS_POSTING_ACK_STALE_HOURS` (24) raise an alert.
Shown in `GET /v1/pipeline/health` and the `fct_erp_reconciliation_daily` KPI mart.
docs/inventory-ledger.md.
"""


@dag(
    dag_id="erp_reconciliation",
    schedule=CronTriggerTimetable(schedules.cron("erp_reconciliation"), timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args("data-engineering", retries=2, retry_delay=timedelta(minutes=5)),
    tags=["reconcile", "erp", "stock"],
    doc_md=DOC,
)
def erp_reconciliation():
    @task
    def reconcile(run_id=None, logical_date=None) -> dict:
        from oms.tasks import erp_reconciliation as tasks

        return tasks.reconcile_day(logical_date, run_id)

    reconcile()


erp_reconciliation()
