"""The magento_stock_publish DAG's task: the ATP delta to Magento's source items."""

from __future__ import annotations

from typing import Any

from oms.integrations.connections import magento_client, magento_publish_options, warehouse_dsn
from oms.publishing.publisher import publish


def publish_source_items(run_id: str | None) -> dict[str, Any]:
    with magento_client() as magento:
        return publish(warehouse_dsn(), magento, run_id=run_id, **magento_publish_options()).as_dict()
