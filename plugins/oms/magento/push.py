"""Magento orders pushed to the platform (POST /v1/magento/orders): land, gate, reserve — one transaction.

What an Adobe Commerce webhook on order save, or a small observer module, sends: one order or a
list, each in the shape of Magento's GET /V1/orders/{id}. Each order goes the pull's way
(oms.tasks.magento_orders_ingest) in one transaction: landed as received in raw.magento_order, one
row per version (entity_id, updated_at), so the same version again changes nothing and the
10-minute pull, which remains the backstop, lands nothing twice; the same quarantine / exception
gate (oms.validation.magento_orders.gate_versions; the pull's watermark is left alone); then its
stock lines are reserved (oms.inventory.order_demand). Every order is answered on its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from oms.inventory import order_demand
from oms.magento.landing import land_orders, order_record_key, parse_int, text_or_none, version_key
from oms.validation.magento_orders import SOURCE, gate_versions

MAX_ORDERS = 500


class PushError(ValueError):
    """The body as a whole is not one order or a list of orders (answered 422, nothing kept)."""


def orders_from_body(body: Any) -> list[Any]:
    if isinstance(body, dict):
        return [body]
    if isinstance(body, list):
        if not body:
            raise PushError("the list is empty: send at least one order")
        if len(body) > MAX_ORDERS:
            raise PushError(f"at most {MAX_ORDERS} orders per request, got {len(body)}: split the list")
        return body
    raise PushError("the body must be an order object (GET /V1/orders/{id} shape) or a list of them")


@dataclass
class OrderAnswer:
    index: int
    record_key: str
    entity_id: int | None
    increment_id: str | None
    updated_at: datetime | None
    status: str                       # landed | replaced | duplicate | quarantined
    quarantine: list[dict[str, str]] = field(default_factory=list)
    exceptions: list[dict[str, str]] = field(default_factory=list)
    lines: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class PushResult:
    batch_id: str
    orders: list[OrderAnswer]

    def count(self, status: str) -> int:
        return sum(1 for o in self.orders if o.status == status)


def receive(conn: psycopg.Connection, orders: list[Any], now: datetime, payment_timeout: timedelta,
            batch_id: str | None = None) -> PushResult:
    """Land, gate and reserve the orders on the caller's transaction; one answer per order."""
    batch_id = batch_id or f"magento_push/{uuid.uuid4().hex}"
    keys = [order_record_key(o) for o in orders]
    before = {r["record_key"]: r["same"] for r in conn.execute(
        """SELECT m.record_key, m.payload = x.payload AS same
           FROM raw.magento_order m
           JOIN jsonb_to_recordset(%s) AS x (record_key text, payload jsonb) USING (record_key)""",
        (Jsonb([{"record_key": k, "payload": o} for k, o in zip(keys, orders, strict=True)]),)).fetchall()}
    landed = land_orders(conn, orders, batch_id, now, now, None)
    gate_versions(conn, batch_id, sorted(set(keys)), payment_timeout, now)
    quarantined: dict[str, list[dict[str, str]]] = {}
    for r in conn.execute("SELECT record_key, reason, detail FROM raw.quarantine WHERE source = %s"
                          " AND record_key = ANY(%s) AND resolved_at IS NULL ORDER BY reason",
                          (SOURCE, keys)).fetchall():
        quarantined.setdefault(r["record_key"], []).append({"reason": r["reason"], "detail": r["detail"]})
    exceptions: dict[str, list[dict[str, str]]] = {}
    for r in conn.execute("SELECT record_key, reason, detail FROM oms.order_exception"
                          " WHERE record_key = ANY(%s) AND resolved_at IS NULL ORDER BY reason", (keys,)).fetchall():
        exceptions.setdefault(r["record_key"], []).append({"reason": r["reason"], "detail": r["detail"]})

    results = order_demand.reserve_orders(conn, landed.entity_ids)
    lines: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        lines.setdefault(result.demand.order_increment_id, []).append({
            "line_key": result.demand.line_key, "sku": result.demand.sku, "store_id": result.demand.pickup_store_id,
            "target_qty": Decimal(str(result.demand.open_qty)) if result.demand.is_open else Decimal(0),
            "status": result.status, "reserved_qty": result.reserved_qty, "shortfall_qty": result.shortfall_qty,
            "error": result.error})

    answers = []
    for index, (order, key) in enumerate(zip(orders, keys, strict=True)):
        fields = order if isinstance(order, dict) else {}
        version = version_key(order)
        increment_id = text_or_none(fields.get("increment_id"))
        if key in quarantined:
            status = "quarantined"
        elif key not in before:
            status = "landed"
        else:
            status = "duplicate" if before[key] else "replaced"
        answers.append(OrderAnswer(
            index=index, record_key=key, entity_id=parse_int(fields.get("entity_id")), increment_id=increment_id,
            updated_at=version[1] if version else None, status=status, quarantine=quarantined.get(key, []),
            exceptions=exceptions.get(key, []),
            lines=[] if status == "quarantined" else lines.get(increment_id or "", [])))
    return PushResult(batch_id=batch_id, orders=answers)
