"""Stock out to Magento MSI: delta publish per (sku, source) whenever the ATP marts are rebuilt."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from oms import schedules
from oms.assets import ATP_MARTS, ERP_MOVEMENTS
from oms.dag_defaults import default_args

DOC = """
### Magento stock publish
Runs when `atp_build` emits `marts.atp`, when the API records ERP movements (`oms.erp_movement`, an
asset event sent through Airflow's REST API), and every 30 minutes as a safety net. Values are live
(last snapshot + movements and reservations since), so an ERP movement reaches Magento in seconds. Computes what Magento
should hold per (sku, MSI source) under each channel's publishing contract (`ref.channel.publish_mode`:
*physical* — on hand less safety stock, Magento's reservations hold open orders; *sellable* — ATP,
Magento's reservations off) and sends only what differs from the **publish ledger**
(`oms.publish_ledger`: the last value Magento accepted). Chunks of `chunk_size` (20 with Magento's
input limiting on) or the async bulk API (connection extra `publish_transport: async_bulk`). Retries on
5xx/429/timeouts; a chunk Magento did not accept leaves the ledger unchanged and fails the task, so
the retry sends exactly the rest. Attempts are in `oms.publish_attempt`.
"""


@dag(
    dag_id="magento_stock_publish",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(schedules.cron("magento_stock_publish"), timezone="UTC"),
        assets=ATP_MARTS | ERP_MOVEMENTS,
    ),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args("integrations"),
    tags=["publish", "magento", "stock"],
    doc_md=DOC,
)
def magento_stock_publish():
    @task
    def publish_source_items(run_id=None) -> dict:
        from oms.tasks import magento_stock_publish as tasks

        return tasks.publish_source_items(run_id)

    publish_source_items()


magento_stock_publish()
