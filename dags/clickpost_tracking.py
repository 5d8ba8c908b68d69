"""Clickpost tracking to Magento: pushed when the API records a new webhook scan, and a backstop
that reads Clickpost's updated-order feed so a missed webhook is caught."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import AssetOrTimeSchedule, CronDataIntervalTimetable, CronTriggerTimetable, dag, task

from oms.assets import SHIPMENT_TRACKING
from oms.dag_defaults import default_args

FEED_OVERLAP = timedelta(minutes=5)   # re-read scans are deduplicated: the overlap costs nothing
DEFAULT_ARGS = default_args("fulfilment")


def _push() -> dict:
    from oms.airflow_links import warehouse_dsn
    from oms.shipping import postings, tracking
    from oms.shipping.links import magento_sales_client
    from oms.warehouse import connect

    with connect(warehouse_dsn()) as conn, magento_sales_client() as magento:
        # stock first: a parcel that left is a sales posting before anything else reads it
        # (an RTO restock after it, the Magento comments)
        posted = postings.post_shipped(conn)
        conn.commit()
        pushed = tracking.push_to_magento(conn, magento)
        conn.commit()
        return {"sales_postings": posted, **pushed, **tracking.settle_returns(conn)}


@dag(
    dag_id="clickpost_tracking",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("*/10 * * * *", timezone="UTC"),
                                 assets=SHIPMENT_TRACKING),
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
        return _push()

    push_to_magento()


@dag(
    dag_id="clickpost_tracking_backstop",
    schedule=CronDataIntervalTimetable("*/15 * * * *", timezone="UTC"),
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
        from oms.airflow_links import warehouse_dsn
        from oms.shipping import tracking
        from oms.shipping.links import clickpost_client
        from oms.warehouse import connect

        with connect(warehouse_dsn()) as conn, clickpost_client() as clickpost:
            return tracking.read_feed(conn, clickpost, data_interval_start - FEED_OVERLAP, data_interval_end)

    @task
    def push_to_magento() -> dict:
        return _push()

    read_updated_orders() >> push_to_magento()


clickpost_tracking()
clickpost_tracking_backstop()
