"""dbt: the fulfilment KPI marts, after every ATP/order build and hourly."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from oms import schedules
from oms.assets import KPI_MARTS, ROUTING_DECISIONS
from oms.dag_defaults import default_args

DOC = """
### KPI build
Rebuilds the fulfilment KPI marts (`marts.fct_order_fulfilment`, `marts.fct_fulfilment_daily`,
`marts.fct_promise_accuracy_daily`, `marts.fct_data_quality_daily`) and their tests whenever the
order routing ran after an order/ATP build (`oms.routing_decision`), and at half past every hour so routing decisions,
publish lag and reconciliation drift recorded between order runs reach the KPI page.
Read by `GET /v1/kpis` and the KPI page `GET /dashboard` (dbt exposure `kpi_dashboard`).
"""


@dag(
    dag_id="kpi_build",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(schedules.cron("kpi_build"), timezone="UTC"),
        assets=ROUTING_DECISIONS,
    ),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args("analytics-engineering", retries=2, retry_delay=timedelta(seconds=30)),
    tags=["transform", "dbt", "kpis"],
    doc_md=DOC,
)
def kpi_build():
    @task(outlets=[KPI_MARTS])
    def dbt_build_kpis() -> dict:
        from oms.tasks import kpi_build as tasks

        return tasks.dbt_build_kpis()

    dbt_build_kpis()


kpi_build()
