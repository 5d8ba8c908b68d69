"""Exchanges: a return whose customer takes another SKU (size, colour) instead of a refund.

The replacement is an order of its own, '<original>-EX<return_id>', routed like any order with
oms.routing.service.route_order — as click & collect at the store where the customer stands, so
that store's stock comes first (the engine ships the missing lines there from other locations
when it lacks them). An allocating decision reserves its lines at the chosen locations in the same
transaction as the decision, and gets its store tasks (oms.fulfilment.tasks: a pickup task at the
store, transfer tasks at the stores that send missing lines) like any routed order, so the
replacement really goes out: handed over (picked up), its reservation becomes a collection
posting for the ERP; not collected in time (pickup_expired), its reservation is released. The
link is oms.return_exchange.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import psycopg
from psycopg.types.json import Jsonb

from oms.fulfilment import tasks
from oms.inventory import reservations
from oms.routing.model import Decision, Order, OrderLine
from oms.routing.service import route_order


def exchange_order(conn: psycopg.Connection, return_id: int, now: datetime) -> Order:
    ret = conn.execute("SELECT * FROM oms.customer_return WHERE return_id = %s", (return_id,)).fetchone()
    lines = [OrderLine(line_key=f"EX{return_id}-{i}", sku=x["sku"], qty=float(Decimal(str(x["qty"]))))
             for i, x in enumerate(ret["request"]["exchange"], start=1)]
    return Order(increment_id=f"{ret['order_increment_id']}-EX{return_id}", country_code=ret["country_code"],
                 lines=lines, pickup_store_id=ret["store_id"], shipping_method="instore_pickup",
                 payment_releasable=True, created_at=now)


def _reserve(conn: psycopg.Connection, decision: Decision) -> bool:
    for a in decision.allocations:
        result = reservations.reserve(conn, decision.order_increment_id, a.line_key, decision.country_code, a.sku,
                                      a.qty, a.store_id, reason="exchange")
        if not result.ok:
            return False
    return True


def create_exchange(conn: psycopg.Connection, return_id: int, now: datetime | None = None) -> dict:
    now = now or datetime.now(UTC)
    order = exchange_order(conn, return_id, now)
    routed = route_order(conn, order, now, reserve=_reserve, run_id=f"exchange:{return_id}")
    tasks.create_for_decision(conn, routed.decision_id, routed.decision)
    row = conn.execute(
        """INSERT INTO oms.return_exchange (return_id, exchange_increment_id, lines, routing_outcome,
                                            routing_decision_id)
           VALUES (%s, %s, %s, %s, %s) ON CONFLICT (return_id) DO NOTHING RETURNING *""",
        (return_id, order.increment_id, Jsonb([x.model_dump() for x in order.lines]), routed.decision.outcome,
         routed.decision_id)).fetchone()
    return row
