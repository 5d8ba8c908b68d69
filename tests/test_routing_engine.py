"""The routing engine, one rule feature at a time: filters, sorts, constraints, fall-backs,
splitting, click & collect, exclusions after rejection, capacity, determinism, explanations."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from oms.routing import OrderLine, RateCard, StoreExclusion, is_releasable, route, route_batch

from .test_routing_kit import (
    NOW,
    cand,
    ctx,
    example,
    network,
    order,
    profile,
    reason_codes,
    report,
    stores_of,
)


def rule(name="r", **kw) -> dict:
    return {"name": name, **kw}


# ------------------------------------------------------------------------------------ releasable
def test_unreleasable_order_is_held_awaiting_payment():
    d = route(order(("A", 1), payment_releasable=False), network({"AE-WH-01": {"A": 5}}), profile(rule()), ctx())
    assert (d.outcome, d.reason, d.hold_queue) == ("held", "awaiting_payment", "awaiting_payment")
    assert not d.allocations and [u.reason for u in d.unallocated] == ["awaiting_payment"]
    assert d.profile_version == 1 and "not releasable" in d.explanation


@pytest.mark.parametrize(("state", "method", "ok"), [
    ("processing", "checkmo", True), ("new", "cashondelivery", True), ("pending", "cashondelivery", True),
    ("pending_payment", "ccavenue", False), ("payment_review", "cashondelivery", False),
    ("holded", "checkmo", False), ("canceled", "cashondelivery", False), ("new", "checkmo", False)])
def test_is_releasable_maps_magento_states(state, method, ok):
    assert is_releasable(state, method) is ok


# --------------------------------------------------------------------------------------- filters
def _matched_rule(o, *rules):
    d = route(o, network({"AE-WH-01": {"A": 9, "B": 9}}), profile(*rules, rule("catch-all")), ctx())
    return d.rule_name, d


def test_filter_shipping_method_in_and_not_in():
    rules = (rule("express", filters={"shipping_method_in": ["express_express"]}),
             rule("not flat", filters={"shipping_method_not_in": ["flatrate_flatrate"]}))
    assert _matched_rule(order(("A", 1), shipping_method="express_express"), *rules)[0] == "express"
    name, d = _matched_rule(order(("A", 1)), *rules)
    assert name == "catch-all"
    assert "not in ['express_express']" in d.rules_tried[0].detail
    assert "excluded by the rule" in d.rules_tried[1].detail


def test_filter_is_pickup():
    rules = (rule("c&c", filters={"is_pickup": True}), rule("home", filters={"is_pickup": False}))
    assert _matched_rule(order(("A", 1)), *rules)[0] == "home"


def test_filter_category_any_and_all():
    rules = (rule("all shoes", filters={"category_all": ["shoes"]}),
             rule("any bags", filters={"category_any": ["bags"]}))
    assert _matched_rule(order(("A", 1, "shoes"), ("B", 1, "shoes")), *rules)[0] == "all shoes"
    name, d = _matched_rule(order(("A", 1, "shoes"), ("B", 1, "bags")), *rules)
    assert name == "any bags" and "line 2 is in category 'bags'" in d.rules_tried[0].detail
    assert _matched_rule(order(("A", 1, "tops")), *rules)[0] == "catch-all"


def test_filter_order_value_and_channel():
    rules = (rule("big", filters={"order_value_min": 500}), rule("small", filters={"order_value_max": 50}),
             rule("kw", filters={"channel_in": ["kw_web"]}))
    assert _matched_rule(order(("A", 1), order_value=800), *rules)[0] == "big"
    assert _matched_rule(order(("A", 1), order_value=20), *rules)[0] == "small"
    name, d = _matched_rule(order(("A", 1), order_value=100), *rules)
    assert name == "catch-all"
    assert [t.detail for t in d.rules_tried[:3]] == [
        "order value 100 below 500", "order value 100 above 50", "channel 'ae_web' not in ['kw_web']"]


def test_disabled_rule_and_no_rule_matched():
    d = route(order(("A", 1)), network({"AE-WH-01": {"A": 9}}),
              profile(rule("off", enabled=False), rule("pickup", filters={"is_pickup": True})), ctx())
    assert (d.outcome, d.reason) == ("held", "no_rule_matched")
    assert [t.result for t in d.rules_tried] == ["disabled", "filtered_out"]


# ----------------------------------------------------------------------------------------- sorts
STOCKED = {"AE-WH-01": {"A": 10}, "AE-ST-01": {"A": 3}, "AE-ST-02": {"A": 8}, "AE-ST-03": {"A": 2}}


def test_sort_priority_by_locations():
    p = profile(rule(sorts=[{"by": "priority", "locations": ["AE-ST-03", "AE-ST-02"]}]))
    d = route(order(("A", 1)), network(STOCKED), p, ctx())
    assert stores_of(d) == ["AE-ST-03"]
    assert report(d, "AE-ST-02").scores["priority"] == 2 and "priority" not in report(d, "AE-ST-02").notes
    assert report(d, "AE-WH-01").scores["priority"] == 3
    assert report(d, "AE-WH-01").notes["priority"] == "not in the priority list"
    assert [c.store_id for c in sorted(d.candidates, key=lambda c: c.rank)] == [
        "AE-ST-03", "AE-ST-02", "AE-ST-01", "AE-WH-01"]   # unlisted ones tie, then store_id


def test_sort_priority_by_location_type():
    d = route(order(("A", 1)), network(STOCKED),
              profile(rule(sorts=[{"by": "priority", "location_types": ["warehouse", "store"]}])), ctx())
    assert stores_of(d) == ["AE-WH-01"]


def test_sort_distance_and_bands():
    d = route(order(("A", 1)), network(STOCKED), profile(rule(sorts=["distance_to_customer"])), ctx())
    assert stores_of(d) == ["AE-ST-01"]
    assert report(d, "AE-ST-01").scores["distance_to_customer"] < 2
    assert [c.store_id for c in sorted(d.candidates, key=lambda c: c.rank)] == [
        "AE-ST-01", "AE-ST-03", "AE-ST-02", "AE-WH-01"]
    # within one 50 km band every location ties: stock depth decides
    d = route(order(("A", 1)), network(STOCKED),
              profile(rule(sorts=[{"by": "distance_to_customer", "band_km": 50}, "stock_depth"])), ctx())
    assert stores_of(d) == ["AE-WH-01"]


def test_sort_distance_without_coordinates_goes_last_same_city_counts_as_near():
    stock = {"AE-ST-01": {"A": 1}, "AE-ST-04": {"A": 1}}
    cands = network(stock, **{"AE-ST-01": {"latitude": None, "longitude": None}})
    d = route(order(("A", 1)), cands, profile(rule(sorts=["distance_to_customer"])), ctx())
    assert stores_of(d) == ["AE-ST-01"]    # no coordinates, but the customer's city
    d = route(order(("A", 1), city="Sharjah"), cands, profile(rule(sorts=["distance_to_customer"])), ctx())
    assert stores_of(d) == ["AE-ST-04"] and report(d, "AE-ST-01").scores["distance_to_customer"] is None


RATES = [
    RateCard(country_code="AE", courier="Aramex", cost=18, transit_days=2),
    RateCard(country_code="AE", courier="Aramex", from_location_type="warehouse", cost=12, transit_days=2),
    RateCard(country_code="AE", courier="Quiqup", from_location_type="store", max_km=15, cost=25, transit_days=0.5),
    RateCard(country_code="AE", courier="Quiqup", from_store_id="AE-ST-02", cost=9, transit_days=1),
    RateCard(country_code="AE", courier="SMSA", to_city="Dubai", max_weight_g=2000, cost=15, transit_days=1),
]


def test_sort_shipping_cost_uses_the_most_specific_lane_per_courier():
    d = route(order(("A", 1)), network(STOCKED), profile(rule(sorts=["shipping_cost"])), ctx(rate_cards=RATES))
    assert stores_of(d) == ["AE-ST-02"]                       # its own Quiqup rate, 9
    assert report(d, "AE-ST-02").scores["shipping_cost"] == 9.0 and report(d, "AE-ST-02").notes["shipping_cost"] == "Quiqup"
    assert report(d, "AE-WH-01").scores["shipping_cost"] == 12.0   # warehouse lane beats the generic 18
    assert report(d, "AE-ST-01").scores["shipping_cost"] == 15.0   # SMSA to Dubai under 2 kg
    assert (d.shipments[0].courier, d.shipments[0].cost) == ("Quiqup", 9.0)
    heavy = order(lines=[OrderLine(line_key="1", sku="A", qty=1, weight_g=2500)])   # SMSA's band ends at 2 kg
    d = route(heavy, network(STOCKED), profile(rule(sorts=["shipping_cost"])), ctx(rate_cards=RATES))
    assert (report(d, "AE-ST-01").scores["shipping_cost"], report(d, "AE-ST-01").notes["shipping_cost"]) == (18.0, "Aramex")


def test_sort_service_level_fastest_lane():
    d = route(order(("A", 1)), network(STOCKED), profile(rule(sorts=["service_level"])), ctx(rate_cards=RATES))
    assert stores_of(d) == ["AE-ST-01"]                       # Quiqup same day within 15 km
    assert report(d, "AE-ST-01").scores["service_level"] == 0.5
    assert report(d, "AE-WH-01").scores["service_level"] == 1.0


def test_missing_rate_card_sorts_last_but_is_not_excluded():
    d = route(order(("A", 1)), network({"AE-ST-01": {"A": 1}, "AE-ST-02": {"A": 1}}),
              profile(rule(sorts=["shipping_cost"])),
              ctx(rate_cards=[RateCard(country_code="AE", courier="X", from_store_id="AE-ST-02", cost=5, transit_days=1)]))
    assert stores_of(d) == ["AE-ST-02"]
    assert report(d, "AE-ST-01").scores["shipping_cost"] is None
    assert report(d, "AE-ST-01").notes["shipping_cost"] == "no rate card for this lane"
    assert report(d, "AE-ST-01").status == "eligible"


def test_sort_stock_depth_keeps_thin_positions():
    d = route(order(("A", 2)), network(STOCKED), profile(rule(sorts=["stock_depth"])), ctx())
    assert stores_of(d) == ["AE-WH-01"]
    assert report(d, "AE-WH-01").scores["stock_depth"] == 8
    assert report(d, "AE-ST-03").scores["stock_depth"] == 0


def test_sorts_are_lexicographic_and_every_score_is_recorded():
    p = profile(rule(sorts=[{"by": "priority", "location_types": ["store"]}, "distance_to_customer", "stock_depth"]))
    d = route(order(("A", 1)), network(STOCKED), p, ctx())
    assert stores_of(d) == ["AE-ST-01"]      # stores tie on priority; nearest wins before depth counts
    for c in d.candidates:
        assert set(c.scores) == {"distance_km", "priority", "distance_to_customer", "stock_depth"}


def test_ties_end_on_store_id_whatever_the_candidate_order():
    stock = {"AE-ST-03": {"A": 5}, "AE-ST-02": {"A": 5}, "AE-ST-01": {"A": 5}}
    cands = network(stock)
    for _ in range(5):
        random.Random(_).shuffle(cands)
        assert stores_of(route(order(("A", 1)), cands, profile(rule()), ctx())) == ["AE-ST-01"]


# ----------------------------------------------------------------------------------- constraints
def test_safety_stock_is_in_atp_and_brokering_buffer_keeps_more_back():
    cands = network({"AE-ST-01": {"A": 2}, "AE-WH-01": {"A": 10}})
    p = profile(rule(sorts=["distance_to_customer"], constraints={"brokering_safety_qty": 1}))
    d = route(order(("A", 2)), cands, p, ctx())
    assert stores_of(d) == ["AE-WH-01"]
    assert report(d, "AE-ST-01").reasons[0].detail == "no ATP for A (has 2, needs 2 + 1 kept back)"
    assert route(order(("A", 1)), cands, p, ctx()).shipments[0].store_id == "AE-ST-01"


def test_store_daily_capacity_and_per_location_override():
    cands = network({"AE-ST-01": {"A": 5}, "AE-ST-03": {"A": 5}, "AE-WH-01": {"A": 5}},
                    **{"AE-ST-01": {"shipments_today": 40}, "AE-WH-01": {"shipments_today": 500}})
    p = profile(rule(sorts=["distance_to_customer"], constraints={"store_daily_capacity": 40}))
    d = route(order(("A", 1)), cands, p, ctx())
    assert stores_of(d) == ["AE-ST-03"]
    assert report(d, "AE-ST-01").reasons[0].detail == "capacity reached: 40 of 40 shipments today"
    assert d.shipments[0].capacity_limit == 40
    p = profile(rule(sorts=[{"by": "priority", "locations": ["AE-WH-01"]}],
                     constraints={"store_daily_capacity": 40, "location_daily_capacity": {"AE-WH-01": 500,
                                                                                         "AE-ST-01": 60}}))
    d = route(order(("A", 1)), cands, p, ctx())
    assert "capacity_reached" in reason_codes(d, "AE-WH-01")
    assert stores_of(d) == ["AE-ST-01"]       # its own limit of 60 leaves room


def test_zero_capacity_means_none():
    d = route(order(("A", 1)), network({"AE-ST-01": {"A": 5}}),
              profile(rule(constraints={"store_daily_capacity": 0}, fallback="backorder")), ctx())
    assert d.outcome == "backordered" and "capacity_reached" in reason_codes(d, "AE-ST-01")


def test_ship_from_store_flag_and_rule_switch():
    cands = network({"AE-ST-01": {"A": 5}, "AE-ST-02": {"A": 5}, "AE-WH-01": {"A": 5}},
                    **{"AE-ST-01": {"ship_from_store": False}})
    d = route(order(("A", 1)), cands, profile(rule(sorts=["distance_to_customer"])), ctx())
    assert stores_of(d) == ["AE-ST-02"]
    assert report(d, "AE-ST-01").reasons[0].detail == "store does not ship (ship_from_store is off)"
    d = route(order(("A", 1)), cands, profile(rule(sorts=["distance_to_customer"],
                                                   constraints={"ship_from_store_enabled": False})), ctx())
    assert stores_of(d) == ["AE-WH-01"]
    assert reason_codes(d, "AE-ST-02") == {"ship_from_store_disabled"}


def test_location_types_allowed_and_max_distance():
    cands = network({"AE-WH-01": {"A": 5}, "AE-ST-04": {"A": 5}, "AE-ST-02": {"A": 5}})
    d = route(order(("A", 1)), cands, profile(rule(constraints={"location_types": ["store"]})), ctx())
    assert stores_of(d) == ["AE-ST-02"]
    assert report(d, "AE-WH-01").reasons[0].detail == "warehouse not allowed by rule 'r' (only store)"
    d = route(order(("A", 1)), cands, profile(rule(sorts=["stock_depth"], constraints={"max_distance_km": 50})), ctx())
    assert "too_far" in reason_codes(d, "AE-ST-04")
    assert "km away, rule allows 50 km" in report(d, "AE-ST-04").reasons[0].detail


def test_inactive_and_other_country_locations_are_excluded():
    cands = network({"AE-ST-01": {"A": 5}, "AE-ST-02": {"A": 5}, "AE-ST-03": {"A": 5}},
                    **{"AE-ST-01": {"active": False}, "AE-ST-02": {"country_code": "QA"}})
    d = route(order(("A", 1)), cands, profile(rule(sorts=["distance_to_customer"])), ctx())
    assert stores_of(d) == ["AE-ST-03"]
    assert reason_codes(d, "AE-ST-01") == {"inactive"}
    assert report(d, "AE-ST-02").reasons[0].detail == "in QA, the order is for AE"


# ------------------------------------------------------------------------------------ splitting
def test_split_across_the_fewest_locations():
    stock = {"AE-ST-01": {"A": 1}, "AE-ST-02": {"B": 1}, "AE-ST-03": {"C": 1}, "AE-WH-01": {"B": 1, "C": 1}}
    p = profile(rule(sorts=["distance_to_customer"], constraints={"max_shipments_per_order": 3}))
    d = route(order(("A", 1), ("B", 1), ("C", 1)), network(stock), p, ctx())
    assert d.outcome == "split" and d.reason == "fewest_locations"
    assert sorted(stores_of(d)) == ["AE-ST-01", "AE-WH-01"]            # 2 shipments, not 3
    assert {a.line_key: a.store_id for a in d.allocations} == {"1": "AE-ST-01", "2": "AE-WH-01", "3": "AE-WH-01"}
    assert [s.shipment_no for s in d.shipments] == [1, 2]
    assert report(d, "AE-ST-02").status == "partial" and report(d, "AE-ST-02").covers == ["2"]
    assert "Could serve only some lines: AE-ST-02 — no ATP for A (has 0, needs 1)" in d.explanation


def test_split_prefers_the_best_ranked_set_among_equally_few():
    stock = {"AE-ST-01": {"A": 1}, "AE-ST-02": {"B": 1}, "AE-ST-03": {"B": 1}, "AE-ST-04": {"A": 1, "C": 1}}
    p = profile(rule(sorts=["distance_to_customer"], constraints={"max_shipments_per_order": 2}))
    d = route(order(("A", 1), ("B", 1)), network(stock), p, ctx())
    assert stores_of(d) == ["AE-ST-01", "AE-ST-03"]                    # nearest pair, in rank order


def test_split_of_two_lines_of_one_sku():
    stock = {"AE-ST-01": {"A": 2}, "AE-ST-02": {"A": 2}}
    p = profile(rule(sorts=["distance_to_customer"], constraints={"max_shipments_per_order": 2}))
    d = route(order(("A", 2), ("A", 1)), network(stock), p, ctx())
    assert d.outcome == "split" and {a.line_key: a.store_id for a in d.allocations} == {"1": "AE-ST-01", "2": "AE-ST-02"}


def test_no_split_when_max_shipments_is_one_or_value_too_low():
    stock = {"AE-ST-01": {"A": 1}, "AE-ST-02": {"B": 1}}
    lines = (("A", 1), ("B", 1))
    d = route(order(*lines), network(stock), profile(rule(fallback="backorder")), ctx())
    assert d.outcome == "backordered"
    assert {u.reason for u in d.unallocated} == {"not_within_rule_limits"}
    assert "max_shipments_per_order 1" in d.unallocated[0].detail
    p = profile(rule(constraints={"max_shipments_per_order": 2, "split_only_above_value": 150}, fallback="backorder"))
    d = route(order(*lines, order_value=100), network(stock), p, ctx())
    assert d.outcome == "backordered" and "split only above 150; the order is worth 100" in d.unallocated[0].detail
    assert route(order(*lines, order_value=200), network(stock), p, ctx()).outcome == "split"


def test_too_many_shipments_needed():
    stock = {"AE-ST-01": {"A": 1}, "AE-ST-02": {"B": 1}, "AE-ST-03": {"C": 1}}
    p = profile(rule(constraints={"max_shipments_per_order": 2}, fallback="backorder"))
    d = route(order(("A", 1), ("B", 1), ("C", 1)), network(stock), p, ctx())
    assert d.outcome == "backordered" and "no 2 locations together hold them" in d.unallocated[0].detail


# ------------------------------------------------------------------------------------- fall-backs
def test_fallback_next_rule_then_hold_queue():
    p = profile(rule("stores", constraints={"location_types": ["store"]}),
                rule("queue", fallback={"action": "hold", "queue": "merchandising"}))
    d = route(order(("A", 1)), network({"AE-ST-01": {"A": 0}}), p, ctx())
    assert (d.outcome, d.reason, d.hold_queue, d.rule_name) == ("held", "hold_queue", "merchandising", "queue")
    assert d.rules_tried[0].result == "fallback:next_rule" and d.rules_tried[0].candidates
    assert [u.reason for u in d.unallocated] == ["no_stock"]
    assert "no eligible location has 1 of A" in d.unallocated[0].detail


def test_fallback_backorder_names_the_best_partial_stock():
    d = route(order(("A", 3)), network({"AE-ST-01": {"A": 1}, "AE-ST-02": {"A": 2}}),
              profile(rule(fallback="backorder")), ctx())
    assert (d.outcome, d.reason) == ("backordered", "awaiting_stock")
    assert d.unallocated[0].detail == "no eligible location has 3 of A (most: 2 at AE-ST-02)"


def test_fallback_cancel_after_days():
    p = profile(rule(fallback={"action": "cancel_after_days", "days": 3}))
    o = order(("A", 1), created_at=NOW - timedelta(days=1))
    d = route(o, network({"AE-ST-01": {}}), p, ctx())
    assert d.outcome == "backordered" and d.cancel_at == NOW + timedelta(days=2)
    assert "Cancelled automatically at" in d.explanation
    d = route(o, network({"AE-ST-01": {}}), p, ctx(now=NOW + timedelta(days=2)))
    assert (d.outcome, d.reason) == ("cancelled", "cancel_after_days")


def test_every_rule_falls_through():
    d = route(order(("A", 1)), network({"AE-ST-01": {}}), profile(rule("a"), rule("b")), ctx())
    assert (d.outcome, d.reason, d.hold_queue) == ("held", "no_rule_left", "routing_hold")
    assert [t.result for t in d.rules_tried] == ["fallback:next_rule", "fallback:next_rule"]


# ------------------------------------------------------------------------------- click & collect
PICKUP_RULE = rule("c&c", filters={"is_pickup": True}, sorts=["distance_to_customer"],
                   constraints={"max_shipments_per_order": 2},
                   fallback=["transfer", "offer_alternatives", "reject"])


def test_pickup_store_with_stock_is_fixed():
    cands = network({"AE-ST-01": {"A": 9}, "AE-ST-02": {"A": 1}})
    d = route(order(("A", 1), pickup_store_id="AE-ST-02"), cands, profile(PICKUP_RULE), ctx())
    assert (d.outcome, d.reason, stores_of(d)) == ("allocated", "pickup", ["AE-ST-02"])
    assert d.allocations[0].fulfilment == "pickup" and d.shipments[0].capacity_limit is None


def test_pickup_transfer_brings_only_the_missing_lines():
    cands = network({"AE-ST-01": {"A": 1}, "AE-ST-02": {"A": 1, "B": 3}, "AE-ST-03": {"B": 1}, "AE-WH-01": {"B": 9}})
    d = route(order(("A", 1), ("B", 2), pickup_store_id="AE-ST-01"), cands, profile(PICKUP_RULE), ctx())
    assert (d.outcome, d.reason) == ("pickup_transfer", "transfer_to_pickup")
    assert [(a.line_key, a.store_id, a.fulfilment, a.deliver_to_store_id) for a in d.allocations] == [
        ("1", "AE-ST-01", "pickup", None), ("2", "AE-ST-02", "transfer_to_pickup", "AE-ST-01")]
    assert "AE-ST-03" in {c.store_id for c in d.candidates if c.status == "excluded"}   # has 1, needs 2
    assert "sends to AE-ST-01" in d.explanation


def test_pickup_offers_alternatives_when_no_transfer():
    cands = network({"AE-ST-01": {"A": 0}, "AE-ST-02": {"A": 2}, "AE-ST-03": {"A": 2}, "AE-WH-01": {"A": 9}},
                    **{"AE-ST-02": {"ship_from_store": False}, "AE-ST-03": {"ship_from_store": False}})
    p = profile({**PICKUP_RULE, "constraints": {"location_types": ["store"]}})
    d = route(order(("A", 1), pickup_store_id="AE-ST-01"), cands, p, ctx())
    assert (d.outcome, d.hold_queue) == ("pickup_alternatives", "pickup_reroute")
    assert [a.store_id for a in d.alternatives] == ["AE-ST-03", "AE-ST-02"]          # nearest to the pickup store
    assert not d.allocations and {u.reason for u in d.unallocated} == {"awaiting_customer_choice"}


def test_pickup_rejected_when_nothing_else_works():
    cands = network({"AE-ST-01": {"A": 0}, "AE-ST-02": {"A": 0}})
    d = route(order(("A", 1), pickup_store_id="AE-ST-01"), cands, profile(PICKUP_RULE), ctx())
    assert (d.outcome, d.reason) == ("rejected", "pickup_rejected")
    assert "no transfer" in d.rules_tried[0].detail and "no other pickup store" in d.rules_tried[0].detail


def test_pickup_store_that_does_not_offer_pickup():
    cands = network({"AE-ST-01": {"A": 5}, "AE-ST-02": {"A": 5}}, **{"AE-ST-01": {"pickup_enabled": False}})
    d = route(order(("A", 1), pickup_store_id="AE-ST-01"), cands, profile(PICKUP_RULE), ctx())
    assert d.outcome == "pickup_alternatives" and [a.store_id for a in d.alternatives] == ["AE-ST-02"]
    assert reason_codes(d, "AE-ST-01") == {"not_pickup_enabled"}
    d = route(order(("A", 1), pickup_store_id="AE-ST-09"), cands, profile(PICKUP_RULE), ctx())
    assert "not a candidate" in d.explanation


def test_pickup_backorder_fallback():
    p = profile(rule("c&c wait", filters={"is_pickup": True}, fallback="backorder"))
    d = route(order(("A", 1), pickup_store_id="AE-ST-01"), network({"AE-ST-01": {}}), p, ctx())
    assert (d.outcome, d.unallocated[0].reason) == ("backordered", "pickup_store_lacks_stock")


# --------------------------------------------------------------------------- rejection exclusion
def test_store_excluded_for_a_sku_after_rejection_until_it_expires():
    until = NOW + timedelta(hours=48)
    stock = {"AE-ST-01": {"A": 5, "B": 5}, "AE-ST-03": {"A": 5}}
    ex = {"AE-ST-01": {"exclusions": [StoreExclusion(sku="A", until=until, reason="item not found")]}}
    p = profile(rule(sorts=["distance_to_customer"]))
    d = route(order(("A", 1)), network(stock, **ex), p, ctx())
    assert stores_of(d) == ["AE-ST-03"]
    assert report(d, "AE-ST-01").reasons[0].detail == (
        f"excluded for A until {until.isoformat()} after rejection (item not found)")
    assert stores_of(route(order(("B", 1)), network(stock, **ex), p, ctx())) == ["AE-ST-01"]  # other SKUs still
    assert stores_of(route(order(("A", 1)), network(stock, **ex), p, ctx(now=until))) == ["AE-ST-01"]  # expired


# ----------------------------------------------------------------------------------- determinism
def test_same_inputs_same_decision():
    stock = {"AE-WH-01": {"A": 3, "B": 1}, "AE-ST-01": {"A": 1}, "AE-ST-02": {"B": 2}, "AE-ST-03": {"A": 1, "B": 1}}
    o = order(("A", 1), ("B", 1), ("A", 1))
    p = example("warehouse_first")
    first = route(o, network(stock), p, ctx(rate_cards=RATES)).model_dump_json()
    for seed in range(10):
        cands = network(stock)
        random.Random(seed).shuffle(cands)
        assert route(o, cands, p, ctx(rate_cards=RATES)).model_dump_json() == first


def test_inputs_are_not_changed():
    cands = network({"AE-ST-01": {"A": 2}})
    before = [c.model_dump() for c in cands]
    route_batch([order(("A", 1), increment_id=str(i)) for i in range(3)], cands, profile(rule()), ctx())
    assert [c.model_dump() for c in cands] == before


# ----------------------------------------------------------------------------------------- batch
def test_route_batch_consumes_atp_and_capacity():
    cands = network({"AE-ST-01": {"A": 2}, "AE-ST-03": {"A": 5}, "AE-WH-01": {"A": 1}})
    p = profile(rule(sorts=["distance_to_customer"], constraints={"store_daily_capacity": 3}, fallback="backorder"))
    ds = route_batch([order(("A", 1), increment_id=str(i)) for i in range(7)], cands, p, ctx())
    assert [stores_of(d) for d in ds] == [["AE-ST-01"], ["AE-ST-01"], ["AE-ST-03"], ["AE-ST-03"], ["AE-ST-03"],
                                          ["AE-WH-01"], []]
    assert report(ds[2], "AE-ST-01").reasons[0].detail == "no ATP for A (has 0, needs 1)"
    assert report(ds[5], "AE-ST-03").reasons[0].detail == "capacity reached: 3 of 3 shipments today"
    assert ds[6].outcome == "backordered"


# ------------------------------------------------------------------------- the October change
def test_from_october_profile_change_flips_warehouse_to_stores():
    stock = {"AE-WH-01": {"A": 50, "B": 50}, "AE-ST-01": {"A": 2, "B": 1}, "AE-ST-02": {"A": 1},
             "AE-ST-03": {"A": 1, "B": 1}}
    o = order(("A", 1), ("B", 1))
    september = route(o, network(stock), example("warehouse_first", version=1), ctx())
    october = route(o, network(stock), example("stores_first_from_october", version=2), ctx())
    assert stores_of(september) == ["AE-WH-01"] and september.profile_version == 1
    assert stores_of(october) == ["AE-ST-01"] and october.profile_version == 2
    assert october.rule_name == "stores only"
    assert report(october, "AE-WH-01").reasons[0].code == "type_not_allowed"
    assert "warehouse not allowed by rule 'stores only' (only store)" in october.explanation
    # when no store can, the second rule of the same profile still ships from the warehouse
    late = route(order(("A", 5)), network(stock), example("stores_first_from_october", version=2), ctx())
    assert stores_of(late) == ["AE-WH-01"] and late.rule_name == "warehouse when no store can"
    assert "Rule 2 'stores only' could not allocate" in late.explanation


# ----------------------------------------------------------------------------------- explanation
def test_explanation_lists_every_excluded_location_with_its_reason():
    until = NOW + timedelta(days=1)
    cands = network(
        {"AE-WH-01": {"A": 9}, "AE-ST-01": {"A": 5}, "AE-ST-02": {"A": 1}, "AE-ST-03": {"A": 5}, "AE-ST-04": {"A": 5}},
        **{"AE-ST-01": {"exclusions": [StoreExclusion(sku="A", until=until, reason="damaged")]},
           "AE-ST-03": {"shipments_today": 10}, "AE-ST-04": {"active": False}})
    p = profile(rule(sorts=["distance_to_customer"], constraints={"store_daily_capacity": 10}))
    d = route(order(("A", 2)), cands, p, ctx())
    assert stores_of(d) == ["AE-WH-01"]
    text = d.explanation
    for expected in ("AE-ST-01 — excluded for A until", "after rejection (damaged)",
                     "AE-ST-02 — no ATP for A (has 1, needs 2)",
                     "AE-ST-03 — capacity reached: 10 of 10 shipments today", "AE-ST-04 — location is inactive",
                     "Shipment 1: AE-WH-01 ships line(s) 1"):
        assert expected in text, (expected, text)
    assert {c.store_id: c.status for c in d.candidates} == {
        "AE-WH-01": "selected", "AE-ST-01": "excluded", "AE-ST-02": "excluded", "AE-ST-03": "excluded",
        "AE-ST-04": "excluded"}
    assert report(d, "AE-ST-02").atp == {"A": 1}


def test_duplicate_candidates_are_refused():
    with pytest.raises(ValueError, match="appears twice"):
        route(order(("A", 1)), [cand("AE-ST-01"), cand("AE-ST-01")], profile(rule()), ctx())


def test_decision_round_trips_through_json():
    from oms.routing import Decision

    stock = {"AE-WH-01": {"A": 3}, "AE-ST-01": {"A": 1, "B": 1}, "AE-ST-02": {"B": 2}}
    d = route(order(("A", 2), ("B", 1)), network(stock), example("warehouse_first"), ctx(rate_cards=RATES))
    again = Decision.model_validate_json(d.model_dump_json())
    assert again == d and again.candidates[0].reasons == d.candidates[0].reasons
