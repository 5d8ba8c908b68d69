"""Property check on random networks, backlogs and profiles (a loop over 150 seeds, not hypothesis):
allocations never exceed what a candidate could give, every line is allocated
exactly once or explained, rule limits hold, and the same inputs give the same decisions."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import timedelta

from oms.routing import Candidate, Order, OrderLine, RateCard, StoreExclusion, route_batch
from oms.routing.model import ALLOCATING_OUTCOMES

from .test_routing_kit import NOW, ctx, profile

SKUS = [f"SKU-{i}" for i in range(8)]
SORTS = ["distance_to_customer", "shipping_cost", "service_level", "stock_depth",
         {"by": "priority", "location_types": ["store", "warehouse"]}]


def random_network(rng: random.Random) -> list[Candidate]:
    cands = []
    for i in range(rng.randint(1, 12)):
        kind = "warehouse" if i == 0 or rng.random() < 0.1 else "store"
        cands.append(Candidate(
            store_id=f"L{i:02d}", location_type=kind, country_code="AE" if rng.random() < 0.95 else "QA",
            latitude=25 + rng.uniform(-0.5, 0.5), longitude=55 + rng.uniform(-0.5, 0.5), city="Dubai",
            ship_from_store=rng.random() < 0.8, pickup_enabled=rng.random() < 0.7, active=rng.random() < 0.93,
            atp={s: float(rng.choice([0, 1, 2, 3, 5, 10, 20])) for s in rng.sample(SKUS, rng.randint(2, len(SKUS)))},
            shipments_today=rng.randint(0, 6),
            exclusions=[StoreExclusion(sku=rng.choice(SKUS), until=NOW + timedelta(hours=rng.choice([-1, 5])))
                        for _ in range(rng.choice([0, 0, 1]))]))
    return cands


def random_rule(rng: random.Random, name: str, pickup: bool | None) -> dict:
    constraints = {"max_shipments_per_order": rng.randint(1, 3), "brokering_safety_qty": rng.choice([0, 0, 1]),
                   "store_daily_capacity": rng.choice([None, 3, 5]),
                   "ship_from_store_enabled": rng.random() < 0.85}
    if rng.random() < 0.3:
        constraints["location_types"] = [rng.choice(["store", "warehouse"])]
    if rng.random() < 0.3:
        constraints["split_only_above_value"] = rng.choice([50, 200])
    if rng.random() < 0.2:
        constraints["max_distance_km"] = 40
    terminal = rng.choice(["next_rule", "hold", "backorder", {"action": "cancel_after_days", "days": 2}])
    fallback = [terminal]
    if pickup:
        fallback = rng.sample(["transfer", "offer_alternatives"], rng.randint(0, 2)) + [rng.choice([terminal, "reject"])]
    return {"name": name, "filters": {} if pickup is None else {"is_pickup": pickup},
            "sorts": rng.sample(SORTS, rng.randint(0, 3)), "constraints": constraints, "fallback": fallback}


def random_orders(rng: random.Random, cands: list[Candidate], n: int) -> list[Order]:
    orders = []
    for k in range(n):
        lines = [OrderLine(line_key=f"{j}", sku=rng.choice(SKUS), qty=float(rng.choice([1, 1, 1, 2, 3])),
                           weight_g=rng.choice([None, 300, 1500])) for j in range(rng.randint(1, 5))]
        pickup = rng.choice(cands).store_id if rng.random() < 0.25 else None
        orders.append(Order(increment_id=f"{k:05d}", country_code="AE", lines=lines, pickup_store_id=pickup,
                            order_value=rng.choice([20.0, 100.0, 400.0]), latitude=25 + rng.uniform(-0.5, 0.5),
                            longitude=55 + rng.uniform(-0.5, 0.5), city="Dubai",
                            payment_releasable=rng.random() < 0.9, created_at=NOW - timedelta(days=rng.randint(0, 4))))
    return orders


RATES = [RateCard(country_code="AE", courier="A", cost=20, transit_days=2),
         RateCard(country_code="AE", courier="B", from_location_type="store", max_km=30, cost=14, transit_days=1),
         RateCard(country_code="AE", courier="C", from_location_type="warehouse", cost=11, transit_days=3)]


def test_allocations_respect_atp_and_every_line_is_allocated_once_or_explained():
    checked = allocated_lines = 0
    outcomes: set[str] = set()
    for seed in range(150):
        rng = random.Random(seed)
        cands = random_network(rng)
        rules = [random_rule(rng, "pickup", True)] if rng.random() < 0.7 else []
        rules += [random_rule(rng, f"r{i}", rng.choice([None, False])) for i in range(rng.randint(1, 3))]
        prof = profile(*rules)
        orders = random_orders(rng, cands, rng.randint(1, 25))
        decisions = route_batch(orders, cands, prof, ctx(rate_cards=RATES))
        again = route_batch(orders, cands, prof, ctx(rate_cards=RATES))
        assert [d.model_dump_json() for d in decisions] == [d.model_dump_json() for d in again], seed

        by_id = {c.store_id: c for c in cands}
        taken: dict[tuple[str, str], float] = defaultdict(float)
        shipments: dict[str, int] = defaultdict(int)
        for o, d in zip(orders, decisions, strict=True):
            checked += 1
            outcomes.add(d.outcome)
            keys = [x.line_key for x in o.lines]
            got = [a.line_key for a in d.allocations]
            explained = [u.line_key for u in d.unallocated]
            assert d.explanation and d.profile_version == 1
            if d.outcome in ALLOCATING_OUTCOMES:
                assert sorted(got) == sorted(keys) and not explained, (seed, o.increment_id, d.outcome)
                allocated_lines += len(got)
            else:
                assert sorted(explained) == sorted(keys) and not got, (seed, o.increment_id, d.outcome)
                assert all(u.reason and u.detail for u in d.unallocated)
            if not o.payment_releasable:
                assert d.reason == "awaiting_payment" and not d.rules_tried
            rule = prof.rules[d.rule_index] if d.rule_index is not None else None
            ship_count = sum(1 for s in d.shipments if s.fulfilment != "pickup")
            if rule is not None and d.outcome in ("allocated", "split"):
                assert ship_count <= rule.constraints.max_shipments_per_order
            line_of = {x.line_key: x for x in o.lines}
            for a in d.allocations:
                assert a.qty == line_of[a.line_key].qty and a.sku == line_of[a.line_key].sku
                c = by_id[a.store_id]
                taken[(a.store_id, a.sku)] += a.qty
                assert taken[(a.store_id, a.sku)] <= max(c.atp.get(a.sku, 0.0), 0.0) + 1e-9, (seed, a)
                assert c.active and c.country_code == "AE"
                assert not any(e.sku == a.sku and e.until > NOW for e in c.exclusions), (seed, a)
                if a.fulfilment == "pickup":
                    assert a.store_id == o.pickup_store_id and c.pickup_enabled
                else:
                    assert c.location_type == "warehouse" or (c.ship_from_store and rule.constraints.ship_from_store_enabled)
                    if rule.constraints.location_types:
                        assert c.location_type in rule.constraints.location_types
            for s in d.shipments:
                if s.fulfilment != "pickup":
                    shipments[s.store_id] += 1
                    if s.capacity_limit is not None:
                        assert by_id[s.store_id].shipments_today + shipments[s.store_id] <= s.capacity_limit
            for c in d.candidates:   # every location reported once, excluded ones with a reason
                if c.status == "excluded":
                    assert c.reasons, (seed, c)
            assert len({c.store_id for c in d.candidates}) == len(d.candidates)
    assert checked > 1500 and allocated_lines > 1000
    assert outcomes == {"allocated", "split", "pickup_transfer", "pickup_alternatives", "held", "backordered",
                        "cancelled", "rejected"}
