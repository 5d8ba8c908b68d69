"""One call for the fulfilment code (store tasks, BOPIS, the routing DAG): load the inputs,
route, claim daily capacity, reserve, record the decision — in one transaction, retried when
another router took the capacity or the units in between.

Reservations belong to the inventory ledger (issue 3): pass `reserve(conn, decision) -> bool`,
called inside the transaction after the capacity claim; False (units gone since the ATP was
read) rolls everything back and routes again with fresh ATP.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg

from oms.routing import decisions, inputs, profiles
from oms.routing.engine import route
from oms.routing.model import Decision, Order, RoutingContext, UnallocatedLine

Reserve = Callable[[psycopg.Connection, Decision], bool]


class _Contended(Exception):
    def __init__(self, what: str):
        self.what = what


@dataclass(frozen=True)
class Routed:
    decision: Decision
    decision_id: int
    attempts: int


def _unroutable(order: Order, now: datetime, reason: str, explanation: str) -> Decision:
    return Decision(
        order_increment_id=order.increment_id, country_code=order.country_code, decided_at=now, profile_id=None,
        profile_version=None, profile_name="", outcome="held", reason=reason, hold_queue="routing_hold",
        unallocated=[UnallocatedLine(line_key=x.line_key, sku=x.sku, qty=x.qty, reason=reason, detail=explanation)
                     for x in order.lines],
        explanation=explanation)


def route_order(conn: psycopg.Connection, order: Order, now: datetime, *, reserve: Reserve | None = None,
                atp: Callable[[psycopg.Connection, list[str]], Mapping[tuple[str, str], float]] | None = None,
                run_id: str | None = None, max_attempts: int = 3) -> Routed:
    """Route `order` with its country's active profile and record the decision.

    `now` is the decision time (in a DAG: the data interval end, so a re-run decides the same);
    `atp(conn, skus)` overrides where real-time ATP comes from (default `inputs.live_atp`).
    """
    profile = profiles.get_active(conn, order.country_code)
    if profile is None:
        decision = _unroutable(order, now, "no_active_profile",
                               f"Order {order.increment_id} was not routed: {order.country_code} has no active "
                               f"routing profile (oms routing profile create --file … --activate).")
        return Routed(decision, decisions.save_decision(conn, decision, run_id, inputs.snapshot(order, None, None)), 0)
    context = RoutingContext(now=now, rate_cards=inputs.load_rate_cards(conn, order.country_code))
    cards = inputs.remember_rate_cards(conn, order.country_code, context.rate_cards)
    skus = sorted({x.sku for x in order.lines})
    contention = ""
    for attempt in range(1, max_attempts + 1):
        try:
            with conn.transaction():
                stock = (atp or inputs.live_atp)(conn, skus)
                candidates = inputs.load_candidates(conn, order.country_code, skus, now, atp=stock)
                decision = route(order, candidates, profile, context)
                if decision.allocated:
                    full = decisions.claim_capacity(conn, decision)
                    if full:
                        raise _Contended(f"capacity taken meanwhile at {', '.join(full)}")
                    if reserve is not None and not reserve(conn, decision):
                        raise _Contended("units reserved by another order meanwhile")
                return Routed(decision, decisions.save_decision(conn, decision, run_id,
                                                                inputs.snapshot(order, candidates, cards)), attempt)
        except _Contended as exc:
            contention = exc.what
    decision = _unroutable(order, now, "allocation_contention",
                           f"Order {order.increment_id} was not routed after {max_attempts} attempts: {contention}. "
                           f"It is retried on the next routing run.")
    return Routed(decision, decisions.save_decision(conn, decision, run_id, inputs.snapshot(order, None, cards)),
                  max_attempts)


def reroute_after_rejection(conn: psycopg.Connection, order: Order, store_id: str, skus: list[str], now: datetime, *,
                            reason: str, exclude_for: timedelta = timedelta(days=2), source_ref: str | None = None,
                            reserve: Reserve | None = None, run_id: str | None = None,
                            atp: Callable[[psycopg.Connection, list[str]], Mapping[tuple[str, str], float]] | None = None,
                            ) -> Routed:
    """A store rejected the pick (item not found, damaged): exclude it for those SKUs for a while
    and route the order again. Releasing the old reservation and the stock correction are the
    caller's (store-task) business, in the same transaction."""
    for sku in skus:
        decisions.exclude_store(conn, store_id, sku, now + exclude_for, reason, excluded_at=now,
                                order_increment_id=order.increment_id,
                                source_ref=f"{source_ref}/{sku}" if source_ref else None)
    return route_order(conn, order, now, reserve=reserve, atp=atp, run_id=run_id)
