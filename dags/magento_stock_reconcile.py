"""Daily reconciliation of Magento's salable quantities with the platform's channel ATP."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import CronTriggerTimetable, dag, task

from oms import schedules
from oms.dag_defaults import default_args

DOC = """
### Magento stock reconciliation
Once a day reads Magento's salable quantity per (SKU, stock) — `GET /V1/inventory/get-product-salable-quantity`
— and compares it with `marts.fct_atp_country`. Each drift is recorded in `oms.stock_drift` (expected,
Magento's value, difference) and repaired: the ledger rows of the drifting SKU's sources in that
channel are forgotten and a publish re-sends them. The report (checked, drifting, unreadable per
channel) is the task's return value.
"""


@dag(
    dag_id="magento_stock_reconcile",
    schedule=CronTriggerTimetable(schedules.cron("magento_stock_reconcile"), timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args("integrations", retries=2, retry_delay=timedelta(minutes=5), exponential_backoff=False),
    tags=["reconcile", "magento", "stock"],
    doc_md=DOC,
)
def magento_stock_reconcile():
    @task
    def compare_salable_quantities(run_id=None) -> dict:
        from oms.tasks import magento_stock_reconcile as tasks

        return tasks.compare_salable_quantities(run_id)

    @task
    def republish_drift(report: dict, run_id=None) -> dict:
        from oms.tasks import magento_stock_reconcile as tasks

        return tasks.republish_drift(report, run_id)

    republish_drift(compare_salable_quantities())


magento_stock_reconcile()
