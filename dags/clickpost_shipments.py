"""Invoiced orders to Clickpost shipments and Magento shipments, each exactly once (oms.shipment)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from oms import schedules
from oms.assets import RAW_MAGENTO_ORDER, ROUTING_DECISIONS
from oms.dag_defaults import default_args

DOC = """
### Clickpost shipments
For every order Magento has invoiced (the landed order's `total_invoiced` > 0; cash-on-delivery
orders once routed) with an allocating routing decision: one Clickpost order per shipped location
(`reference_number` = order-store-sequence), the courier from Clickpost's recommendation API, v4
bodies for the GCC countries. The shipment row (`oms.shipment`) is written before each call; 200 and 323 (already
placed) are success. Then the label PDF, then `POST /V1/order/{id}/ship` with the AWB track and the
MSI source, after checking `GET /V1/shipments` for a shipment already carrying the AWB.
`OMS_SHIPPING_CRASH_AT` injects a crash between steps (docs/shipping.md).
"""


@dag(
    dag_id="clickpost_shipments",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(schedules.cron("clickpost_shipments"), timezone="UTC"),
        assets=RAW_MAGENTO_ORDER | ROUTING_DECISIONS,
    ),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args("fulfilment"),
    tags=["fulfilment", "clickpost", "magento"],
    doc_md=DOC,
)
def clickpost_shipments():
    @task
    def plan_shipments(data_interval_end=None) -> dict:
        from oms.tasks import clickpost_shipments as tasks

        return tasks.plan_shipments(data_interval_end)

    @task
    def create_clickpost_orders() -> dict:
        from oms.tasks import clickpost_shipments as tasks

        return tasks.create_clickpost_orders()

    @task
    def ship_in_magento() -> dict:
        from oms.tasks import clickpost_shipments as tasks

        return tasks.ship_in_magento()

    plan_shipments() >> create_clickpost_orders() >> ship_in_magento()


clickpost_shipments()
