"""Routable orders from the order marts, as the routing engine's `Order`.

Lines: stock lines (`requires_fulfilment`) of known SKUs (`is_known_sku`; an unknown SKU is an
order exception and is skipped until merchandising adds it) with units still open. Orders whose
open exception makes routing meaningless (no channel, an unusable pickup store, no shipping
address) wait for people (docs/exceptions.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg.rows import dict_row

from oms.routing.engine import is_releasable
from oms.routing.model import Order, OrderLine

BLOCKING_EXCEPTIONS = ("unknown_channel", "unknown_pickup_location", "pickup_location_not_enabled",
                       "missing_shipping_address")
# Latest decision outcomes that the next routing run tries again.
RETRIED_OUTCOMES = ("held", "backordered")

ORDERS_SQL = """
SELECT o.increment_id, o.country_code, o.channel_code, o.state, o.payment_method, o.shipping_method,
       o.pickup_store_id, o.is_click_and_collect, greatest(coalesce(o.grand_total, 0), 0)::float8 AS order_value,
       o.ship_to_city, o.created_at,
       json_agg(json_build_object('line_key', l.line_key, 'sku', l.sku, 'qty', l.qty_open::float8,
                                  'category', s.category, 'weight_g', s.weight_g) ORDER BY l.line_key) AS lines
FROM marts.fct_orders o
JOIN marts.fct_order_lines l ON l.increment_id = o.increment_id
JOIN ref.sku s ON s.sku = l.sku
WHERE o.country_code IS NOT NULL AND l.requires_fulfilment AND l.is_known_sku AND l.qty_open > 0
  AND {where}
GROUP BY o.increment_id, o.country_code, o.channel_code, o.state, o.payment_method, o.shipping_method,
         o.pickup_store_id, o.is_click_and_collect, o.grand_total, o.ship_to_city, o.created_at
ORDER BY o.created_at, o.increment_id
"""

# Releasable (paid/authorised, or cash on delivery: fct_orders' ready_to_fulfil), not decided by
# this run yet, and either never routed or last held / backordered. pending_payment,
# payment_review and holded orders are not ready_to_fulfil: they wait, with nothing decided.
PENDING_WHERE = f"""
o.fulfilment_status = 'ready_to_fulfil'
AND NOT (o.is_click_and_collect AND o.pickup_store_id IS NULL)
AND NOT EXISTS (SELECT 1 FROM oms.order_exception e
                WHERE e.increment_id = o.increment_id AND e.resolved_at IS NULL
                  AND e.reason IN ({", ".join(f"'{r}'" for r in BLOCKING_EXCEPTIONS)}))
AND NOT EXISTS (SELECT 1 FROM oms.routing_decision d
                WHERE d.order_increment_id = o.increment_id AND d.run_id = %(run_id)s)
AND coalesce((SELECT d.outcome FROM oms.routing_decision d WHERE d.order_increment_id = o.increment_id
              ORDER BY d.decision_id DESC LIMIT 1), 'held') IN ({", ".join(f"'{r}'" for r in RETRIED_OUTCOMES)})
"""


def to_order(row: dict[str, Any], line_keys: Iterable[str] | None = None) -> Order | None:
    keep = set(line_keys) if line_keys is not None else None
    lines = [OrderLine(line_key=x["line_key"], sku=x["sku"], qty=x["qty"], category=x["category"],
                       weight_g=x["weight_g"]) for x in row["lines"] if keep is None or x["line_key"] in keep]
    if not lines:
        return None
    return Order(increment_id=row["increment_id"], country_code=row["country_code"].strip(),
                 channel_code=row["channel_code"], lines=lines, shipping_method=row["shipping_method"],
                 pickup_store_id=row["pickup_store_id"] if row["is_click_and_collect"] else None,
                 order_value=row["order_value"], city=row["ship_to_city"],
                 payment_releasable=is_releasable(row["state"], row["payment_method"]), created_at=row["created_at"])


def pending_orders(conn: psycopg.Connection, run_id: str) -> list[Order]:
    """The orders a routing run decides, oldest first."""
    rows = conn.cursor(row_factory=dict_row).execute(ORDERS_SQL.format(where=PENDING_WHERE), {"run_id": run_id})
    return [o for o in (to_order(r) for r in rows.fetchall()) if o is not None]


def load_order(conn: psycopg.Connection, increment_id: str, line_keys: Iterable[str] | None = None) -> Order | None:
    """One order as the engine sees it (only `line_keys` when given): for a re-route."""
    row = conn.cursor(row_factory=dict_row).execute(
        ORDERS_SQL.format(where="o.increment_id = %(id)s"), {"id": increment_id}).fetchone()
    return None if row is None else to_order(row, line_keys)
