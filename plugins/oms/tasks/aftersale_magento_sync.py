"""The aftersale_magento_sync DAG's tasks: Magento credit memos and comments, Clickpost reverse pickups."""

from __future__ import annotations

from typing import Any

from oms.aftersale.magento_sync import send_pending
from oms.aftersale.rvp import book_pickups
from oms.integrations.connections import clickpost_client, magento_client, warehouse_dsn


def send_magento_outbox() -> dict[str, Any]:
    with magento_client() as magento:
        return send_pending(warehouse_dsn(), magento)


def book_reverse_pickups() -> dict[str, Any]:
    with clickpost_client() as clickpost:
        return book_pickups(warehouse_dsn(), clickpost)
