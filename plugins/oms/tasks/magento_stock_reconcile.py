"""The magento_stock_reconcile DAG's tasks: Magento's salable quantities against ours, and the drift
published again."""

from __future__ import annotations

from typing import Any

from oms.integrations.connections import magento_client, warehouse_dsn
from oms.publishing.reconcile import reconcile
from oms.tasks import wait_for_atp_build
from oms.tasks.magento_stock_publish import publish_source_items


def compare_salable_quantities(run_id: str | None) -> dict[str, Any]:
    dsn = warehouse_dsn()
    wait_for_atp_build(dsn)  # our side of the comparison is the ATP marts
    with magento_client() as magento:
        return reconcile(dsn, magento, run_id=run_id).as_dict()


def republish_drift(report: dict[str, Any], run_id: str | None) -> dict[str, Any]:
    if not report["drifting"]:
        return {"republished": 0}
    return publish_source_items(run_id)
