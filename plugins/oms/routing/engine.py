"""The routing engine: `route(order, candidates, profile, context) -> Decision`, a pure function.

No database, no clock, no randomness: the caller supplies real-time ATP per location, today's
shipment counts, the store exclusions after rejections, the rate cards and `now`. Same inputs,
same decision — ties end on store_id — so a decision can be replayed and explained.

How a profile is applied (HotWax's routing, oms-anchors.md §2.3, done per order in Python):

1. An order that is not releasable (not paid/authorised and not cash on delivery) is held with
   reason `awaiting_payment`; no rule runs.
2. Rules are tried in order. A rule whose filters do not match is skipped (and the trace says
   which filter). For a matching rule:
   - every candidate is assessed: excluded for a reason (inactive, other country, type not
     allowed, not ship-from-store, ship from store disabled by the rule, too far, capacity
     reached), and per SKU (excluded after a rejection until T, no ATP: has 1, needs 2);
   - the eligible ones are ranked by the rule's sorts, lexicographically, then store_id; every
     criterion's score is recorded;
   - the best location holding every line takes the whole order;
   - otherwise, when the rule allows splitting (max_shipments_per_order > 1, order value not
     below split_only_above_value), the fewest locations that together hold every line (each line
     whole from one location; among equally few, the best-ranked set);
   - otherwise the rule's fall-back chain: next_rule, hold, backorder, cancel_after_days N,
     and for click & collect first transfer / offer_alternatives, or reject.
3. Click & collect: the pickup store is fixed. Lines it holds are allocated there; when some are
   missing, the fall-back decides: transfer them from other locations (ranked by the rule's sorts
   with distances from the pickup store), offer other pickup stores that hold everything, reject.
4. No rule allocated and no fall-back decided: held (`no_rule_matched` / `no_rule_left`).
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from oms.routing.geo import Point, RateBook
from oms.routing.model import (
    ENGINE_VERSION,
    Allocation,
    Candidate,
    CandidateReport,
    Decision,
    Order,
    OrderLine,
    PickupAlternative,
    Reason,
    RoutingContext,
    RuleTrace,
    Shipment,
    UnallocatedLine,
)
from oms.routing.rules import (
    Constraints,
    DistanceSort,
    Filters,
    PrioritySort,
    ProfileSpec,
    Rule,
    ServiceLevelSort,
    ShippingCostSort,
    StockDepthSort,
)

EPS = 1e-9
_UNSET = object()
EXACT_SPLIT_LIMIT = 20_000   # location sets examined exactly per split size; greedy beyond
MAX_EXPLAINED_EXCLUSIONS = 12


# ------------------------------------------------------------------------------ running usage
@dataclass(slots=True)
class Usage:
    """What earlier decisions of a batch took: units per (store, sku), shipments per store."""

    consumed: dict[tuple[str, str], float] = field(default_factory=lambda: defaultdict(float))
    shipments: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def apply(self, decision: Decision) -> None:
        for a in decision.allocations:
            self.consumed[(a.store_id, a.sku)] += a.qty
        for s in decision.shipments:
            if s.fulfilment != "pickup":
                self.shipments[s.store_id] += 1


_NO_USAGE = Usage()


# ---------------------------------------------------------------------------- assessed location
@dataclass(slots=True)
class _Loc:
    cand: Candidate
    reasons: list[Reason]                  # location-level: excluded when non-empty
    sku_reasons: list[Reason]              # per SKU: cannot serve that SKU
    usable: dict[str, float]               # units it may give per SKU of the order
    covers: int = 0                        # bit mask of lines it could serve alone
    full: bool = False                     # holds every line (aggregated per SKU)
    distance: float | None = None
    scores: dict[str, float | None] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    key: tuple = ()
    limit: int | None = None               # daily capacity limit under this rule
    depth: float = 0.0                     # units of the scarcest SKU left after the order

    @property
    def store_id(self) -> str:
        return self.cand.store_id

    @property
    def excluded(self) -> bool:
        return bool(self.reasons) or not self.covers


# Sort kinds, compiled once per rule (isinstance on every candidate of every order adds up).
_PRIO_LOC, _PRIO_TYPE, _DIST, _COST, _SERVICE, _DEPTH = range(6)
_PLANS: dict[int, tuple[Rule, list[tuple[int, object]]]] = {}


def _plan(rule: Rule) -> list[tuple[int, object]]:
    hit = _PLANS.get(id(rule))
    if hit is not None and hit[0] is rule:
        return hit[1]
    plan: list[tuple[int, object]] = []
    for sort in rule.sorts:
        if isinstance(sort, PrioritySort):
            if sort.locations is not None:
                plan.append((_PRIO_LOC, {sid: i for i, sid in enumerate(sort.locations)}))
            else:
                plan.append((_PRIO_TYPE, {t: i for i, t in enumerate(sort.location_types or ())}))
        elif isinstance(sort, DistanceSort):
            plan.append((_DIST, sort.band_km))
        elif isinstance(sort, ShippingCostSort):
            plan.append((_COST, sort.band))
        elif isinstance(sort, ServiceLevelSort):
            plan.append((_SERVICE, None))
        elif isinstance(sort, StockDepthSort):
            plan.append((_DEPTH, None))
    if len(_PLANS) > 512:
        _PLANS.clear()
    _PLANS[id(rule)] = (rule, plan)
    return plan


@dataclass(slots=True)
class _Result:
    """What one rule decided (None from _evaluate = fall through to the next rule)."""

    outcome: str
    reason: str
    allocations: list[Allocation] = field(default_factory=list)
    shipments: list[Shipment] = field(default_factory=list)
    unallocated: list[UnallocatedLine] = field(default_factory=list)
    candidates: list[CandidateReport] = field(default_factory=list)
    alternatives: list[PickupAlternative] = field(default_factory=list)
    hold_queue: str | None = None
    cancel_at: object = None


class _OrderView:
    """Per-order facts computed once: demand per SKU, categories, weight, destination."""

    __slots__ = ("order", "lines", "demand", "skus", "categories", "weight_g", "destination", "all_mask", "geo",
                 "lanes", "cover_keys")

    def __init__(self, order: Order, lines: Sequence[OrderLine] | None = None):
        self.order = order
        self.lines = list(lines if lines is not None else order.lines)
        demand: dict[str, float] = {}
        for line in self.lines:
            demand[line.sku] = demand.get(line.sku, 0.0) + line.qty
        self.demand = demand
        self.skus = sorted(demand)
        self.categories = [line.category for line in self.lines]
        self.weight_g = sum((line.weight_g or 0.0) * line.qty for line in self.lines)
        self.destination = Point(order.latitude, order.longitude, order.city)
        self.all_mask = (1 << len(self.lines)) - 1
        self.geo: dict[Point, dict[str, float | None]] = {}      # distances per origin, shared by the rules
        self.lanes: dict[Point, dict[str, tuple]] = {}            # (cheapest, fastest) lane per origin and location
        self.cover_keys: dict[int, list[str]] = {}

    def keys_of(self, mask: int) -> list[str]:
        keys = self.cover_keys.get(mask)
        if keys is None:
            keys = self.cover_keys[mask] = [line.line_key for i, line in enumerate(self.lines) if mask >> i & 1]
        return keys


# ------------------------------------------------------------------------------------- public
def route(order: Order, candidates: Sequence[Candidate], profile: ProfileSpec, context: RoutingContext) -> Decision:
    """Decide where an order is fulfilled. Pure: same inputs, same decision."""
    return _route(order, _sorted_candidates(candidates), profile, context, RateBook(context.rate_cards), _NO_USAGE)


def route_batch(orders: Iterable[Order], candidates: Sequence[Candidate], profile: ProfileSpec,
                context: RoutingContext) -> list[Decision]:
    """Route a backlog of one country in the given order, each decision consuming the ATP and
    the daily capacity it allocated before the next order is routed (the inputs are not changed)."""
    cands = _sorted_candidates(candidates)
    book = RateBook(context.rate_cards)
    usage = Usage()
    decisions = []
    for order in orders:
        decision = _route(order, cands, profile, context, book, usage)
        usage.apply(decision)
        decisions.append(decision)
    return decisions


def is_releasable(state: str | None, payment_method: str | None) -> bool:
    """Magento order state → may it be routed? processing = paid or authorised; cash on delivery
    may go while new/pending; pending_payment, payment_review, holded, canceled… wait."""
    if state == "processing":
        return True
    cod = (payment_method or "").lower() in {"cashondelivery", "cod", "msp_cashondelivery", "phoenix_cashondelivery"}
    return cod and state in {"new", "pending"}


# ------------------------------------------------------------------------------------ routing
def _sorted_candidates(candidates: Sequence[Candidate]) -> list[Candidate]:
    cands = sorted(candidates, key=lambda c: c.store_id)
    for a, b in itertools.pairwise(cands):
        if a.store_id == b.store_id:
            raise ValueError(f"candidate {a.store_id} appears twice")
    return cands


def _route(order: Order, cands: list[Candidate], profile: ProfileSpec, ctx: RoutingContext, book: RateBook,
           usage: Usage) -> Decision:
    view = _OrderView(order)
    base = dict(order_increment_id=order.increment_id, country_code=order.country_code, decided_at=ctx.now,
                profile_id=getattr(profile, "profile_id", None), profile_version=getattr(profile, "version", None),
                profile_name=profile.name)
    if not order.payment_releasable:
        unallocated = [_unalloc(line, "awaiting_payment", "order not paid/authorised and not cash on delivery")
                       for line in view.lines]
        text = (f"Order {order.increment_id} ({order.country_code}) was not routed: it is not releasable "
                f"(not paid/authorised and not cash on delivery). It waits for payment; nothing is reserved.")
        # Every list field given: model_construct fills a missing one through pydantic's default_factory
        # path, which inspects `list`'s signature on each call (~1.5 ms a field, most of an unpaid order's cost).
        return Decision.model_construct(**base, outcome="held", reason="awaiting_payment", allocations=[], shipments=[],
                                        unallocated=unallocated, candidates=[], rules_tried=[], alternatives=[],
                                        hold_queue="awaiting_payment", explanation=text)
    traces: list[RuleTrace] = []
    matched_any = False
    for index, rule in enumerate(profile.rules):
        if not rule.enabled:
            traces.append(_trace(index, rule, False, "disabled", "rule is disabled"))
            continue
        mismatch = _filters_mismatch(rule.filters, order, view)
        if mismatch:
            traces.append(_trace(index, rule, False, "filtered_out", mismatch))
            continue
        matched_any = True
        if order.is_pickup:
            result, summary, reports = _evaluate_pickup(view, cands, rule, ctx, book, usage)
        else:
            result, summary, reports = _evaluate_delivery(view, cands, rule, ctx, book, usage)
        if result is None:
            traces.append(_trace(index, rule, True, "fallback:next_rule", summary, reports))
            continue
        traces.append(_trace(index, rule, True, result.outcome if result.allocations else f"fallback:{result.reason}",
                             summary))
        decision = Decision.model_construct(
            **base, outcome=result.outcome, reason=result.reason, rule_index=index, rule_name=rule.name,
            allocations=result.allocations, shipments=result.shipments, unallocated=result.unallocated,
            candidates=result.candidates, rules_tried=traces, alternatives=result.alternatives,
            hold_queue=result.hold_queue, cancel_at=result.cancel_at, explanation="",
            engine_version=ENGINE_VERSION)
        decision.explanation = _explain(decision, profile, view)
        return decision
    reason = "no_rule_left" if matched_any else "no_rule_matched"
    detail = ("every matching rule fell through to the next rule and none was left" if matched_any
              else "no rule's filters match this order")
    last_reports = next((t.candidates for t in reversed(traces) if t.candidates), None) or []
    decision = Decision.model_construct(
        **base, outcome="held", reason=reason, rule_index=None, rule_name=None, allocations=[], shipments=[],
        unallocated=[_unalloc(line, reason, detail) for line in view.lines], candidates=last_reports,
        rules_tried=traces, alternatives=[], hold_queue="routing_hold", cancel_at=None, explanation="",
        engine_version=ENGINE_VERSION)
    decision.explanation = _explain(decision, profile, view)
    return decision


def _trace(index: int, rule: Rule, matched: bool, result: str, detail: str,
           reports: list[CandidateReport] | None = None) -> RuleTrace:
    return RuleTrace(index, rule.name, matched, result, detail, reports)


def _unalloc(line: OrderLine, reason: str, detail: str) -> UnallocatedLine:
    return UnallocatedLine(line.line_key, line.sku, line.qty, reason, detail)


# ------------------------------------------------------------------------------------ filters
def _filters_mismatch(f: Filters, order: Order, view: _OrderView) -> str | None:
    method = order.shipping_method
    if f.is_pickup is not None and f.is_pickup != order.is_pickup:
        return "order is click & collect" if order.is_pickup else "order is not click & collect"
    if f.shipping_method_in is not None and method not in f.shipping_method_in:
        return f"shipping method {method!r} not in {f.shipping_method_in}"
    if f.shipping_method_not_in is not None and method in f.shipping_method_not_in:
        return f"shipping method {method!r} is excluded by the rule"
    if f.category_any is not None and not any(c in f.category_any for c in view.categories):
        return f"no line in categories {f.category_any}"
    if f.category_all is not None:
        for line in view.lines:
            if line.category not in f.category_all:
                return f"line {line.line_key} is in category {line.category!r}, not in {f.category_all}"
    if f.order_value_min is not None and order.order_value < f.order_value_min:
        return f"order value {order.order_value:g} below {f.order_value_min:g}"
    if f.order_value_max is not None and order.order_value > f.order_value_max:
        return f"order value {order.order_value:g} above {f.order_value_max:g}"
    if f.channel_in is not None and order.channel_code not in f.channel_in:
        return f"channel {order.channel_code!r} not in {f.channel_in}"
    return None


# ---------------------------------------------------------------------------------- assessment
def _fmt(qty: float) -> str:
    return f"{qty:g}"


def _usable_per_sku(view: _OrderView, c: Candidate, cons: Constraints, ctx: RoutingContext, usage: Usage,
                    reasons: list[Reason]) -> tuple[dict[str, float], float]:
    """Units the location may give per SKU of the order, and the stock depth (units of the
    scarcest SKU left after the order; negative = short). Appends per-SKU reasons for the gaps."""
    usable: dict[str, float] = {}
    depth = math.inf
    exclusions = None
    if c.exclusions:
        exclusions = {}
        for ex in c.exclusions:
            if ex.until > ctx.now and (ex.sku not in exclusions or ex.until > exclusions[ex.sku].until):
                exclusions[ex.sku] = ex
    keep = cons.brokering_safety_qty
    atp_of = c.atp
    consumed = usage.consumed
    sid = c.store_id
    for sku, need in view.demand.items():
        if exclusions:
            ex = exclusions.get(sku)
            if ex is not None:
                usable[sku] = 0.0
                depth = min(depth, -need)
                reasons.append(Reason("excluded_after_rejection", f"excluded for {sku} until {ex.until.isoformat()} "
                                                                  f"after rejection ({ex.reason})", sku))
                continue
        atp = atp_of.get(sku, 0.0)
        if atp < 0:
            atp = 0.0
        if consumed:
            atp -= consumed.get((sid, sku), 0.0)
        free = atp - keep if atp > keep else 0.0
        usable[sku] = free
        if free - need < depth:
            depth = free - need
        if free + EPS < need:
            kept = f" + {_fmt(keep)} kept back" if keep else ""
            reasons.append(Reason("no_atp", f"no ATP for {sku} (has {_fmt(max(atp, 0.0))}, needs {_fmt(need)}{kept})",
                                  sku))
    return usable, depth


def _static_reasons(c: Candidate, rule: Rule, country: str) -> list[Reason]:
    """Reasons that do not depend on the order beyond its country (cached per rule and network)."""
    cons = rule.constraints
    reasons: list[Reason] = []
    if c.country_code is not None and c.country_code != country:
        reasons.append(Reason("other_country", f"in {c.country_code}, the order is for {country}"))
    if not c.active:
        reasons.append(Reason("inactive", "location is inactive"))
    if cons.location_types is not None and c.location_type not in cons.location_types:
        reasons.append(Reason("type_not_allowed", f"{c.location_type} not allowed by rule '{rule.name}' "
                                                  f"(only {', '.join(cons.location_types)})"))
    if c.location_type == "store":
        if not cons.ship_from_store_enabled:
            reasons.append(Reason("ship_from_store_disabled", f"rule '{rule.name}' does not ship from stores"))
        elif not c.ship_from_store:
            reasons.append(Reason("not_ship_from_store", "store does not ship (ship_from_store is off)"))
    return reasons


def _capacity_limit(c: Candidate, cons: Constraints) -> int | None:
    if c.store_id in cons.location_daily_capacity:
        return cons.location_daily_capacity[c.store_id]
    return cons.store_daily_capacity if c.location_type == "store" else None


_STATICS: dict[tuple[int, int, str], tuple[Rule, Sequence[Candidate], list[tuple[list[Reason], int | None]]]] = {}


def _statics(rule: Rule, cands: Sequence[Candidate], country: str) -> list[tuple[list[Reason], int | None]]:
    """Per candidate: its order-independent reasons and its daily limit under the rule. A batch
    routes many orders over one network: computed once per (rule, network)."""
    k = (id(rule), id(cands), country)
    hit = _STATICS.get(k)
    if hit is not None and hit[0] is rule and hit[1] is cands:
        return hit[2]
    found = [(_static_reasons(c, rule, country), _capacity_limit(c, rule.constraints)) for c in cands]
    if len(_STATICS) > 64:
        _STATICS.clear()
    _STATICS[k] = (rule, cands, found)
    return found


def _assess(view: _OrderView, cands: Sequence[Candidate], rule: Rule, ctx: RoutingContext, book: RateBook,
            usage: Usage, origin: Point, skip: str | None = None) -> list[_Loc]:
    """Every candidate with its reasons, usable units, coverage and per-criterion scores."""
    cons = rule.constraints
    max_km = cons.max_distance_km
    plan = _plan(rule)
    lines = view.lines
    all_mask = view.all_mask
    distances = view.geo.setdefault(origin, {})
    lanes = view.lanes.setdefault(origin, {}) if book else None
    shipments = usage.shipments
    locs = []
    for c, (static, limit) in zip(cands, _statics(rule, cands, view.order.country_code), strict=True):
        sid = c.store_id
        if sid == skip:
            continue
        distance = distances.get(sid, _UNSET)
        if distance is _UNSET:
            distance = distances[sid] = origin.distance_to(c.latitude, c.longitude, c.city)
        reasons = static
        if max_km is not None and distance is not None and distance > max_km:
            reasons = [*reasons, Reason("too_far", f"{distance:.1f} km away, rule allows {max_km:g} km")]
        if limit is not None:
            used = c.shipments_today + shipments.get(sid, 0)
            if used >= limit:
                reasons = [*reasons, Reason("capacity_reached", f"capacity reached: {used} of {limit} shipments today")]
        sku_reasons: list[Reason] = []
        usable, depth = _usable_per_sku(view, c, cons, ctx, usage, sku_reasons)
        if depth >= -EPS:
            covers = all_mask
        else:
            covers = 0
            for i, line in enumerate(lines):
                if usable[line.sku] + EPS >= line.qty:
                    covers |= 1 << i
        loc = _Loc(c, reasons, sku_reasons, usable, covers, depth >= -EPS, distance, limit=limit, depth=depth)
        _score(loc, view, plan, book, origin, lanes)
        locs.append(loc)
    return locs


def _band(value: float, band: float | None) -> float:
    return math.floor(value / band + EPS) if band else value


def _score(loc: _Loc, view: _OrderView, plan: list[tuple[int, object]], book: RateBook, origin: Point,
           lanes: dict[str, tuple] | None) -> None:
    """Per-criterion values (recorded) and the lexicographic sort key (smaller = better)."""
    c = loc.cand
    distance = loc.distance
    km = None if distance is None else round(distance, 2)
    scores: dict[str, float | None] = {"distance_km": km}
    notes: dict[str, str] = {}
    key: list = []
    for kind, arg in plan:
        if kind == _DIST:
            scores["distance_to_customer"] = km
            key.append((1, 0.0) if distance is None else (0, _band(distance, arg)))
        elif kind == _PRIO_LOC or kind == _PRIO_TYPE:
            pos = arg.get(c.store_id if kind == _PRIO_LOC else c.location_type, len(arg))
            scores["priority"] = pos + 1
            if pos == len(arg):
                notes["priority"] = "not in the priority list"
            key.append(pos)
        elif kind == _COST or kind == _SERVICE:
            lane = lanes.get(c.store_id) if lanes is not None else (None, None)
            if lane is None:
                lane = lanes[c.store_id] = book.best(view.order.country_code, c.store_id, c.location_type,
                                                     origin.city, distance, view.weight_g)
            cheapest, fastest = lane
            q = cheapest if kind == _COST else fastest
            name = "shipping_cost" if kind == _COST else "service_level"
            if q is None:
                scores[name] = None
                notes[name] = "no rate card for this lane"
                key.append((1, 0.0, 0.0))
            else:
                scores[name] = q.cost if kind == _COST else q.transit_days
                notes[name] = q.courier
                key.append((0, _band(q.cost, arg), q.transit_days) if kind == _COST else (0, q.transit_days, q.cost))
        else:  # _DEPTH
            scores["stock_depth"] = loc.depth
            key.append(-loc.depth)
    key.append(c.store_id)
    loc.scores = scores
    loc.notes = notes
    loc.key = tuple(key)


def _rank(locs: list[_Loc]) -> list[_Loc]:
    return sorted((loc for loc in locs if not loc.excluded), key=lambda loc: loc.key)


def _reports(locs: list[_Loc], ranked: list[_Loc], selected: set[str], view: _OrderView) -> list[CandidateReport]:
    rank = {loc.store_id: i + 1 for i, loc in enumerate(ranked)}
    keys = [line.line_key for line in view.lines]
    out = []
    for loc in locs:
        sid = loc.store_id
        if sid in selected:
            status = "selected"
        elif loc.excluded:
            status = "excluded"
        elif loc.full:
            status = "eligible"
        else:
            status = "partial"
        mask = loc.covers
        covers = keys if mask == view.all_mask else view.keys_of(mask)
        out.append(CandidateReport(sid, loc.cand.location_type, status, rank.get(sid), loc.usable, covers,
                                   loc.scores, loc.notes, loc.reasons + loc.sku_reasons if loc.sku_reasons else loc.reasons))
    return out


# --------------------------------------------------------------------------------- allocation
def _assign(lines: Sequence[OrderLine], locs: Sequence[_Loc]) -> list[_Loc] | None:
    """Each line, whole, to the first location (in the given order) that still has its units."""
    remaining: dict[tuple[str, str], float] = {}
    chosen = []
    for line in lines:
        for loc in locs:
            k = (loc.store_id, line.sku)
            left = remaining.get(k, loc.usable[line.sku])
            if left + EPS >= line.qty:
                remaining[k] = left - line.qty
                chosen.append(loc)
                break
        else:
            return None
    return chosen


def _find_split(view: _OrderView, ranked: list[_Loc], max_k: int) -> tuple[list[_Loc], str] | None:
    """The fewest locations that together hold every line; among equally few, the set whose
    members rank best (combinations are enumerated in rank order)."""
    useful = [loc for loc in ranked if loc.covers]
    union = 0
    for loc in useful:
        union |= loc.covers
    if union != view.all_mask:
        return None
    for k in range(2, max_k + 1):
        if k > len(useful):
            break
        if math.comb(len(useful), k) <= EXACT_SPLIT_LIMIT:
            for combo in itertools.combinations(useful, k):
                mask = 0
                for loc in combo:
                    mask |= loc.covers
                if mask != view.all_mask:
                    continue
                chosen = _assign(view.lines, combo)
                if chosen is not None and len({id(c) for c in chosen}) == k:
                    return chosen, "exact"
        else:
            chosen = _greedy_cover(view, useful, k)
            if chosen is not None:
                return chosen, "greedy"
    return None


def _greedy_cover(view: _OrderView, useful: list[_Loc], k: int) -> list[_Loc] | None:
    picked: list[_Loc] = []
    left = view.all_mask
    while left and len(picked) < k:
        best = max((loc for loc in useful if loc not in picked),
                   key=lambda loc: (bin(loc.covers & left).count("1"), -useful.index(loc)), default=None)
        if best is None or not best.covers & left:
            return None
        picked.append(best)
        left &= ~best.covers
    if left:
        return None
    picked.sort(key=useful.index)
    return _assign(view.lines, picked)


def _split_allowed(cons: Constraints, order: Order) -> str | None:
    if cons.max_shipments_per_order < 2:
        return "the rule ships in one shipment (max_shipments_per_order 1)"
    if cons.split_only_above_value is not None and order.order_value < cons.split_only_above_value:
        return f"split only above {cons.split_only_above_value:g}; the order is worth {order.order_value:g}"
    return None


def _shipments(view: _OrderView, chosen: list[_Loc], fulfilment: str, deliver_to: str | None,
               book: RateBook, origin: Point, start_no: int = 1) -> tuple[list[Allocation], list[Shipment]]:
    """Allocations and shipments, shipments numbered in the order their locations rank."""
    by_store: dict[str, _Loc] = {loc.store_id: loc for loc in chosen}
    order_of = {sid: i for i, sid in enumerate(sorted(by_store, key=lambda sid: by_store[sid].key))}
    allocations = []
    lines_of: dict[str, list[OrderLine]] = defaultdict(list)
    for line, loc in zip(view.lines, chosen, strict=True):
        lines_of[loc.store_id].append(line)
    shipments = []
    for sid in sorted(order_of, key=order_of.get):
        no = start_no + order_of[sid]
        loc = by_store[sid]
        lines = lines_of[sid]
        weight = sum((line.weight_g or 0.0) * line.qty for line in lines)
        courier = cost = transit = None
        if fulfilment != "pickup" and book:
            q = book.best(view.order.country_code, sid, loc.cand.location_type, origin.city, loc.distance, weight)[0]
            if q is not None:
                courier, cost, transit = q.courier, q.cost, q.transit_days
        shipments.append(Shipment(
            shipment_no=no, store_id=sid, fulfilment=fulfilment, line_keys=[line.line_key for line in lines],
            deliver_to_store_id=deliver_to, weight_g=weight, courier=courier, cost=cost, transit_days=transit,
            capacity_limit=None if fulfilment == "pickup" else loc.limit))
        for line in lines:
            allocations.append(Allocation(
                line_key=line.line_key, sku=line.sku, qty=line.qty, store_id=sid, shipment_no=no,
                fulfilment=fulfilment, deliver_to_store_id=deliver_to))
    position = {line.line_key: i for i, line in enumerate(view.lines)}
    allocations.sort(key=lambda a: position[a.line_key])
    return allocations, shipments


def _source(view: _OrderView, ranked: list[_Loc], rule: Rule) -> tuple[list[_Loc] | None, str, str]:
    """Single location, else split, from the ranked eligible locations.
    Returns (the location of each line, kind, why-not text)."""
    full = [loc for loc in ranked if loc.full]
    if full:
        return [full[0]] * len(view.lines), "single", ""
    union = 0
    for loc in ranked:
        union |= loc.covers
    if union != view.all_mask:
        short = [f"{_fmt(line.qty)} of {line.sku}" for i, line in enumerate(view.lines) if not union >> i & 1]
        return None, "", "no eligible location has " + ", ".join(short)
    why = "no eligible location holds every line"
    blocked = _split_allowed(rule.constraints, view.order)
    if blocked:
        return None, "", f"{why}; {blocked}"
    found = _find_split(view, ranked, rule.constraints.max_shipments_per_order)
    if found is None:
        return None, "", f"{why}, and no {rule.constraints.max_shipments_per_order} locations together hold them"
    return found[0], f"split ({found[1]})", ""


def _line_gaps(view: _OrderView, locs: list[_Loc], reason_if_available: str, detail: str) -> list[UnallocatedLine]:
    out = []
    open_locs = [loc for loc in locs if not loc.reasons]
    for line in view.lines:
        best, most = None, 0.0
        for loc in open_locs:  # in store_id order: the first of equals wins
            if loc.usable.get(line.sku, 0.0) > most + EPS:
                best, most = loc, loc.usable[line.sku]
        if most + EPS < line.qty:
            where = f" (most: {_fmt(most)} at {best.store_id})" if best and most > 0 else ""
            out.append(_unalloc(line, "no_stock", f"no eligible location has {_fmt(line.qty)} of {line.sku}{where}"))
        else:
            out.append(_unalloc(line, reason_if_available, detail))
    return out


def _terminal(step, view: _OrderView, ctx: RoutingContext) -> tuple[str, str, str | None, object]:
    """(outcome, reason, hold_queue, cancel_at) of a terminal fall-back step other than next_rule."""
    if step.action == "hold":
        return "held", "hold_queue", step.queue or "routing_hold", None
    if step.action == "backorder":
        return "backordered", "awaiting_stock", None, None
    if step.action == "cancel_after_days":
        cancel_at = (view.order.created_at or ctx.now) + timedelta(days=step.days)
        if ctx.now >= cancel_at:
            return "cancelled", "cancel_after_days", None, cancel_at
        return "backordered", "awaiting_stock", None, cancel_at
    if step.action == "reject":
        return "rejected", "pickup_rejected", None, None
    raise ValueError(step.action)


def _evaluate_delivery(view, cands, rule, ctx, book, usage):
    locs = _assess(view, cands, rule, ctx, book, usage, view.destination)
    ranked = _rank(locs)
    chosen, kind, why = _source(view, ranked, rule)
    if chosen is not None:
        allocations, shipments = _shipments(view, chosen, "ship", None, book, view.destination)
        selected = {s.store_id for s in shipments}
        outcome = "allocated" if len(shipments) == 1 else "split"
        result = _Result(outcome=outcome, reason="single_location" if kind == "single" else "fewest_locations",
                         allocations=allocations, shipments=shipments,
                         candidates=_reports(locs, ranked, selected, view))
        return result, f"{outcome}: " + ", ".join(s.store_id for s in shipments), None
    reports = _reports(locs, ranked, set(), view)
    for step in rule.fallback:
        if step.action == "next_rule":
            return None, f"{why}; fallback next_rule", reports
        outcome, reason, queue, cancel_at = _terminal(step, view, ctx)
        gaps = _line_gaps(view, locs, "not_within_rule_limits", why)
        return _Result(outcome=outcome, reason=reason, unallocated=gaps, candidates=reports, hold_queue=queue,
                       cancel_at=cancel_at), f"{why}; fallback {step.action}", None
    raise AssertionError("fallback chains end with a terminal step")  # pragma: no cover


def _evaluate_pickup(view, cands, rule, ctx, book, usage):
    order = view.order
    store = next((c for c in cands if c.store_id == order.pickup_store_id), None)
    reports: list[CandidateReport] = []
    pickup_reasons: list[Reason] = []
    at_store: list[OrderLine] = []
    missing: list[OrderLine] = list(view.lines)
    ploc = None
    if store is None:
        pickup_reasons.append(Reason("not_a_candidate", f"pickup store {order.pickup_store_id} is not a candidate"))
    else:
        if store.country_code is not None and store.country_code != order.country_code:
            pickup_reasons.append(Reason("other_country", f"in {store.country_code}, the order is for {order.country_code}"))
        if not store.active:
            pickup_reasons.append(Reason("inactive", "location is inactive"))
        if not store.pickup_enabled:
            pickup_reasons.append(Reason("not_pickup_enabled", "store does not offer click & collect"))
        sku_reasons: list[Reason] = []
        usable, _ = _usable_per_sku(view, store, rule.constraints, ctx, usage, sku_reasons)
        ploc = _Loc(cand=store, reasons=pickup_reasons, sku_reasons=sku_reasons, usable=usable)
        ploc.distance = view.destination.distance_to(store.latitude, store.longitude, store.city)
        ploc.scores = {"distance_km": None if ploc.distance is None else round(ploc.distance, 2)}
        ploc.notes = {"pickup_store": "chosen by the customer"}
        if not pickup_reasons:
            remaining = dict(usable)
            at_store, missing = [], []
            for line in view.lines:
                if remaining[line.sku] + EPS >= line.qty:
                    remaining[line.sku] -= line.qty
                    at_store.append(line)
                else:
                    missing.append(line)
        here = {id(x) for x in at_store}
        for i, line in enumerate(view.lines):
            if id(line) in here:
                ploc.covers |= 1 << i
        ploc.full = not missing
    if store is not None:
        reports.append(CandidateReport(
            store_id=store.store_id, location_type=store.location_type,
            status="selected" if at_store else "excluded", rank=1 if at_store else None,
            atp={s: round(v, 4) for s, v in ploc.usable.items()}, covers=[x.line_key for x in at_store],
            scores=ploc.scores, notes=ploc.notes, reasons=ploc.reasons + ploc.sku_reasons))
    pickup_alloc, pickup_ship = [], []
    if at_store:
        sub = _OrderView(order, at_store)
        pickup_alloc, pickup_ship = _shipments(sub, [ploc] * len(at_store), "pickup", None, book, view.destination)
    if not missing:
        return (_Result(outcome="allocated", reason="pickup", allocations=pickup_alloc, shipments=pickup_ship,
                        candidates=reports), f"pickup at {store.store_id}", None)
    what = (pickup_reasons[0].detail if pickup_reasons else
            f"pickup store {order.pickup_store_id} lacks " + ", ".join(f"{x.sku} ×{_fmt(x.qty)}" for x in missing))
    tried: list[str] = []
    for step in rule.fallback:
        if step.action == "transfer":
            if pickup_reasons:
                tried.append("transfer impossible: " + what)
                continue
            origin = Point(store.latitude, store.longitude, store.city)
            sub = _OrderView(order, missing)
            locs = _assess(sub, cands, rule, ctx, book, usage, origin, skip=store.store_id)
            ranked = _rank(locs)
            chosen, kind, why = _source(sub, ranked, rule)
            src_reports = _reports(locs, ranked, set() if chosen is None else {x.store_id for x in chosen}, sub)
            if chosen is None:
                reports = reports + src_reports
                tried.append(f"no transfer: {why}")
                continue
            allocs, ships = _shipments(sub, chosen, "transfer_to_pickup", store.store_id, book, origin,
                                       start_no=len(pickup_ship) + 1)
            position = {x.line_key: i for i, x in enumerate(view.lines)}
            allocations = sorted(pickup_alloc + allocs, key=lambda a: position[a.line_key])
            return (_Result(outcome="pickup_transfer", reason="transfer_to_pickup", allocations=allocations,
                            shipments=pickup_ship + ships, candidates=reports + src_reports),
                    f"{what}; transfer from " + ", ".join(s.store_id for s in ships), None)
        if step.action == "offer_alternatives":
            alternatives = _pickup_alternatives(view, cands, store, rule, ctx, usage, step.max_alternatives)
            if not alternatives:
                tried.append("no other pickup store holds every line")
                continue
            gaps = [_unalloc(line, "awaiting_customer_choice", f"{what}; other pickup stores offered")
                    for line in view.lines]
            return (_Result(outcome="pickup_alternatives", reason="pickup_store_lacks_stock", unallocated=gaps,
                            candidates=reports, alternatives=alternatives, hold_queue="pickup_reroute"),
                    f"{what}; offered " + ", ".join(a.store_id for a in alternatives), None)
        summary = "; ".join([what, *tried, f"fallback {step.action}"])
        if step.action == "next_rule":
            return None, summary, reports
        outcome, reason, queue, cancel_at = _terminal(step, view, ctx)
        gaps = [_unalloc(line, reason if reason == "pickup_rejected" else "pickup_store_lacks_stock", what)
                for line in view.lines]
        return (_Result(outcome=outcome, reason=reason, unallocated=gaps, candidates=reports, hold_queue=queue,
                        cancel_at=cancel_at), summary, None)
    raise AssertionError("fallback chains end with a terminal step")  # pragma: no cover


def _pickup_alternatives(view, cands, store, rule, ctx, usage, limit) -> list[PickupAlternative]:
    ref = Point(store.latitude, store.longitude, store.city) if store is not None else view.destination
    found = []
    for c in cands:
        if store is not None and c.store_id == store.store_id:
            continue
        if not (c.active and c.pickup_enabled) or (c.country_code not in (None, view.order.country_code)):
            continue
        _, depth = _usable_per_sku(view, c, rule.constraints, ctx, usage, [])
        if depth >= -EPS:
            distance = ref.distance_to(c.latitude, c.longitude, c.city)
            found.append((math.inf if distance is None else distance, c.store_id, distance))
    found.sort()
    return [PickupAlternative(store_id=sid, distance_km=None if d is None else round(d, 2))
            for _, sid, d in found[:limit]]


# -------------------------------------------------------------------------------- explanation
def _explain(d: Decision, profile: ProfileSpec, view: _OrderView) -> str:
    order = view.order
    version = f"v{d.profile_version}" if d.profile_version is not None else "(unsaved)"
    head = (f"Order {order.increment_id} ({order.country_code}, {len(view.lines)} line(s)"
            + (f", click & collect at {order.pickup_store_id}" if order.is_pickup else "")
            + f") → {d.outcome} under profile {order.country_code} {version} '{profile.name}'")
    parts = [head + (f", rule {d.rule_index + 1} '{d.rule_name}'." if d.rule_name else ".")]
    for t in d.rules_tried:
        if t.index == d.rule_index:
            continue
        verb = "did not apply" if not t.matched else "could not allocate"
        parts.append(f"Rule {t.index + 1} '{t.name}' {verb}: {t.detail}.")
    deciding = next((t for t in d.rules_tried if t.index == d.rule_index), None)
    if deciding is not None and d.outcome not in ("allocated", "split"):
        parts.append(f"Rule {deciding.index + 1}: {deciding.detail}.")
    if d.outcome == "split":
        parts.append(f"No eligible location held every line; the fewest that do: {len(d.shipments)}.")
    by_store = {c.store_id: c for c in d.candidates}
    for s in d.shipments:
        what = {"ship": "ships", "pickup": "hands over", "transfer_to_pickup": f"sends to {s.deliver_to_store_id}"}[s.fulfilment]
        lane = (f" via {s.courier}, cost {s.cost:g}, {s.transit_days:g} day(s)" if s.courier else "")
        report = by_store.get(s.store_id)
        why = ""
        if report and s.fulfilment != "pickup":
            bits = [f"{k} {v:g}" for k, v in report.scores.items()
                    if k not in ("distance_km", "distance_to_customer") and v is not None]
            dist = report.scores.get("distance_km")
            bits.append(f"{dist} km" if dist is not None else "distance unknown")
            why = f" (rank {report.rank}: " + ", ".join(bits) + ")"
        parts.append(f"Shipment {s.shipment_no}: {s.store_id} {what} line(s) {', '.join(s.line_keys)}{lane}{why}.")
    if d.alternatives:
        parts.append("Other pickup stores holding every line: "
                     + ", ".join(f"{a.store_id} ({a.distance_km} km)" if a.distance_km is not None else a.store_id
                                 for a in d.alternatives) + ".")
    if not d.allocations and d.unallocated:
        details = sorted({f"{u.line_key}: {u.detail}" for u in d.unallocated})
        parts.append("Not allocated — " + "; ".join(details) + ".")
    if d.hold_queue:
        parts.append(f"Waits in queue '{d.hold_queue}'.")
    if d.cancel_at is not None:
        parts.append(f"Cancelled: the order was due for cancellation at {d.cancel_at.isoformat()}."
                     if d.outcome == "cancelled" else
                     f"Cancelled automatically at {d.cancel_at.isoformat()} unless stock arrives first.")
    excluded = [c for c in d.candidates if c.status == "excluded"]
    if excluded:
        lines = [f"{c.store_id} — " + "; ".join(r.detail for r in c.reasons) for c in excluded[:MAX_EXPLAINED_EXCLUSIONS]]
        more = f" (+{len(excluded) - MAX_EXPLAINED_EXCLUSIONS} more)" if len(excluded) > MAX_EXPLAINED_EXCLUSIONS else ""
        parts.append(f"Excluded{more}: " + " | ".join(lines) + ".")
    partial = [c for c in d.candidates if c.status == "partial" and c.reasons]
    if partial:
        lines = [f"{c.store_id} — " + "; ".join(r.detail for r in c.reasons) for c in partial[:MAX_EXPLAINED_EXCLUSIONS]]
        more = f" (+{len(partial) - MAX_EXPLAINED_EXCLUSIONS} more)" if len(partial) > MAX_EXPLAINED_EXCLUSIONS else ""
        parts.append(f"Could serve only some lines{more}: " + " | ".join(lines) + ".")
    return " ".join(parts)
