"""The magento_orders_ingest DAG's tasks: plan a data interval's pulls, land each channel's orders,
then gate the window.

A run pulls one partition per active channel with a Magento store id (`store_id in (…)`) and one
for every other store (`store_id nin (…)`), so each order is pulled exactly once per window and an
order of a store no active channel maps is still landed (and raised as 'unknown_channel').

Each pull reads [fetch_start, end): fetch_start is the interval's start less the overlap, or, when
windows were skipped since the last validated one (the platform was down and the DAG does not
catch up), that watermark less the overlap, so the first run after an outage covers it.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from oms.integrations.connections import magento_client, warehouse_dsn
from oms.integrations.magento import MagentoClient
from oms.inventory import order_demand
from oms.magento.landing import land_orders
from oms.settings import Settings
from oms.validation.magento_orders import read_watermark, validate_window
from oms.warehouse import connect

log = logging.getLogger(__name__)


def batch_id_for(start: datetime, end: datetime) -> str:
    """Deterministic per window, so a re-run of the window reuses its batch id."""
    return f"magento_order/{start:%Y%m%dT%H%M%SZ}-{end:%Y%m%dT%H%M%SZ}"


def fetch_start_for(watermark: datetime | None, start: datetime, overlap: timedelta) -> datetime:
    begin = watermark if watermark is not None and watermark < start else start
    return begin - overlap


def plan_pulls(dsn: str, start: datetime, end: datetime, settings: Settings | None = None) -> list[dict[str, Any]]:
    """The run's pulls, read from ref.channel at run time: one per mapped active channel, plus the rest."""
    settings = settings or Settings()
    with connect(dsn) as conn:
        active = conn.execute(
            "SELECT channel_code, magento_store_id FROM ref.channel WHERE active ORDER BY channel_code"
        ).fetchall()
        watermark = read_watermark(conn)
    channels = [c for c in active if c["magento_store_id"] is not None]
    for unmapped in (c["channel_code"] for c in active if c["magento_store_id"] is None):
        log.warning("channel %s has no magento_store_id: its orders land as 'unknown_channel' exceptions"
                    " until `oms channel add … --store-id` maps it", unmapped)
    fetch_start = fetch_start_for(watermark, start, timedelta(minutes=settings.magento_overlap_minutes))
    window = {"fetch_start": fetch_start.isoformat(), "end": end.isoformat()}
    pulls = [
        {"label": c["channel_code"], "channel_code": c["channel_code"], "store_ids": [c["magento_store_id"]],
         "exclude_store_ids": None, **window}
        for c in channels
    ]
    mapped = sorted(c["magento_store_id"] for c in channels)
    pulls.append({"label": "unmapped_stores", "channel_code": None, "store_ids": None,
                  "exclude_store_ids": mapped, **window})
    return pulls


def land(
    dsn: str, magento: MagentoClient, pull: dict[str, Any], start: datetime, end: datetime,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Land one partition of the window in one transaction: it lands whole or not at all, and
    its orders' stock lines are reserved in the same transaction (oms.inventory.order_demand)."""
    settings = settings or Settings()
    batch_id = batch_id_for(start, end)
    fetch_start = datetime.fromisoformat(pull["fetch_start"])
    orders = magento.iter_orders_updated(
        fetch_start, end, settings.magento_page_size,
        store_ids=pull["store_ids"], exclude_store_ids=pull["exclude_store_ids"],
    )
    with connect(dsn) as conn:
        result = land_orders(conn, orders, batch_id, start, end, pull["channel_code"])
        reserved = order_demand.reserve_orders(conn, result.entity_ids)
    return {"label": pull["label"], "fetch_start": pull["fetch_start"], "received": result.received,
            "inserted": result.inserted, "replaced": result.replaced,
            "reservations": order_demand.summary(reserved)}


def validate(
    dsn: str, start: datetime, end: datetime, landed: list[dict[str, Any]], settings: Settings | None = None,
) -> dict[str, Any]:
    settings = settings or Settings()
    batch_id = batch_id_for(start, end)
    fetch_start = min((datetime.fromisoformat(pull["fetch_start"]) for pull in landed), default=start)
    with connect(dsn) as conn:
        result = validate_window(conn, batch_id, start, end, fetch_start,
                                 timedelta(minutes=settings.payment_timeout_minutes))
    return {
        "batch_id": batch_id,
        "fetched_from": fetch_start.isoformat(),
        "received": sum(pull["received"] for pull in landed),
        "inserted": sum(pull["inserted"] for pull in landed),
        "replaced": sum(pull["replaced"] for pull in landed),
        "checked": result.checked,
        "quarantined_records": result.quarantined_records,
        "quarantine_by_reason": result.quarantine_by_reason,
        "orders_checked": result.orders_checked,
        "orders_with_exceptions": result.orders_with_exceptions,
        "exceptions_by_reason": result.exceptions_by_reason,
        "exceptions_opened": result.exceptions_opened,
        "exceptions_resolved": result.exceptions_resolved,
        "exceptions_as_of": result.as_of.isoformat() if result.as_of else None,
    }


def plan_interval_pulls(start: datetime, end: datetime) -> list[dict[str, Any]]:
    return plan_pulls(warehouse_dsn(), start, end)


def land_pull(pull: dict[str, Any], start: datetime, end: datetime) -> dict[str, Any]:
    with magento_client() as magento:
        return land(warehouse_dsn(), magento, pull, start, end)


def validate_interval(landed: list[dict[str, Any]], start: datetime, end: datetime) -> dict[str, Any]:
    return validate(warehouse_dsn(), start, end, landed)
