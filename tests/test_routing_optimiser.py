"""The batch optimiser (routing mode "batch"): pure, no database."""

from __future__ import annotations

import random

from oms.routing import RateCard, RoutingProfile, route_batch
from oms.routing.optimiser import route_optimised

from .test_routing_kit import ctx, network, order

CARDS = [RateCard(country_code="AE", courier="aramex", from_location_type=kind, min_km=lo, max_km=hi, cost=cost + extra,
                  transit_days=1) for kind, extra in (("warehouse", 0), ("store", 5))
         for lo, hi, cost in ((0, 15, 12), (15, 60, 18), (60, 400, 26))]


def batch_profile(**batch) -> RoutingProfile:
    return RoutingProfile.model_validate({
        "country_code": "AE", "name": "batch", "profile_id": 1, "version": 1, "mode": "batch", "batch": batch or None,
        "rules": [{"name": "any location", "sorts": ["distance_to_customer"],
                   "constraints": {"max_shipments_per_order": 2, "store_daily_capacity": 1},
                   "fallback": "backorder"}]})


def allocated(decisions) -> set[str]:
    return {d.order_increment_id for d in decisions if d.allocated}


def test_the_window_allocates_what_first_come_first_served_cannot():
    # Order 1 could come from either store; order 2 only from AE-ST-01 (nearest to both).
    # One at a time, order 1 takes AE-ST-01 and order 2 waits; the window serves both.
    cands = network({"AE-ST-01": {"A": 1, "B": 1}, "AE-ST-03": {"A": 1}})
    orders = [order(("A", 1), increment_id="1"), order(("A", 1), ("B", 1), increment_id="2")]
    profile = batch_profile()
    profile = RoutingProfile.model_validate({**profile.model_dump(), "rules": [
        {**profile.rules[0].model_dump(), "constraints": {"max_shipments_per_order": 1}}]})
    greedy = route_batch(orders, cands, profile, ctx(rate_cards=CARDS))
    assert allocated(greedy) == {"1"}
    result = route_optimised(orders, cands, profile, ctx(rate_cards=CARDS))
    assert allocated(result.decisions) == {"1", "2"}
    one, two = result.decisions
    assert [s.store_id for s in one.shipments] == ["AE-ST-03"] and [s.store_id for s in two.shipments] == ["AE-ST-01"]
    assert one.reason == "batch_optimised" and one.batch["decided_by"] == "optimised"
    assert one.batch["greedy"]["stores"] == ["AE-ST-01"] and two.batch["greedy"]["outcome"] == "backordered"
    assert "rule engine: allocated from AE-ST-01" in one.explanation
    window = result.windows[0]
    assert (window.status, window.allocated_by_solver, window.lp_bound_allocated, window.fell_back) == \
        ("optimal", 2, 2.0, False)


def test_capacity_stock_and_the_rules_fall_back_are_kept():
    # Each store ships once a day; three single-line orders of A, stock for three at the stores
    # and none at the warehouse: two go, the third is backordered by the rule's own fall-back.
    cands = network({"AE-WH-01": {}, "AE-ST-01": {"A": 2}, "AE-ST-02": {"A": 1}}, **{"AE-ST-02": {"shipments_today": 0}})
    orders = [order(("A", 1), increment_id=str(i)) for i in range(3)]
    result = route_optimised(orders, cands, batch_profile(), ctx(rate_cards=CARDS))
    outcomes = [d.outcome for d in result.decisions]
    assert sorted(outcomes) == ["allocated", "allocated", "backordered"]
    per_store = [s.store_id for d in result.decisions for s in d.shipments]
    assert sorted(per_store) == ["AE-ST-01", "AE-ST-02"]
    waiting = next(d for d in result.decisions if d.outcome == "backordered")
    assert waiting.batch["decided_by"] == "rules_after_optimiser"


def _backlog(seed: int, n: int):
    rng = random.Random(seed)
    stock = {sid: {sku: float(rng.choice((0, 1, 2, 5))) for sku in "ABCDEF"}
             for sid in ("AE-WH-01", "AE-ST-01", "AE-ST-02", "AE-ST-03", "AE-ST-04")}
    orders = [order(*[(sku, 1) for sku in rng.sample("ABCDEF", rng.choice((1, 2, 3)))], increment_id=f"O{i}",
                    order_value=200.0, latitude=25.2 + rng.uniform(-0.2, 0.2), longitude=55.27 + rng.uniform(-0.2, 0.2))
              for i in range(n)]
    return network(stock), orders


def test_same_inputs_same_answer_and_never_more_than_the_stock():
    cands, orders = _backlog(3, 60)
    profile = batch_profile(store_load_penalty=3)
    a = route_optimised(orders, cands, profile, ctx(rate_cards=CARDS))
    b = route_optimised(orders, cands, profile, ctx(rate_cards=CARDS))
    assert [d.model_dump() for d in a.decisions] == [d.model_dump() for d in b.decisions]
    taken: dict[tuple[str, str], float] = {}
    for d in a.decisions:
        for x in d.allocations:
            taken[(x.store_id, x.sku)] = taken.get((x.store_id, x.sku), 0) + x.qty
    atp = {(c.store_id, sku): q for c in cands for sku, q in c.atp.items()}
    assert all(q <= atp.get(k, 0) for k, q in taken.items())
    shipments = [s.store_id for d in a.decisions for s in d.shipments if s.store_id.startswith("AE-ST")]
    assert all(shipments.count(s) <= 1 for s in set(shipments))          # store_daily_capacity 1
    greedy = route_batch(orders, cands, profile, ctx(rate_cards=CARDS))
    assert len(allocated(a.decisions)) >= len(allocated(greedy))
    assert a.windows[0].lp_bound_allocated >= len(allocated(a.decisions)) - 1e-6


def test_windows_and_the_time_limit_fall_back_to_the_rule_engine():
    cands, orders = _backlog(5, 400)
    profile = batch_profile(window_size=150, time_limit_s=1e-7)
    result = route_optimised(orders, cands, profile, ctx(rate_cards=CARDS))
    assert [w.orders for w in result.windows] == [150, 150, 100]
    greedy = route_batch(orders, cands, profile, ctx(rate_cards=CARDS))
    fell = [w for w in result.windows if w.fell_back]
    assert fell, [w.status for w in result.windows]
    for w in fell:
        assert w.status == "time_limit"
    if all(w.fell_back for w in result.windows):
        assert [(d.outcome, [s.store_id for s in d.shipments]) for d in result.decisions] == \
            [(d.outcome, [s.store_id for s in d.shipments]) for d in greedy]
        assert all(d.batch["decided_by"] == "fallback" for d in result.decisions)
