"""Order demand → reservations, after each build of the order marts.

dbt's fct_order_lines is the one place that knows a Magento order's stock lines (configurable
children, bundle components, no virtual lines), so reservations are synced from it rather than
from raw payloads. Open orders (awaiting payment, ready to fulfil, on hold — Magento reserves for
all of these too, so the 'physical' publishing contract stays exact) hold their open quantity:
click & collect at the pickup store, others at country level until routing allocates them.
Fulfilled, closed and cancelled orders release. Idempotent: a replay changes nothing.
"""

from __future__ import annotations

from typing import Any

from oms.inventory.reservations import OrderDemand, sync_order_demand
from oms.transform import run_dbt
from oms.warehouse import connect

# The ATP marts' reservation inputs and everything downstream of them: rebuilt once the sync has
# changed reservations, so the marts (and the publish that follows) count today's open orders.
RESERVATION_DEPENDENTS = ("int_inventory__store_holds+", "int_inventory__unallocated_reservations+")

OPEN_STATUSES = ("awaiting_payment", "ready_to_fulfil", "on_hold")

DEMAND_SQL = """
SELECT l.increment_id, l.line_key, o.country_code, o.pickup_store_id, l.sku, l.qty_open,
       o.fulfilment_status = ANY(%(open)s) AND NOT expired.yes AS is_open
FROM marts.fct_order_lines l
JOIN marts.fct_orders o ON o.increment_id = l.increment_id
-- a click & collect order nobody collected in time holds nothing any more (docs/fulfilment.md),
-- even while Magento still shows it open
CROSS JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM oms.fulfilment_task t
                                   WHERE t.order_increment_id = l.increment_id AND t.status = 'pickup_expired'
                                     AND t.lines @> jsonb_build_array(jsonb_build_object('line_key', l.line_key)))
                    AS yes) expired
WHERE l.requires_fulfilment AND l.is_known_sku AND o.country_code IS NOT NULL
  AND (o.fulfilment_status = ANY(%(open)s) AND NOT expired.yes
       OR EXISTS (SELECT 1 FROM oms.reservation r
                  WHERE r.order_increment_id = l.increment_id AND r.line_key = l.line_key AND r.status = 'active'))
ORDER BY o.created_at, l.increment_id, l.line_key
"""


def sync_from_order_marts(dsn: str) -> dict[str, Any]:
    with connect(dsn) as conn:
        demands = [OrderDemand(r["increment_id"], r["line_key"], r["country_code"], r["pickup_store_id"], r["sku"],
                               r["qty_open"], r["is_open"])
                   for r in conn.execute(DEMAND_SQL, {"open": list(OPEN_STATUSES)}).fetchall()]
        results = sync_order_demand(conn, demands)
    outcome = run_dbt(dsn, "build", "--select", *RESERVATION_DEPENDENTS)
    by_status: dict[str, int] = {}
    for result in results:
        by_status[result.status] = by_status.get(result.status, 0) + 1
    return {"lines": len(results), "by_status": by_status, "dbt_rebuilt": outcome.passed,
            "shortfall_lines": sum(1 for r in results if r.shortfall_qty and r.shortfall_qty > 0),
            "rejected": [f"{r.demand.line_key}: {r.error}" for r in results if r.status == "rejected"][:10]}
