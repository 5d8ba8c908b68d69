"""The tasks of the clickpost_tracking DAG and its backstop: scans to Magento comments, and the
updated-order feed that catches a webhook that never arrived."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from oms.integrations.connections import clickpost_client, magento_client, warehouse_dsn
from oms.shipping import postings, tracking
from oms.warehouse import connect

FEED_OVERLAP = timedelta(minutes=5)   # re-read scans are deduplicated: the overlap costs nothing


def push_to_magento() -> dict[str, Any]:
    with connect(warehouse_dsn()) as conn, magento_client() as magento:
        # stock first: a parcel that left is a sales posting before anything else reads it
        # (an RTO restock after it, the Magento comments)
        posted = postings.post_shipped(conn)
        conn.commit()
        pushed = tracking.push_to_magento(conn, magento)
        conn.commit()
        return {"sales_postings": posted, **pushed, **tracking.settle_returns(conn)}


def read_updated_orders(data_interval_start: datetime, data_interval_end: datetime) -> dict[str, Any]:
    """The feed over the run's data interval, from FEED_OVERLAP before its start (late commits at Clickpost)."""
    with connect(warehouse_dsn()) as conn, clickpost_client() as clickpost:
        return tracking.read_feed(conn, clickpost, data_interval_start - FEED_OVERLAP, data_interval_end)
