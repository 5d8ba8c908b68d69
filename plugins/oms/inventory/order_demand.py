"""Landing an order reserves its stock: order versions → each stock line's hold, in the landing
transaction (the 10-minute pull, oms.tasks.magento_orders_ingest.land, and the push,
oms.magento.push). GET /v1/atp/{sku} shows it in the next request, with no dbt build between.

Per order, the version that counts is its latest landed version that is well-formed (the gate's
structural checks) and not quarantined, as dbt's base_magento__orders_current picks it. Its stock
lines are the view raw.magento_order_line (sql/015), which dbt's order lines read too
(configurable and bundle parents carry no stock; virtual and downloadable lines need none);
tests/ledger/test_order_landing.py checks the holds agree with fct_order_lines. The view reads the
raw tables, so it sees the version this landing transaction has just inserted. Each line's target
hold is

    open      = qty_ordered − max(qty_shipped, shipped_by_platform, qty_refunded) − qty_canceled  (≥ 0)
    in_flight = units of the line in the platform's Clickpost shipments (manifested or shipped in
                Magento) that have not left yet: no `shipment` posting for them
    in_transit = units of the line on their way to its pickup store: a `transfer_out` posting and
                no `transfer_in` yet (the transfer's posting holds them, not a reservation)
    target    = (open − in_transit while the order is open, else 0) + in_flight

`shipped_by_platform` counts the platform's own shipments and click & collect hand-overs, so a
version that predates them (an older or lagging pull) does not hold the shipped units again;
`in_flight` keeps the units of a parcel Magento already shows shipped (we ship in Magento at the
manifest) held until the courier's pickup scan moves them to a `shipment` sales posting
(oms.shipping.postings). Open = Magento state new, pending_payment, payment_review, processing or
holded; a line of an expired click & collect pickup is not open, nor is an order routing cancelled
(its holds were released then; Magento may still show it open until the cancellation reaches it). sync_order_demand brings the
holds to the targets, race-safe; replaying the same versions changes nothing.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row, tuple_row
from psycopg.types.json import Jsonb

from oms.inventory.reservations import DemandResult, OrderDemand, sync_order_demand
from oms.magento.landing import parse_int, text_or_none
from oms.validation.magento_orders import structural_problems
from oms.warehouse import connect

log = logging.getLogger(__name__)

OPEN_STATES = frozenset({"new", "pending_payment", "payment_review", "processing", "holded"})

VERSIONS_SQL = """
SELECT m.record_key, m.entity_id, m.increment_id, m.store_id, m.payload
FROM raw.magento_order m
WHERE m.entity_id = ANY(%(ids)s) AND m.updated_at IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM raw.quarantine q
                  WHERE q.source = 'magento_order' AND q.record_key = m.record_key AND q.resolved_at IS NULL)
ORDER BY m.entity_id, m.updated_at DESC, m.record_key DESC
"""
# The stock lines that need fulfilment of the versions picked (sql/015: the one reading of items[]).
LINES_SQL = """
SELECT record_key, line_key, item_id, sku, qty_ordered, qty_shipped, qty_canceled, qty_refunded
FROM raw.magento_order_line
WHERE record_key = ANY(%(keys)s) AND requires_fulfilment AND item_id IS NOT NULL AND sku IS NOT NULL
ORDER BY record_key, item_id
"""
# What the platform itself has done to the orders' lines: units in live Clickpost shipments (by
# Magento item id), units posted as shipped (by shipment) or collected, lines of expired pickups.
SHIPMENTS_SQL = """
SELECT s.order_increment_id, (i ->> 'order_item_id')::bigint AS item_id, sum((i ->> 'qty')::numeric) AS qty
FROM oms.shipment s CROSS JOIN LATERAL jsonb_array_elements(s.line_items) AS i
WHERE s.order_increment_id = ANY(%(orders)s) AND s.state IN ('manifested', 'magento_shipped')
  AND s.deliver_to_store_id IS NULL     -- a transfer's parcel goes to the pickup store, not the customer
GROUP BY 1, 2
"""
POSTED_SQL = """
SELECT order_increment_id, line_key, posting_type, sum(qty) AS qty FROM oms.sales_posting
WHERE order_increment_id = ANY(%(orders)s)
  AND posting_type IN ('shipment', 'collection', 'transfer_out', 'transfer_in')
