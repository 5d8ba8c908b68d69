"""The order_routing DAG's tasks: route every releasable order that is not routed yet, after each
build of the order marts, then expire the click & collect orders nobody collected.

For each order (oldest first; fulfilment.orders.pending_orders): route_order with the country's
active profile at the run's decision time (the data interval end, so a re-run decides the same),
reserving through the ledger (fulfilment.holds: country-level holds allocated to the chosen
locations), and the decision's store tasks — one transaction per order. Idempotent over the data
interval: the decision carries the run id (`order_routing/<interval end>`), an order decided by
this run is not picked again, so a retried or re-run task routes and reserves nothing twice.

A country whose active profile has mode "batch": its releasable delivery orders are solved as
one window by the optimiser (service.solve_window, on one read of live ATP and capacity) after
the orders routed one by one (click & collect, orders already holding units at a store), then
each is recorded as above (service.record: capacity claim, reservation, decision with its
`batch` note, store tasks); one that no longer fits is routed by the rule engine on live stock.
Held and backordered orders are tried again by the next run; cancel_after_days is the engine's,
counted from the order's created_at. A `cancelled` decision releases the order's holds in the same
transaction and queues the cancellation for Magento (POST /V1/orders/{id}/cancel, with an order
comment saying why; sent by the aftersale_magento_sync DAG). A click & collect order whose pickup
store lacks units opens the exception `no_stock_at_pickup_store` (also when a transfer covers it).
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg

from oms import notifications
from oms.aftersale import magento_sync
from oms.fulfilment import holds, orders, tasks
from oms.integrations.connections import warehouse_dsn
from oms.inventory import reservations
from oms.inventory.reservations import ReservationError
from oms.routing import profiles, service
from oms.routing.model import Decision, Order
from oms.tasks import wait_for_atp_build
from oms.validation import order_exceptions
from oms.warehouse import connect

log = logging.getLogger(__name__)


def decision_time(dag_run: Any) -> datetime:
    """The run's data interval end; an asset-triggered run without an interval: its run_after."""
    return getattr(dag_run, "data_interval_end", None) or dag_run.run_after


def run_id_for(data_interval_end: datetime) -> str:
    return f"order_routing/{data_interval_end.isoformat()}"


STORE_HELD_SQL = """
SELECT DISTINCT order_increment_id FROM oms.reservation
WHERE order_increment_id = ANY (%s) AND status = 'active' AND store_id IS NOT NULL
"""


def _batch_countries(conn: psycopg.Connection, pending: list[Order]) -> set[str]:
    out = set()
    for country in sorted({o.country_code for o in pending}):
        profile = profiles.get_active(conn, country)
        if profile is not None and profile.mode == "batch":
            out.add(country)
    return out


def route_pending(dsn: str, data_interval_end: datetime) -> dict[str, Any]:
    run_id = run_id_for(data_interval_end)
    with connect(dsn) as conn:
        pending = orders.pending_orders(conn, run_id)
        batch = _batch_countries(conn, pending)
        # Orders already holding units at a store (click & collect at the pickup store, a line a
        # re-route kept in place) see those units as their own (holds.atp_with_own_holds): the
        # window's one stock read cannot, so they are routed one by one, before the window.
        store_held = {r["order_increment_id"] for r in conn.execute(
            STORE_HELD_SQL, ([o.increment_id for o in pending if o.country_code in batch],)).fetchall()} if batch else set()
    windowed = [o for o in pending if o.country_code in batch and not o.is_pickup and o.increment_id not in store_held]
    in_window = {o.increment_id for o in windowed}
    outcomes: Counter[str] = Counter()
    created = 0
    errors: list[str] = []
    windows: list[dict[str, Any]] = []

    def settle(conn: psycopg.Connection, order: Order, route: Any) -> None:
        nonlocal created
        try:
            routed = route()
            created += len(tasks.create_for_decision(conn, routed.decision_id, routed.decision))
            if routed.decision.outcome == "cancelled":
                cancel_order(conn, order.increment_id, routed.decision)
            if order.pickup_store_id:
                flag_pickup_store_stock(conn, order, routed.decision)
            if routed.decision.allocated:
                # Confirmed once the platform has placed it: queued once per order and channel
                # (the outbox's key), in the same transaction as the decision.
                notifications.enqueue(conn, "order_confirmed", order.increment_id)
            conn.commit()
        except (psycopg.Error, ReservationError, ValueError) as exc:
            # one order's problem (e.g. a SKU the ledger refuses) must not stop the others:
            # nothing of it is kept, it is reported here and tried again by the next run
            conn.rollback()
            log.warning("order %s not routed: %s", order.increment_id, exc)
            errors.append(f"{order.increment_id}: {exc}")
            outcomes["error"] += 1
            return
        outcomes[routed.decision.outcome] += 1

    def one_by_one(conn: psycopg.Connection, order: Order):
        return lambda: service.route_order(conn, order, data_interval_end, reserve=holds.reserve_decision,
                                           atp=holds.atp_with_own_holds(order.increment_id), run_id=run_id)

    with connect(dsn) as conn:
        for order in pending:
            if order.increment_id not in in_window:
                settle(conn, order, one_by_one(conn, order))
        # Batch countries: one solve per country on one read of live stock, then each order
        # recorded in its own transaction (a decision that no longer fits is re-routed by the
        # rule engine on live stock: service.record).
        for country in sorted(batch):
            group = [o for o in windowed if o.country_code == country]
            if not group:
                continue
            try:
                window = service.solve_window(conn, country, group, data_interval_end)
                conn.commit()
            except (psycopg.Error, ValueError) as exc:
                conn.rollback()
                log.warning("batch window of %s not solved, routing its %d orders one by one: %s",
                            country, len(group), exc)
                errors.append(f"{country} window: {exc}")
                for order in group:
                    settle(conn, order, one_by_one(conn, order))
                continue
            windows.append({"country": country, "orders": len(group), "seconds": window.seconds,
                            "windows": window.windows})
            log.info("batch window %s: %d orders solved in %.3f s (%s)", country, len(group), window.seconds,
                     ", ".join(f"{w['status']} {w['solve_seconds']} s" for w in window.windows))
            for planned in window.planned:
                settle(conn, planned.order, lambda p=planned: service.record(
                    conn, p, data_interval_end, reserve=holds.reserve_decision,
                    atp=holds.atp_with_own_holds(p.order.increment_id), run_id=run_id))
    out = {"run_id": run_id, "orders": len(pending), "outcomes": dict(sorted(outcomes.items())),
           "tasks_created": created, "errors": errors[:20]}
    if windows:
        out["batch"] = windows
    return out


