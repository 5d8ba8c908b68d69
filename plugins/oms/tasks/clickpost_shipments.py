"""The clickpost_shipments DAG's tasks: plan, create at Clickpost (with labels), ship in Magento."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from oms.integrations.connections import clickpost_client, magento_client, warehouse_dsn
from oms.shipping import shipments
from oms.warehouse import connect


def plan_shipments(data_interval_end: datetime | None) -> dict[str, Any]:
    with connect(warehouse_dsn()) as conn, clickpost_client() as clickpost:
        return shipments.plan_shipments(conn, clickpost, data_interval_end).as_dict()


def create_clickpost_orders() -> dict[str, Any]:
    with connect(warehouse_dsn()) as conn, clickpost_client() as clickpost:
        report = shipments.manifest(conn, clickpost)
        shipments.fetch_labels(conn, clickpost, report=report)
        return report.as_dict()


def ship_in_magento() -> dict[str, Any]:
    with connect(warehouse_dsn()) as conn, magento_client() as magento:
        return shipments.ship_to_magento(conn, magento).as_dict()
