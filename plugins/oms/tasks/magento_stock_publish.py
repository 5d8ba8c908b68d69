"""The magento_stock_publish DAG's task: the ATP delta to Magento's source items."""

from __future__ import annotations

from typing import Any

from oms.integrations.connections import magento_client, magento_publish_options, warehouse_dsn
from oms.inventory import order_demand
from oms.publishing.publisher import publish
from oms.tasks import wait_for_atp_build
from oms.warehouse import connect


def publish_source_items(run_id: str | None) -> dict[str, Any]:
    dsn = warehouse_dsn()
    wait_for_atp_build(dsn)  # what to publish is read from the ATP marts
    # Units an ERP movement brought in go to the lines waiting for them before Magento is offered
    # them: a backordered line's claim is older than the next checkout's.
    with connect(dsn) as conn:
        short = order_demand.short_orders(conn)
    refilled = order_demand.summary(order_demand.reserve_in_batches(dsn, short))
    with magento_client() as magento:
        return {**publish(dsn, magento, run_id=run_id, **magento_publish_options()).as_dict(),
                "shortfalls_refilled": refilled}