CANCEL_MARKER = "[OMS routing cancel]"
# store-level reasons: the pickup store cannot serve the order at all, whatever its stock
PICKUP_STORE_REASONS = frozenset({"not_a_candidate", "other_country", "inactive", "not_pickup_enabled"})


def cancel_order(conn: psycopg.Connection, increment_id: str, decision: Decision) -> Decimal:
    """The engine cancelled the order (cancel_after_days): its holds go back to ATP now, and
    Magento is told (comment, then cancel), each once. Returns the units released."""
    released = reservations.release(conn, increment_id, reason="routing_cancelled")
    entity_id = magento_sync.order_entity_id(conn, increment_id)
    if entity_id is not None:
        text = f"{CANCEL_MARKER} Cancelled by the order-management platform: {decision.explanation}"
        magento_sync.enqueue(conn, "comment", f"comment:routing_cancel:{increment_id}", entity_id,
                             magento_sync.comment_body(text), CANCEL_MARKER)
        magento_sync.enqueue(conn, "cancel", f"cancel:routing:{increment_id}", entity_id, {}, CANCEL_MARKER)
    return released


def flag_pickup_store_stock(conn: psycopg.Connection, order: Order, decision: Decision) -> None:
    """Open `no_stock_at_pickup_store` when the pickup store lacks units of the order — the customer
    was promised the store had them — whatever the way out (a transfer, alternatives, waiting,
    rejection; the detail says which). Closed once a decision finds every line at the store, or
    when the order is ready for pickup there (fulfilment.tasks.ready_for_pickup)."""
    reason = order_exceptions.NO_STOCK_AT_PICKUP_STORE
    report = next((c for c in decision.candidates if c.store_id == order.pickup_store_id), None)
    if report is None or {r.code for r in report.reasons} & PICKUP_STORE_REASONS:
        return   # the store cannot serve at all: the order checks' own exceptions say why
    missing = [x for x in order.lines if x.line_key not in set(report.covers)]
    if not missing:
        order_exceptions.close_routing_exception(conn, order.increment_id, reason)
        return
    way_out = {"pickup_transfer": "the missing lines come by transfer",
               "pickup_alternatives": "other pickup stores were offered"}.get(decision.outcome,
                                                                               f"routing outcome {decision.outcome}")
    detail = (f"pickup store {order.pickup_store_id} lacks " +
              ", ".join(f"{x.sku} ×{x.qty:g} (usable {report.atp.get(x.sku, 0):g})" for x in missing) +
              f"; {way_out}")
    order_exceptions.record_routing_exception(conn, order.increment_id, reason, detail)


def expire_pickups_at(dsn: str, now: datetime) -> dict[str, Any]:
    with connect(dsn) as conn:
        expired = tasks.expire_pickups(conn, now)
    return {"expired": len(expired), "task_ids": [e["task"]["task_id"] for e in expired][:50]}


def route_orders(dag_run: Any) -> dict[str, Any]:
    dsn = warehouse_dsn()
    wait_for_atp_build(dsn)  # the orders to route are read from the order marts
    return route_pending(dsn, decision_time(dag_run))


def expire_pickups(dag_run: Any) -> dict[str, Any]:
    return expire_pickups_at(warehouse_dsn(), decision_time(dag_run))
