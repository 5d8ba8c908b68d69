"""ERP store-wise stock → raw.erp_stock, gated by Great Expectations (bad rows → quarantine)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import CronDataIntervalTimetable, dag, task

from oms import schedules
from oms.assets import RAW_ERP_STOCK
from oms.dag_defaults import default_args

DOC = """
### ERP stock ingestion
Pulls the ERP's store-wise stock rows changed within the run's **data interval**
(`lastModifiedDateTime ≥ start and < end`), lands them as received in `raw.erp_stock`
(idempotent on each row's content), then validates the window with
Great Expectations: rows with missing keys, non-numeric or negative quantities, or unknown
stores/SKUs go to `raw.quarantine` with the reason and the payload. Emits `raw.erp_stock`, which
schedules `atp_build`. Backfill any range with `oms backfill` / `airflow backfill create`.
"""


@dag(
    dag_id="erp_stock_ingest",
    schedule=CronDataIntervalTimetable(schedules.cron("erp_stock_ingest"), timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args("data-engineering"),
    tags=["ingest", "erp", "stock"],
    doc_md=DOC,
)
def erp_stock_ingest():
    @task
    def land(data_interval_start=None, data_interval_end=None) -> dict:
        from oms.tasks import erp_stock_ingest as tasks

        return tasks.land_interval(data_interval_start, data_interval_end)

    @task(outlets=[RAW_ERP_STOCK])
    def validate(landed: dict, data_interval_start=None, data_interval_end=None) -> dict:
        from oms.tasks import erp_stock_ingest as tasks

        return tasks.validate_interval(landed, data_interval_start, data_interval_end)

    validate(land())


erp_stock_ingest()
