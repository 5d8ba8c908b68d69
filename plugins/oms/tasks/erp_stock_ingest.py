"""The erp_stock_ingest DAG's tasks: land a data interval's ERP stock changes, then gate them with
Great Expectations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from oms.erp.landing import land_stock_rows
from oms.integrations.connections import erp_client, warehouse_dsn
from oms.integrations.erp import ErpClient
from oms.validation.erp_stock import validate_window
from oms.warehouse import connect


def batch_id_for(start: datetime, end: datetime) -> str:
    """Deterministic per window, so a re-run of the window reuses its batch id."""
    return f"erp_stock/{start:%Y%m%dT%H%M%SZ}-{end:%Y%m%dT%H%M%SZ}"


def land(dsn: str, erp: ErpClient, start: datetime, end: datetime) -> dict[str, Any]:
    batch_id = batch_id_for(start, end)
    with connect(dsn) as conn:  # one transaction: the window lands whole or not at all
        result = land_stock_rows(conn, erp.iter_stock_changes(start, end), batch_id, start, end)
    return {"batch_id": batch_id, "received": result.received, "inserted": result.inserted}


def validate(dsn: str, start: datetime, end: datetime) -> dict[str, Any]:
    batch_id = batch_id_for(start, end)
    with connect(dsn) as conn:
        result = validate_window(conn, batch_id, start, end)
    return {
        "batch_id": batch_id,
        "checked": result.checked,
        "quarantined_records": result.quarantined_records,
        "by_reason": result.by_reason,
        "resolved": result.resolved,
        "passed": result.checked - result.quarantined_records,
    }


def land_interval(start: datetime, end: datetime) -> dict[str, Any]:
    with erp_client() as erp:
        return land(warehouse_dsn(), erp, start, end)


def validate_interval(landed: dict[str, Any], start: datetime, end: datetime) -> dict[str, Any]:
    return {**landed, **validate(warehouse_dsn(), start, end)}
