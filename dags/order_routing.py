"""Order routing: every releasable order to its fulfilment location(s), reserved, with store tasks."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from oms import schedules
from oms.assets import ATP_MARTS, ROUTING_DECISIONS
from oms.dag_defaults import default_args

DOC = """
### Order routing
Runs after each ATP / order marts build (the `marts.atp` asset: orders synced, reservations
brought to their demand) and every 15 minutes. Routes every releasable order not routed yet
(paid or authorised, or cash on delivery; pending payment, payment review and held orders wait)
with the country's active routing profile, at the run's **data interval end** — a re-run decides
the same and routes nothing twice. Each allocation reserves at its location through the inventory
ledger and becomes a store task (`oms.fulfilment_task`). Held and backordered orders are tried
again next run; `cancel_after_days` counts from the order's creation.
Then expires click & collect orders not collected in time (`OMS_PICKUP_EXPIRY_DAYS`, 3) and
releases their stock. Decisions: `oms routing explain <order>` or `GET /v1/routing/decisions/<order>`.
"""


@dag(
    dag_id="order_routing",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(schedules.cron("order_routing"), timezone="UTC"),
        assets=ATP_MARTS,
    ),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args("fulfilment", retries=2, retry_delay=timedelta(seconds=30)),
    tags=["fulfilment", "routing"],
    doc_md=DOC,
)
def order_routing():
    @task(outlets=[ROUTING_DECISIONS])
    def route_orders(dag_run=None) -> dict:
        from oms.tasks import order_routing as tasks

        return tasks.route_orders(dag_run)

    @task
    def expire_pickups(dag_run=None) -> dict:
        from oms.tasks import order_routing as tasks

        return tasks.expire_pickups(dag_run)

    route_orders() >> expire_pickups()


order_routing()
