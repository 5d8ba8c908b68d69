"""One call for the fulfilment code (store tasks, BOPIS, the routing DAG): load the inputs,
route, claim daily capacity, reserve, record the decision — in one transaction, retried when
another router took the capacity or the units in between.

Reservations belong to the inventory ledger: pass `reserve(conn, decision) -> bool`,
called inside the transaction after the capacity claim; False (units gone since the ATP was
read) rolls everything back and routes again with fresh ATP.
"""

from __future__ import annotations

import time
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
                run_id: str | None = None, max_attempts: int = 3, batch_note: dict | None = None) -> Routed:
    """Route `order` with its country's active profile and record the decision.

    `now` is the decision time (in a DAG: the data interval end, so a re-run decides the same);
    `atp(conn, skus)` overrides where real-time ATP comes from (default `inputs.live_atp`);
    `batch_note` is stored as the decision's `batch` (an order of a batch window routed here).
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
                if batch_note is not None:
                    decision.batch = batch_note
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
    if batch_note is not None:
        decision.batch = batch_note
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


# ------------------------------------------------------------------------ live batch mode
# A country whose active profile has mode "batch": the routing run solves its window of
# releasable delivery orders at once (optimiser.route_optimised) on one read of live ATP and
# capacity, then records each order's decision as route_order would (capacity claim, reservation
# through the `reserve` callback, decision row), one transaction per order. A decision that no
# longer fits at record time (the units or a store's capacity went to someone else since the
# solve) is not forced: that order is routed again by the rule engine on live stock.

@dataclass(frozen=True)
class Planned:
    """One order's answer from the window, waiting to be recorded."""

    order: Order
    decision: Decision
    inputs: dict


@dataclass(frozen=True)
class Window:
    country_code: str
    planned: list[Planned]
    windows: list[dict]          # optimiser.WindowStats.as_dict() per solver window
    seconds: float               # read + solve, wall clock


def _for_order(candidates: list, skus: set[str]) -> list:
    """The window's candidates cut to one order's SKUs: what its stored inputs say it was given."""
    return [c.model_copy(update={"atp": {s: q for s, q in c.atp.items() if s in skus},
                                 "exclusions": [e for e in c.exclusions if e.sku in skus]}) for c in candidates]


def solve_window(conn: psycopg.Connection, country: str, orders: list[Order], now: datetime, *,
                 profile=None,
                 atp: Callable[[psycopg.Connection, list[str]], Mapping[tuple[str, str], float]] | None = None,
                 ) -> Window:
    """Solve `orders` (one country, arrival order) with the country's active batch profile on
    live ATP and today's capacity. Reads only; nothing is claimed or reserved until `record`."""
    from oms.routing.optimiser import route_optimised  # scipy only where batch mode is used

    started = time.perf_counter()
    profile = profile or profiles.get_active(conn, country)
    if profile is None or profile.mode != "batch":
        raise ValueError(f"{country} has no active batch profile")
    rate_cards = inputs.load_rate_cards(conn, country)
    cards = inputs.remember_rate_cards(conn, country, rate_cards)
    skus = sorted({x.sku for o in orders for x in o.lines})
    stock = (atp or inputs.live_atp)(conn, skus)
    candidates = inputs.load_candidates(conn, country, skus, now, atp=stock)
    answer = route_optimised(orders, candidates, profile, RoutingContext(now=now, rate_cards=rate_cards))
    planned = [Planned(o, d, inputs.snapshot(o, _for_order(candidates, {x.sku for x in o.lines}), cards))
               for o, d in zip(orders, answer.decisions, strict=True)]
    return Window(country, planned, [w.as_dict() for w in answer.windows], round(time.perf_counter() - started, 4))


def record(conn: psycopg.Connection, planned: Planned, now: datetime, *, reserve: Reserve | None = None,
           atp: Callable[[psycopg.Connection, list[str]], Mapping[tuple[str, str], float]] | None = None,
           run_id: str | None = None) -> Routed:
    """Record one order of a solved window: claim capacity, reserve, store the decision — or,
    when the stock or capacity it was given has gone since the solve, route that order again by
    the rule engine on live stock (`atp`, as route_order) and say so in its `batch` note."""
    decision = planned.decision
    if run_id is not None:
        done = conn.execute(decisions.EXISTING_SQL, (decision.order_increment_id, run_id)).fetchone()
        if done is not None:   # recorded by this run already (a retried task): claim and reserve nothing again
            return Routed(decision, done[0] if isinstance(done, tuple) else done["decision_id"], 0)
    try:
        with conn.transaction():
            if decision.allocated:
                full = decisions.claim_capacity(conn, decision)
                if full:
                    raise _Contended(f"capacity taken since the solve at {', '.join(full)}")
                if reserve is not None and not reserve(conn, decision):
                    raise _Contended("units reserved or moved since the solve")
            return Routed(decision, decisions.save_decision(conn, decision, run_id, planned.inputs), 1)
    except _Contended as exc:
        # the optimiser's assignment and cost no longer describe the decision: kept as `optimiser`
        kept = {k: v for k, v in (decision.batch or {}).items() if k not in ("assignment", "cost", "vs_greedy")}
        note = {**kept, "decided_by": "rules_at_record",
                "why": f"the optimiser's answer ({', '.join(s.store_id for s in decision.shipments)}) no longer "
                       f"fitted when recorded: {exc.what}; routed by the rule engine on live stock",
                "optimiser": {"outcome": decision.outcome, "stores": [s.store_id for s in decision.shipments],
                              "assignment": (decision.batch or {}).get("assignment")}}
        routed = route_order(conn, planned.order, now, reserve=reserve, atp=atp, run_id=run_id, batch_note=note)
        return Routed(routed.decision, routed.decision_id, routed.attempts + 1)
