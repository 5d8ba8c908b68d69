"""Clickpost tracking to Magento: pushed when the API records a new webhook scan, and a backstop
that reads Clickpost's updated-order feed so a missed webhook is caught."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import AssetOrTimeSchedule, CronDataIntervalTimetable, CronTriggerTimetable, dag, task

from oms import schedules
from oms.assets import SHIPMENT_TRACKING
from oms.dag_defaults import default_args

DEFAULT_ARGS = default_args("fulfilment")


@dag(
    dag_id="clickpost_tracking",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(schedules.cron("clickpost_tracking"), timezone="UTC"),
        assets=SHIPMENT_TRACKING,
    ),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["fulfilment", "clickpost", "magento", "tracking"],
    doc_md="""
### Clickpost tracking → Magento
Runs on `oms.shipment_event` (the API's asset event after a webhook brought a new scan) and every
10 minutes. Each shipment milestone (shipped, out for delivery, delivered, failed delivery with the
NDR reason, RTO, …) becomes one Magento order comment, exactly once (`oms.shipment_magento_push`:
intent row, then the order's comments are searched for the marker before posting). First, every
parcel whose scans say it has left (picked up or later) has its lines moved from their reservations
to `shipment` sales postings for the ERP, once per line (`oms.shipping.postings`).
""",
)
def clickpost_tracking():
    @task
    def push_to_magento() -> dict:
        from oms.tasks import clickpost_tracking as tasks

        return tasks.push_to_magento()

    push_to_magento()


@dag(
    dag_id="clickpost_tracking_backstop",
    schedule=CronDataIntervalTimetable(schedules.cron("clickpost_tracking_backstop"), timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["fulfilment", "clickpost", "tracking"],
    doc_md="""
### Clickpost tracking backstop
Reads Clickpost's updated-order feed (`/api/v1/updated-order/`, windows of at most 30 minutes) over
the run's data interval (from 5 minutes before its start: late commits at Clickpost) and records its rows through the same raw store and dedupe as the webhooks,
then pushes to Magento. A webhook that never arrived is caught here.
""",
)
def clickpost_tracking_backstop():
    @task
    def read_updated_orders(data_interval_start=None, data_interval_end=None) -> dict:
        from oms.tasks import clickpost_tracking as tasks

        return tasks.read_updated_orders(data_interval_start, data_interval_end)

    @task
    def push_to_magento() -> dict:
        from oms.tasks import clickpost_tracking as tasks

        return tasks.push_to_magento()

    read_updated_orders() >> push_to_magento()


clickpost_tracking()
clickpost_tracking_backstop()
