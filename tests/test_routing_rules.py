"""Profile documents: the examples validate, mistakes are refused with a clear line each."""

from __future__ import annotations

import json

import pytest

from oms.routing.profiles import ProfileError, parse_spec
from oms.routing.rules import FallbackStep, PrioritySort

from .test_routing_kit import EXAMPLES


def problems(rules: list[dict], **doc) -> list[str]:
    with pytest.raises(ProfileError) as caught:
        parse_spec({"country_code": "AE", "name": "x", "rules": rules, **doc})
    return caught.value.problems


@pytest.mark.parametrize("name", ["warehouse_first", "stores_first_from_october"])
def test_example_profiles_validate(name):
    spec = parse_spec(json.loads((EXAMPLES / f"{name}.json").read_text()))
    assert spec.country_code == "AE" and len(spec.rules) == 3


def test_shorthands_for_sorts_and_fallbacks():
    spec = parse_spec({"country_code": "ae", "name": "x", "rules": [
        {"name": "r", "sorts": ["distance_to_customer", {"by": "priority", "location_types": ["store"]}],
         "fallback": "backorder"}]})
    rule = spec.rules[0]
    assert spec.country_code == "AE"
    assert [s.by for s in rule.sorts] == ["distance_to_customer", "priority"]
    assert isinstance(rule.sorts[1], PrioritySort)
    assert rule.fallback == [FallbackStep(action="backorder")]
    assert parse_spec({"country_code": "AE", "name": "x", "rules": [{"name": "r"}]}).rules[0].fallback[0].action == "next_rule"


def test_unknown_sort_is_named():
    assert problems([{"name": "r", "sorts": ["popularity"]}]) == [
        "rules[0].sorts[0]: unknown sort 'popularity'; choose from "
        "['priority', 'distance_to_customer', 'shipping_cost', 'service_level', 'stock_depth']"]


def test_negative_capacity_and_other_bounds():
    found = problems([{"name": "r", "constraints": {"store_daily_capacity": -5, "max_shipments_per_order": 0,
                                                      "location_daily_capacity": {"AE-ST-01": -1}}}])
    assert "rules[0].constraints.store_daily_capacity: Input should be greater than or equal to 0" in found
    assert "rules[0].constraints.max_shipments_per_order: Input should be greater than or equal to 1" in found
    assert "rules[0].constraints.location_daily_capacity.AE-ST-01: Input should be greater than or equal to 0" in found


def test_misspelt_keys_are_refused():
    assert problems([{"name": "r", "sorst": ["stock_depth"]}]) == ["rules[0].sorst: Extra inputs are not permitted"]
    assert problems([{"name": "r", "filters": {"pickup": True}}]) == [
        "rules[0].filters.pickup: Extra inputs are not permitted"]


def test_safety_stock_cannot_be_switched_off():
    (line,) = problems([{"name": "r", "constraints": {"honour_safety_stock": False}}])
    assert line.startswith("rules[0].constraints.honour_safety_stock: safety stock is always honoured: "
                           "candidate ATP is already net of ref.safety_stock_rule")


@pytest.mark.parametrize(("rule", "message"), [
    ({"fallback": ["hold", "backorder"]}, "fallback step 'hold' ends the chain; nothing may follow it"),
    ({"fallback": ["transfer"], "filters": {"is_pickup": True}}, "fallback must end with one of"),
    ({"fallback": ["transfer", "reject"]}, "is for click & collect: set filters.is_pickup to true"),
    ({"fallback": {"action": "cancel_after_days"}}, "'days' goes with cancel_after_days"),
    ({"fallback": {"action": "backorder", "queue": "x"}}, "'queue' only goes with the hold action"),
    ({"sorts": ["stock_depth", "stock_depth"]}, "sort ['stock_depth'] appears more than once"),
    ({"sorts": [{"by": "priority"}]}, "priority needs exactly one of 'locations' (store ids) or 'location_types'"),
    ({"sorts": [{"by": "priority", "location_types": ["shop"]}]}, "Input should be 'warehouse' or 'store'"),
    ({"filters": {"order_value_min": 10, "order_value_max": 5}}, "order_value_min 10.0 is above order_value_max 5.0"),
    ({"filters": {"category_any": []}}, "category_any must not be empty"),
    ({"constraints": {"location_types": []}}, "location_types must not be empty"),
])
def test_incoherent_rules_are_refused(rule, message):
    found = problems([{"name": "r", **rule}])
    assert any(message in line for line in found), found


def test_profile_level_problems():
    assert any("rule names must be unique" in p for p in problems([{"name": "a"}, {"name": "a"}]))
    assert any(p.startswith("rules: List should have at least 1 item") for p in problems([]))
    assert any(p.startswith("country_code:") for p in problems([{"name": "a"}], country_code="UAE"))


def test_location_ids_named_by_the_rules():
    spec = parse_spec({"country_code": "AE", "name": "x", "rules": [
        {"name": "r", "sorts": [{"by": "priority", "locations": ["AE-ST-02", "AE-WH-01"]}],
         "constraints": {"location_daily_capacity": {"AE-ST-09": 5}}}]})
    assert spec.location_ids() == {"AE-ST-02", "AE-WH-01", "AE-ST-09"}