GROUP BY 1, 2, 3
"""
EXPIRED_SQL = """
SELECT t.order_increment_id, l ->> 'line_key' AS line_key
FROM oms.fulfilment_task t CROSS JOIN LATERAL jsonb_array_elements(t.lines) AS l
WHERE t.order_increment_id = ANY(%(orders)s) AND t.status = 'pickup_expired'
"""
CANCELLED_SQL = """
SELECT DISTINCT order_increment_id FROM oms.routing_decision
WHERE order_increment_id = ANY(%(orders)s) AND outcome = 'cancelled'
"""


def current_versions(conn: psycopg.Connection, entity_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Per order, its latest well-formed version without an open quarantine entry."""
    current: dict[int, dict[str, Any]] = {}
    rows = conn.cursor(row_factory=dict_row).execute(VERSIONS_SQL, {"ids": sorted(set(entity_ids))}).fetchall()
    for row in rows:
        if row["entity_id"] in current:
            continue
        if not any(structural_problems(row["payload"]).values()):
            current[row["entity_id"]] = row
    return current


def demands_for(conn: psycopg.Connection, entity_ids: Iterable[int]) -> list[OrderDemand]:
    """Each stock line's demand (see the module's docstring) for the orders' current versions."""
    versions = current_versions(conn, entity_ids)
    if not versions:
        return []
    cur = conn.cursor(row_factory=dict_row)
    channels = {r["magento_store_id"]: r["country_code"] for r in cur.execute(
        "SELECT magento_store_id, country_code::text AS country_code FROM ref.channel"
        " WHERE active AND magento_store_id IS NOT NULL").fetchall()}
    pickup = {r["magento_source_code"]: r["store_id"] for r in cur.execute(
        "SELECT magento_source_code, store_id FROM ref.location WHERE magento_source_code IS NOT NULL").fetchall()}
    orders = sorted({text_or_none(v["payload"].get("increment_id")) or "" for v in versions.values()})
    shipped: dict[tuple[str, int], Decimal] = {
        (r["order_increment_id"], r["item_id"]): r["qty"] for r in cur.execute(SHIPMENTS_SQL, {"orders": orders})}
    posted: dict[tuple[str, str, str], Decimal] = {
        (r["order_increment_id"], r["line_key"], r["posting_type"]): r["qty"]
        for r in cur.execute(POSTED_SQL, {"orders": orders})}
    expired = {(r["order_increment_id"], r["line_key"]) for r in cur.execute(EXPIRED_SQL, {"orders": orders})}
    cancelled = {r["order_increment_id"] for r in cur.execute(CANCELLED_SQL, {"orders": orders})}
    lines_by_version: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in cur.execute(LINES_SQL, {"keys": sorted(v["record_key"] for v in versions.values())}):
        lines_by_version[row["record_key"]].append(row)
    skus = sorted({line["sku"] for lines in lines_by_version.values() for line in lines})
    known = {r["sku"] for r in cur.execute("SELECT sku FROM ref.sku WHERE sku = ANY(%s)", (skus,))}

    demands = []
    zero = Decimal(0)
    for version in (versions[entity_id] for entity_id in sorted(versions)):
        payload = version["payload"]
        increment_id = text_or_none(payload.get("increment_id"))
        country = channels.get(parse_int(payload.get("store_id")))
        if increment_id is None or country is None:   # an unknown channel: an order exception, no stock
            continue
        code = text_or_none((payload.get("extension_attributes") or {}).get("pickup_location_code"))
        pickup_store = pickup.get(code) if code else None
        order_open = text_or_none(payload.get("state")) in OPEN_STATES and increment_id not in cancelled
        for line in lines_by_version[version["record_key"]]:
            if line["sku"] not in known:                 # an unknown SKU: an order exception, no stock
                continue
            line_key, sku = line["line_key"], line["sku"]
            in_shipments = shipped.get((increment_id, line["item_id"]), zero)
            collected = posted.get((increment_id, line_key, "collection"), zero)
            in_flight = max(in_shipments - posted.get((increment_id, line_key, "shipment"), zero), zero)
            done = max(line["qty_shipped"], in_shipments + collected, line["qty_refunded"])
            open_qty = max((line["qty_ordered"] or zero) - done - line["qty_canceled"], zero)
            in_transit = max(posted.get((increment_id, line_key, "transfer_out"), zero)
                             - posted.get((increment_id, line_key, "transfer_in"), zero), zero)
            line_open = order_open and (increment_id, line_key) not in expired
            target = (max(open_qty - in_transit, zero) if line_open else zero) + in_flight
            demands.append(OrderDemand(increment_id, line_key, country, pickup_store, sku, target,
                                       line_open or in_flight > 0))
    return demands


