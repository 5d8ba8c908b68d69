"""The order_routing DAG's tasks: route every releasable order that is not routed yet, after each
build of the order marts, then expire the click & collect orders nobody collected.

For each order (oldest first; fulfilment.orders.pending_orders): route_order with the country's
active profile at the run's decision time (the data interval end, so a re-run decides the same),
reserving through the ledger (fulfilment.holds: country-level holds allocated to the chosen
locations), and the decision's store tasks — one transaction per order. Idempotent over the data
interval: the decision carries the run id (`order_routing/<interval end>`), an order decided by
this run is not picked again, so a retried or re-run task routes and reserves nothing twice.
Held and backordered orders are tried again by the next run; cancel_after_days is the engine's,
counted from the order's created_at.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime
from typing import Any

import psycopg

from oms import notifications
from oms.fulfilment import holds, orders, tasks
from oms.integrations.connections import warehouse_dsn
from oms.inventory.reservations import ReservationError
from oms.routing import service
from oms.warehouse import connect

log = logging.getLogger(__name__)


def decision_time(dag_run: Any) -> datetime:
    """The run's data interval end; an asset-triggered run without an interval: its run_after."""
    return getattr(dag_run, "data_interval_end", None) or dag_run.run_after


def run_id_for(data_interval_end: datetime) -> str:
    return f"order_routing/{data_interval_end.isoformat()}"


def route_pending(dsn: str, data_interval_end: datetime) -> dict[str, Any]:
    run_id = run_id_for(data_interval_end)
    with connect(dsn) as conn:
        pending = orders.pending_orders(conn, run_id)
    outcomes: Counter[str] = Counter()
    created = 0
    errors: list[str] = []
    with connect(dsn) as conn:
        for order in pending:
            try:
                routed = service.route_order(conn, order, data_interval_end, reserve=holds.reserve_decision,
                                             atp=holds.atp_with_own_holds(order.increment_id), run_id=run_id)
                created += len(tasks.create_for_decision(conn, routed.decision_id, routed.decision))
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
                continue
            outcomes[routed.decision.outcome] += 1
    return {"run_id": run_id, "orders": len(pending), "outcomes": dict(sorted(outcomes.items())),
            "tasks_created": created, "errors": errors[:20]}


def expire_pickups_at(dsn: str, now: datetime) -> dict[str, Any]:
    with connect(dsn) as conn:
        expired = tasks.expire_pickups(conn, now)
    return {"expired": len(expired), "task_ids": [e["task"]["task_id"] for e in expired][:50]}


def route_orders(dag_run: Any) -> dict[str, Any]:
    return route_pending(warehouse_dsn(), decision_time(dag_run))


def expire_pickups(dag_run: Any) -> dict[str, Any]:
    return expire_pickups_at(warehouse_dsn(), decision_time(dag_run))
