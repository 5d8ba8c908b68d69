"""The batch optimiser (routing mode "batch"): a window of releasable orders assigned at once.

The rule engine decides one order at a time, in arrival order: the first order takes the
nearest units even when a later order had no other source, and an order splits when its best
single location ran dry a moment earlier. The optimiser sees the whole window and solves one
mixed-integer programme with HiGHS (`scipy.optimize.milp`):

    variables  z[o,r]    order o is allocated under rule r (at most one r per order)
               y[o,r,l]  location l ships a parcel of order o            (binary)
               x[o,r,i,l] line i of order o comes, whole, from location l (binary)
    maximise   allocated orders, first (weight M: one more whole order beats any saving);
               with objective "fewest_splits" (the default) a second solve then keeps at least
               the rule engine's number of whole orders (or that maximum, if lower) and
               minimises split shipments before anything else;
    then minimise  shipping cost of each parcel (rate cards, lane at the order's weight)
                 + split_penalty per parcel beyond an order's first
                 + store_load_penalty × (1 + load/capacity) per parcel from a store
    subject to every line of an allocated order from exactly one location; at most the rule's
               max_shipments_per_order parcels (1 when the rule may not split this order);
               units per (location, SKU) ≤ what is usable; parcels per location ≤ what is left
               of its daily capacity; only locations the rule allows (type, ship-from-store,
               distance, country, exclusions after rejections, brokering_safety_qty).

What the rules still decide: which rules apply to an order (filters; a rule whose fall-back is
next_rule hands on to the next matching one — the optimiser may use any rule of that chain),
click & collect orders and unreleasable ones (routed by the rule engine before the window is
solved: the pickup store is the customer's choice), and the fall-back of every order the
optimiser leaves out (the rule engine routes it afterwards against what is left, so it is
backordered, held or cancelled exactly as its rule says — or allocated, when the leftovers
allow).

Guarantees: stock and capacity are never exceeded (the same checks as the rule engine); the
answer is deterministic for the same inputs (HiGHS is deterministic; ties are broken by a tiny
cost in store_id order) unless the time limit is hit — then the whole window is routed by the
rule engine and each decision says so. Every decision carries `batch`: the optimiser's
assignment and its cost terms, the LP bound of the window, and what the rule engine alone would
have decided for that order.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_array

from oms.routing import engine as E
from oms.routing.geo import RateBook
from oms.routing.model import ENGINE_VERSION, Candidate, Decision, Order, RoutingContext, RuleTrace
from oms.routing.rules import ProfileSpec, Rule

SOLVER = "HiGHS (scipy.optimize.milp)"
TIE_BREAK = 1e-4   # per location rank step: equal-cost answers resolve in store_id order, deterministically


@dataclass(slots=True)
class WindowStats:
    """What the solver did for one window (for the bench, the CLI and each decision's note)."""

    window: int
    orders: int
    optimised_orders: int                 # releasable delivery orders in the programme
    variables: int = 0
    constraints: int = 0
    status: str = "not_run"               # optimal | time_limit | infeasible | error | empty
    seconds: float = 0.0                  # the window: rule-engine answer, model, solves, LP bound, decisions
    cpu_seconds: float = 0.0
    solve_seconds: float = 0.0
    allocated_by_solver: int = 0
    lp_bound_allocated: float | None = None   # LP relaxation: most orders any assignment could allocate
    greedy_allocated: int = 0             # the rule engine alone, same window, same stock
    fell_back: bool = False
    objective: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(slots=True)
class BatchResult:
    decisions: list[Decision]
    windows: list[WindowStats] = field(default_factory=list)
    greedy: dict[str, Decision] = field(default_factory=dict)   # order id -> the rule engine's answer


@dataclass(slots=True)
class _Option:
    """Order o under rule r: its assessed locations and what the programme may use."""

    order_pos: int
    rule_index: int
    rule: Rule
    view: E._OrderView
    locs: list[E._Loc]
    max_k: int
    z: int = -1
    y: dict[str, int] = field(default_factory=dict)                 # store_id -> var
    x: dict[tuple[int, str], int] = field(default_factory=dict)     # (line index, store_id) -> var
    cost: dict[str, float] = field(default_factory=dict)            # store_id -> lane cost (order weight)


def _copy_usage(usage: E.Usage) -> E.Usage:
    out = E.Usage()
    out.consumed.update(usage.consumed)
    out.shipments.update(usage.shipments)
    return out


def _chain(profile: ProfileSpec, order: Order, view: E._OrderView) -> list[tuple[int, Rule]]:
    """The rules the engine could reach for this order: matching rules, following next_rule."""
    out = []
    for index, rule in enumerate(profile.rules):
        if not rule.enabled or E._filters_mismatch(rule.filters, order, view):
            continue
        out.append((index, rule))
        if rule.fallback[0].action != "next_rule":
            break
    return out


def route_optimised(orders: Iterable[Order], candidates: Sequence[Candidate], profile: ProfileSpec,
                    context: RoutingContext, *, usage: E.Usage | None = None) -> BatchResult:
    """Route a backlog of one country window by window (profile.batch.window_size orders each,
    in arrival order), each window consuming stock and capacity before the next is solved."""
    cands = E._sorted_candidates(candidates)
    book = RateBook(context.rate_cards)
    usage = usage if usage is not None else E.Usage()
    orders = list(orders)
    size = profile.batch_settings.window_size
    result = BatchResult(decisions=[])
    for w, start in enumerate(range(0, len(orders), size)):
        decisions, stats, greedy = _window(w, orders[start:start + size], cands, profile, context, book, usage)
        result.decisions += decisions
        result.windows.append(stats)
        result.greedy.update(greedy)
    return result


def _window(w: int, orders: list[Order], cands: list[Candidate], profile: ProfileSpec, ctx: RoutingContext,
            book: RateBook, usage: E.Usage) -> tuple[list[Decision], WindowStats, dict[str, Decision]]:
    settings = profile.batch_settings
    started, cpu = time.perf_counter(), time.process_time()
    # The rule engine's answer for the window from the same starting point: the fall-back, and
    # the comparison stored with every decision.
    greedy_usage = _copy_usage(usage)
    greedy: dict[str, Decision] = {}
    greedy_list = []
    for order in orders:
        d = E._route(order, cands, profile, ctx, book, greedy_usage)
        greedy_usage.apply(d)
        greedy[order.increment_id] = d
        greedy_list.append(d)
    stats = WindowStats(window=w, orders=len(orders), optimised_orders=0,
                        greedy_allocated=sum(1 for d in greedy_list if d.allocated))

    # Click & collect and unreleasable orders: the rule engine, first, in arrival order.
    decided: dict[int, Decision] = {}
    optimised: list[int] = []
    for pos, order in enumerate(orders):
        if order.is_pickup or not order.payment_releasable:
            d = E._route(order, cands, profile, ctx, book, usage)
            usage.apply(d)
            decided[pos] = d
        else:
            optimised.append(pos)
    stats.optimised_orders = len(optimised)

    options = _options(optimised, orders, cands, profile, ctx, book, usage)
    model = _model(options, cands, usage, settings) if options else None
    solution = None
    if model is None:
        stats.status = "empty"
    else:
        stats.variables, stats.constraints = model["n"], model["m"]
        t0 = time.perf_counter()
        res = milp(model["c"], integrality=np.ones(model["n"]), bounds=Bounds(0, 1),
                   constraints=LinearConstraint(model["A"], model["lb"], model["ub"]),
                   options={"time_limit": settings.time_limit_s, "disp": False, "presolve": True})
        if res.status == 0 and res.x is not None:
            stats.status, solution, stats.objective = "optimal", res.x, round(float(res.fun), 4)
        else:
            stats.status = {1: "time_limit", 2: "infeasible", 3: "unbounded"}.get(res.status, "error")
        if solution is not None and settings.objective == "fewest_splits":
            # At least as many whole orders as the rule engine gives these orders (or the most
            # possible, when that is fewer), with the fewest split shipments, then the most
            # orders, then the cheapest.
            most = int(round(float(solution[model["zmask"]].sum())))
            greedy_here = sum(1 for pos in optimised if greedy[orders[pos].increment_id].allocated)
            floor = min(most, greedy_here)
            floor_row = csr_array(model["zmask"].astype(float).reshape(1, -1))
            left = max(settings.time_limit_s - (time.perf_counter() - t0), 0.001)
            res2 = milp(model["c_splits"], integrality=np.ones(model["n"]), bounds=Bounds(0, 1),
                        constraints=[LinearConstraint(model["A"], model["lb"], model["ub"]),
                                     LinearConstraint(floor_row, floor, np.inf)],
                        options={"time_limit": left, "disp": False, "presolve": True})
            if res2.status == 0 and res2.x is not None:
                solution = res2.x
            else:
                stats.status = "optimal_most_orders"   # the second stage ran out of time: stage one stands
        stats.solve_seconds = round(time.perf_counter() - t0, 3)
        # Upper bound on whole orders: the LP relaxation maximising allocated orders alone.
        bound = milp(model["z_only"], integrality=np.zeros(model["n"]), bounds=Bounds(0, 1),
                     constraints=LinearConstraint(model["A"], model["lb"], model["ub"]),
                     options={"time_limit": settings.time_limit_s, "disp": False})
        if bound.status == 0:
            stats.lp_bound_allocated = round(-float(bound.fun), 3)

    if model is not None and solution is None:
        # Time limit (or a solver failure): the whole window as the rule engine routed it.
        stats.fell_back = True
        for d in greedy_list:
            d.batch = _note(w, stats, "fallback", d, None, settings)
        _resync(usage, greedy_usage)
        stats.seconds = round(time.perf_counter() - started, 3)
        stats.cpu_seconds = round(time.process_time() - cpu, 3)
        return greedy_list, stats, greedy

    chosen: dict[int, _Option] = {}
    if solution is not None:
        for opt in options:
            if solution[opt.z] > 0.5:
                chosen[opt.order_pos] = opt
    # The optimiser's assignments take their units and capacity first, then the orders it left
    # out are routed by the rule engine against what is left, in arrival order.
    for pos in optimised:
        opt = chosen.get(pos)
        if opt is not None:
            d = _decision(opt, solution, profile, ctx, book)
            stats.allocated_by_solver += 1
            d.batch = _note(w, stats, "optimised", greedy[orders[pos].increment_id], opt, settings, d)
            usage.apply(d)
            decided[pos] = d
    for pos in optimised:
        if pos not in decided:
            # Not in the optimiser's answer: the rule's own fall-back (backorder, hold, cancel)
            # applies — or it is allocated, when the leftovers allow.
            d = E._route(orders[pos], cands, profile, ctx, book, usage)
            d.batch = _note(w, stats, "rules_after_optimiser", greedy[orders[pos].increment_id], None, settings)
            usage.apply(d)
            decided[pos] = d
    for pos, d in decided.items():
        if d.batch is None:
            d.batch = _note(w, stats, "rules_before_optimiser", greedy[orders[pos].increment_id], None, settings)
    stats.seconds = round(time.perf_counter() - started, 3)
    stats.cpu_seconds = round(time.process_time() - cpu, 3)
    return [decided[pos] for pos in range(len(orders))], stats, greedy


def _resync(usage: E.Usage, other: E.Usage) -> None:
    usage.consumed.clear()
    usage.consumed.update(other.consumed)
    usage.shipments.clear()
    usage.shipments.update(other.shipments)


def _options(positions: list[int], orders: list[Order], cands: list[Candidate], profile: ProfileSpec,
             ctx: RoutingContext, book: RateBook, usage: E.Usage) -> list[_Option]:
    missing = profile.batch_settings.missing_rate_cost
    out = []
    for pos in positions:
        order = orders[pos]
        view = E._OrderView(order)
        for index, rule in _chain(profile, order, view):
            locs = [loc for loc in E._assess(view, cands, rule, ctx, book, usage, view.destination)
                    if not loc.reasons and loc.covers]
            if not locs:
                continue
            max_k = 1 if E._split_allowed(rule.constraints, order) else rule.constraints.max_shipments_per_order
            if max_k == 1:
                locs = [loc for loc in locs if loc.full]
            union = 0
            for loc in locs:
                union |= loc.covers
            if union != view.all_mask:
                continue
            opt = _Option(pos, index, rule, view, locs, max_k)
            opt.cost = {loc.store_id: _lane_cost(view, loc, book, missing) for loc in locs}
            out.append(opt)
    return out


def _model(options: list[_Option], cands: list[Candidate], usage: E.Usage, settings) -> dict[str, Any] | None:
    cand_of = {c.store_id: c for c in cands}
    rank_of = {c.store_id: i for i, c in enumerate(cands)}
    cost: list[float] = []
    is_z: list[bool] = []
    is_y: list[bool] = []
    rows: list[int] = []
    cols: list[int] = []
    vals: list[float] = []
    lb: list[float] = []
    ub: list[float] = []

    def var(c: float, kind: str) -> int:
        cost.append(c)
        is_z.append(kind == "z")
        is_y.append(kind == "y")
        return len(cost) - 1

    def row(entries: Iterable[tuple[int, float]], lo: float, hi: float) -> None:
        r = len(lb)
        for col, v in entries:
            rows.append(r)
            cols.append(col)
            vals.append(v)
        lb.append(lo)
        ub.append(hi)

    stock_use: dict[tuple[str, str], list[tuple[int, float]]] = defaultdict(list)
    ship_use: dict[str, list[int]] = defaultdict(list)
    limits: dict[str, int | None] = {}
    keep: dict[tuple[str, str], float] = {}
    per_order: dict[int, list[int]] = defaultdict(list)
    max_coef = 0.0
    max_k = 1
    for opt in options:
        opt.z = var(0.0, "z")
        per_order[opt.order_pos].append(opt.z)
        max_k = max(max_k, opt.max_k)
        for loc in opt.locs:
            sid = loc.store_id
            lane = opt.cost[sid]
            c = cand_of[sid]
            coef = lane + TIE_BREAK * rank_of[sid]
            if c.location_type == "store":
                used = c.shipments_today + usage.shipments.get(sid, 0)
                load = used / loc.limit if loc.limit else 0.0
                coef += settings.store_load_penalty * (1 + load)
            max_coef = max(max_coef, coef)
            opt.y[sid] = var(coef, "y")
            ship_use[sid].append(opt.y[sid])
            if loc.limit is not None:
                limits[sid] = loc.limit if limits.get(sid) is None else min(limits[sid], loc.limit)
            else:
                limits.setdefault(sid, None)
            k = opt.rule.constraints.brokering_safety_qty
            for i, line in enumerate(opt.view.lines):
                if loc.covers >> i & 1:
                    xv = var(0.0, "x")
                    opt.x[(i, sid)] = xv
                    stock_use[(sid, line.sku)].append((xv, line.qty))
                    row([(xv, 1.0), (opt.y[sid], -1.0)], -np.inf, 0.0)         # x ≤ y
                    keep[(sid, line.sku)] = min(keep.get((sid, line.sku), k), k)
        for i in range(len(opt.view.lines)):
            row([(v, 1.0) for (li, _), v in opt.x.items() if li == i] + [(opt.z, -1.0)], 0.0, 0.0)  # Σx = z
        row([(v, 1.0) for v in opt.y.values()] + [(opt.z, -float(opt.max_k))], -np.inf, 0.0)       # parcels ≤ K·z
    for zs in per_order.values():
        if len(zs) > 1:
            row([(v, 1.0) for v in zs], 0.0, 1.0)
    for (sid, sku), uses in stock_use.items():
        c = cand_of[sid]
        atp = max(c.atp.get(sku, 0.0), 0.0) - usage.consumed.get((sid, sku), 0.0)
        free = max(atp - keep.get((sid, sku), 0.0), 0.0)
        if sum(q for _, q in uses) > free + E.EPS:
            row(uses, -np.inf, free + E.EPS)
    for sid, ys in ship_use.items():
        limit = limits.get(sid)
        if limit is None:
            continue
        left = max(limit - cand_of[sid].shipments_today - usage.shipments.get(sid, 0), 0)
        if len(ys) > left:
            row([(v, 1.0) for v in ys], -np.inf, float(left))
    n = len(cost)
    if not n:
        return None
    base = np.array(cost)                  # per parcel: lane cost + store load (+ tie-break)
    zmask, ymask = np.array(is_z), np.array(is_y)
    # most_orders: every whole order outweighs any cost (big_m), then split penalty and cost.
    big_m = max_k * (max_coef + settings.split_penalty) + 1.0
    c = base.copy()
    c[ymask] += settings.split_penalty
    c[zmask] = -(big_m + settings.split_penalty)   # the first parcel carries no split penalty
    # fewest_splits (with a floor on whole orders added by the caller): a single-parcel order is
    # always worth allocating (reward > its cost), a split one only when the floor needs it.
    reward = max_coef + 1.0
    per_split = max_k * max_coef + reward + settings.split_penalty + 1.0
    c_splits = base.copy()
    c_splits[ymask] += per_split
    c_splits[zmask] = -(reward + per_split)
    z_only = np.zeros(n)
    z_only[zmask] = -1.0
    A = csr_array((np.array(vals), (np.array(rows), np.array(cols))), shape=(len(lb), n))
    return {"c": c, "c_splits": c_splits, "z_only": z_only, "zmask": zmask, "A": A, "lb": np.array(lb),
            "ub": np.array(ub), "n": n, "m": len(lb)}


def _lane_cost(view: E._OrderView, loc: E._Loc, book: RateBook, missing: float) -> float:
    """The cheapest lane from the location to the customer at the whole order's weight (a parcel
    with part of the order is priced again, at its own weight, when the decision is built)."""
    q = book.best(view.order.country_code, loc.store_id, loc.cand.location_type, view.destination.city,
                  loc.distance, view.weight_g)[0] if book else None
    return q.cost if q is not None else missing


def _decision(opt: _Option, x: np.ndarray, profile: ProfileSpec, ctx: RoutingContext, book: RateBook) -> Decision:
    view = opt.view
    order = view.order
    by_id = {loc.store_id: loc for loc in opt.locs}
    chosen = []
    for i in range(len(view.lines)):
        sid = next(s for (li, s), v in sorted(opt.x.items(), key=lambda kv: kv[0][1]) if li == i and x[v] > 0.5)
        chosen.append(by_id[sid])
    allocations, shipments = E._shipments(view, chosen, "ship", None, book, view.destination)
    selected = {s.store_id for s in shipments}
    ranked = E._rank(opt.locs)
    outcome = "allocated" if len(shipments) == 1 else "split"
    trace = RuleTrace(opt.rule_index, opt.rule.name, True, outcome,
                      "assigned by the batch optimiser: " + ", ".join(s.store_id for s in shipments))
    decision = Decision.model_construct(
        order_increment_id=order.increment_id, country_code=order.country_code, decided_at=ctx.now,
        profile_id=getattr(profile, "profile_id", None), profile_version=getattr(profile, "version", None),
        profile_name=profile.name, outcome=outcome, reason="batch_optimised", rule_index=opt.rule_index,
        rule_name=opt.rule.name, allocations=allocations, shipments=shipments, unallocated=[],
        candidates=E._reports(opt.locs, ranked, selected, view), rules_tried=[trace], alternatives=[],
        hold_queue=None, cancel_at=None, explanation="", engine_version=ENGINE_VERSION, batch=None)
    decision.explanation = E._explain(decision, profile, view)
    return decision


def _summary(d: Decision) -> dict[str, Any]:
    costs = [s.cost for s in d.shipments if s.cost is not None]
    return {"outcome": d.outcome, "stores": [s.store_id for s in d.shipments], "shipments": len(d.shipments),
            "cost": round(sum(costs), 3) if d.shipments else None, "reason": d.reason}


def _note(w: int, stats: WindowStats, how: str, greedy: Decision, opt: _Option | None, settings,
          d: Decision | None = None) -> dict[str, Any]:
    note: dict[str, Any] = {"mode": "batch", "decided_by": how, "window": w, "solver": SOLVER,
                            "greedy": _summary(greedy)}
    if how == "fallback":
        note["why"] = f"solver status {stats.status} within {settings.time_limit_s:g} s: the rule engine routed the window"
    if opt is not None and d is not None:
        costs = [s.cost for s in d.shipments if s.cost is not None]
        stores = [s.store_id for s in d.shipments if s.fulfilment == "ship"]
        note["assignment"] = {a.line_key: a.store_id for a in d.allocations}
        note["cost"] = {"shipping": round(sum(costs), 3), "split_penalty": settings.split_penalty * (len(stores) - 1),
                        "store_parcels": sum(1 for s in d.shipments if any(
                            loc.store_id == s.store_id and loc.cand.location_type == "store" for loc in opt.locs))}
        g = note["greedy"]
        same = g["stores"] == [s.store_id for s in d.shipments]
        note["vs_greedy"] = ("same as the rule engine" if same else
                             f"rule engine: {g['outcome']} from {', '.join(g['stores']) or 'nowhere'}"
                             + (f" at cost {g['cost']:g}" if g["cost"] is not None else ""))
        d.explanation += (f" Batch optimiser (window {w}, {stats.optimised_orders} orders, {SOLVER}): "
                          f"shipping cost {note['cost']['shipping']:g}; {note['vs_greedy']}.")
    return note