def marts_ready(conn: psycopg.Connection) -> bool:
    """Live ATP rests on the ATP marts; before the first ATP build there is nothing to reserve
    against (routing reserves the order's lines when it allocates them)."""
    row = conn.execute("SELECT to_regclass('marts.fct_atp_country') IS NOT NULL AND "
                       "to_regclass('marts.fct_atp_store') IS NOT NULL AS ready").fetchone()
    return bool(row["ready"] if isinstance(row, dict) else row[0])


def reserve_orders(conn: psycopg.Connection, entity_ids: Iterable[int]) -> list[DemandResult]:
    """Bring the orders' holds to their current versions' demand, on the caller's transaction."""
    ids = sorted({int(i) for i in entity_ids if i is not None})
    if not ids:
        return []
    if not marts_ready(conn):
        log.warning("no ATP marts yet: %d order(s) landed without a reservation (routing reserves them)", len(ids))
        return []
    # One landing per order at a time (the pull and a push of the same order): the second waits,
    # then reads the versions the first committed, so an older version never re-applies its
    # demand after a newer one. Taken in id order, before any stock lock.
    conn.execute("SELECT pg_advisory_xact_lock(1869442159, hashtext(x::text)) FROM unnest(%s::bigint[]) AS x"
                 " ORDER BY x", (ids,))
    return sync_order_demand(conn, demands_for(conn, ids))


SHORT_ORDERS_SQL = """
SELECT DISTINCT m.entity_id
FROM raw.magento_order m
JOIN (SELECT DISTINCT order_increment_id FROM oms.reservation_shortfall
      WHERE %(keys)s::jsonb IS NULL
         OR (country_code, sku) IN (SELECT k ->> 'country_code', k ->> 'sku'
                                    FROM jsonb_array_elements(%(keys)s::jsonb) AS k)) s
  ON s.order_increment_id = m.increment_id
WHERE m.entity_id IS NOT NULL
"""


# Orders reserved per transaction when many are reserved at once (the first ATP build, a refill
# after a long outage): each order takes an advisory lock until its transaction ends, and
# Postgres keeps those in a shared table of max_locks_per_transaction x connections (15.6k orders
# in one transaction ran out of it).
ORDERS_PER_TRANSACTION = 500


def short_orders(conn: psycopg.Connection, keys: Iterable[tuple[str, str]] | None = None) -> list[int]:
    """The orders with a line holding less than its demand (oms.reservation_shortfall), for every
    (country, sku) or the given ones, by entity_id."""
    params = {"keys": None if keys is None else Jsonb([{"country_code": c, "sku": s} for c, s in sorted(set(keys))])}
    return sorted(r[0] for r in conn.cursor(row_factory=tuple_row).execute(SHORT_ORDERS_SQL, params).fetchall())


def refill_shortfalls(conn: psycopg.Connection, keys: Iterable[tuple[str, str]] | None = None) -> list[DemandResult]:
    """Sync again the orders whose lines hold less than their demand, on the caller's transaction.
    Where stock comes in (after an ATP build, before ERP movements are published to Magento) the
    oldest claims take the new units first (sync_order_demand serves lines in (country, sku,
    order) order). Each order's demand is read again from its current version: a line cancelled,
    shipped or routed since its shortfall was noted asks for what it needs now, not then."""
    ids = short_orders(conn, keys)
    return reserve_orders(conn, ids) if ids else []


def reserve_in_batches(dsn: str, entity_ids: Iterable[int], size: int = ORDERS_PER_TRANSACTION) -> list[DemandResult]:
    """reserve_orders over many orders, `size` orders per transaction, in entity_id order."""
    ids = sorted({int(i) for i in entity_ids if i is not None})
    results: list[DemandResult] = []
    for start in range(0, len(ids), size):
        with connect(dsn) as conn:
            results += reserve_orders(conn, ids[start:start + size])
    return results


def summary(results: list[DemandResult]) -> dict[str, Any]:
    by_status: dict[str, int] = defaultdict(int)
    for result in results:
        by_status[result.status] += 1
    return {"lines": len(results), "by_status": dict(by_status),
            "shortfall_lines": sum(1 for r in results if r.shortfall_qty and r.shortfall_qty > 0),
            "rejected": [f"{r.demand.line_key}: {r.error}" for r in results if r.status == "rejected"][:10]}
