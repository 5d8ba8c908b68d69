"""The reservation side of a routing decision: route_order's `reserve` callback.

Before routing, order ingestion holds each open line at country level (click & collect: at the
pickup store; sync_order_demand). A decision moves each allocated line's units to its location:

- the normal case, the line holds country-level units: `reservations.allocate` moves them to the
  store (the store must have them; one transaction, nothing held twice);
- the line already holds exactly the units at that location (click & collect at the pickup store,
  or a re-route that kept a line where it was): nothing to do;
- anything else (a re-route moving a line, a line the demand sync could not hold): the line's
  holds are released and the units are reserved at the location, checked against its live ATP.

Any refusal returns False: route_order rolls the attempt back and routes again on fresh ATP.
Lines are handled in SKU order (the ledger's lock order within a country).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal

import psycopg
from psycopg.rows import dict_row

from oms.inventory import reservations
from oms.routing import inputs
from oms.routing.model import Decision

LINE_HOLDS_SQL = """
SELECT store_id, qty FROM oms.reservation
WHERE order_increment_id = %s AND line_key = %s AND status = 'active'
"""
OWN_STORE_HOLDS_SQL = """
SELECT store_id, sku, sum(qty)::float8 AS qty FROM oms.reservation
WHERE order_increment_id = %s AND status = 'active' AND store_id IS NOT NULL
GROUP BY store_id, sku
"""


def reserve_decision(conn: psycopg.Connection, decision: Decision) -> bool:
    order = decision.order_increment_id
    lines = {a.line_key: a for a in decision.allocations}  # the engine sends each line whole to one location
    for line_key, a in sorted(lines.items(), key=lambda kv: (kv[1].sku, kv[0])):
        want = Decimal(str(a.qty))
        holds = {r["store_id"]: r["qty"] for r in
                 conn.cursor(row_factory=dict_row).execute(LINE_HOLDS_SQL, (order, line_key)).fetchall()}
        if holds == {a.store_id: want}:
            continue
        unallocated = holds.get(None, Decimal(0))
        at_store = holds.get(a.store_id, Decimal(0))
        if set(holds) <= {None, a.store_id} and unallocated > 0 and at_store + unallocated >= want:
            if want > at_store:
                if not reservations.allocate(conn, order, line_key, a.store_id, want - at_store, reason="routed").ok:
                    return False
            continue
        reservations.release(conn, order, line_key, reason="rerouted")
        result = reservations.reserve(conn, order, line_key, decision.country_code, a.sku, want, a.store_id,
                                      reason="routed")
        if not result.ok:
            return False
    return True


def atp_with_own_holds(increment_id: str) -> Callable[[psycopg.Connection, list[str]], Mapping[tuple[str, str], float]]:
    """Live ATP plus the order's own store holds: units already held for this order (the pickup
    store's hold, the lines a re-route keeps in place) are available to it."""
    def atp(conn: psycopg.Connection, skus: list[str]) -> Mapping[tuple[str, str], float]:
        stock = dict(inputs.live_atp(conn, skus))
        for r in conn.cursor(row_factory=dict_row).execute(OWN_STORE_HOLDS_SQL, (increment_id,)).fetchall():
            if r["sku"] in skus:
                stock[(r["store_id"], r["sku"])] = stock.get((r["store_id"], r["sku"]), 0.0) + r["qty"]
        return stock

    return atp
