"""Rule routing on a generated backlog: throughput, and shipments and shipping cost per order
against a plain "nearest location with stock, SKU by SKU" baseline.

    PYTHONPATH=plugins .venv/bin/python bench/routing.py [--orders 15000] [--skus 400] [--stores 6]

The backlog is omsdev.demo_data's (six GCC countries, a warehouse and N stores each, its stock rows
less one unit of store safety stock, its order mix: ~15 % click & collect, multi-line baskets,
pending payments that wait). Customers sit near their address city (deterministic jitter).
Courier rate cards are generated per country: two couriers, distance and weight bands, store
pick-ups dearer than warehouse ones, a same-day courier only within 60 km (AED-equivalent units).

Both strategies see the same orders in the same order (oldest first) and the same stock, each
consuming what it allocates. The engine routes with `route_batch` (pure Python, no database);
the throughput is orders decided per second, explanations included. The baseline sends each line
to the nearest location (warehouse or ship-from-store store) that still has the units, and backorders
the whole order when a line has none anywhere (as the engine's profile does). Shipments and costs
are compared on the delivery orders both strategies allocate.

The optimiser (routing mode "batch", HiGHS through scipy.optimize.milp) routes the same backlog
and stock in windows of 1,000 orders: allocated orders, the LP-relaxation bound, splits, cost per
order, stores over capacity and seconds per window, beside the rule engine and the baseline.

The replayed month: the backlog spread over 30 days, routed order by order by the rule engine
as the platform would (each order's candidates = the stock and that day's shipments it saw),
then replayed with the profile that ran (differences, orders/s), with another profile and with
the optimiser (the side-by-side figures of `oms routing replay`).

Writes bench/results/routing.json. Measured, never asserted.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from oms.routing import (
    Candidate,
    Order,
    OrderLine,
    RateCard,
    RoutingContext,
    RoutingProfile,
    is_releasable,
    route_batch,
)
from oms.routing.decisions import business_day
from oms.routing.engine import Usage, route
from oms.routing.geo import Point, RateBook
from oms.routing.optimiser import route_optimised
from omsdev import demo_data

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results" / "routing.json"
EXAMPLES = REPO / "plugins" / "oms" / "routing" / "examples"
COUNTRIES = ("AE", "SA", "QA", "KW", "BH", "OM")
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
STORE_SAFETY = 1

COST_FIRST = {
    "name": "Cheapest lane first",
    "rules": [
        {"name": "click & collect", "filters": {"is_pickup": True}, "sorts": ["distance_to_customer", "stock_depth"],
         "constraints": {"max_shipments_per_order": 2},
         "fallback": ["transfer", {"action": "offer_alternatives", "max_alternatives": 3}, "reject"]},
        {"name": "cheapest lane", "filters": {"is_pickup": False},
         "sorts": [{"by": "shipping_cost", "band": 1}, {"by": "distance_to_customer", "band_km": 10}, "stock_depth"],
         "constraints": {"max_shipments_per_order": 3}, "fallback": "next_rule"},
        {"name": "backorder", "filters": {"is_pickup": False}, "sorts": [{"by": "priority", "location_types": ["warehouse", "store"]}],
         "constraints": {"location_types": ["warehouse"]}, "fallback": {"action": "cancel_after_days", "days": 14}},
    ],
}


def rate_cards(country: str) -> list[RateCard]:
    """Two couriers; bands by distance (km) and weight (g); a store pick-up costs the courier more."""
    cards = []
    bands = [((0, 15), 0.0, 1.0), ((15, 60), 6.0, 1.0), ((60, 250), 14.0, 2.0), ((250, 3000), 26.0, 3.0)]
    weights = [((0, 2000), 0.0), ((2000, None), 9.0)]
    for courier, base, same_day_only in (("aramex", 14.0, False), ("quiqup", 11.0, True)):
        for from_type, surcharge in (("warehouse", 0.0), ("store", 5.0)):
            for (lo, hi), band_cost, days in bands:
                if same_day_only and lo >= 60:
                    continue
                for (wlo, whi), wcost in weights:
                    cards.append(RateCard(
                        country_code=country, courier=courier, from_location_type=from_type, min_km=lo, max_km=hi,
                        min_weight_g=wlo, max_weight_g=whi, cost=base + band_cost + wcost + surcharge,
                        transit_days=0.5 if same_day_only else days))
    return cards


def candidates(data: demo_data.DemoData) -> dict[str, list[Candidate]]:
    atp: dict[str, dict[str, float]] = defaultdict(dict)
    kinds = {loc["store_id"]: loc["location_type"] for loc in data.locations}
    for row in data.stock_rows:
        store = row["locationCode"]
        if store in kinds and isinstance(row["inventory"], int | float) and row["inventory"] > 0:
            usable = row["inventory"] - (STORE_SAFETY if kinds[store] == "store" else 0)
            if usable > 0:
                atp[store][row["itemNumber"]] = float(usable)
    out: dict[str, list[Candidate]] = defaultdict(list)
    for loc in data.locations:
        out[loc["country_code"]].append(Candidate(
            store_id=loc["store_id"], location_type=loc["location_type"], country_code=loc["country_code"],
            latitude=loc["latitude"], longitude=loc["longitude"], city=loc["city"],
            ship_from_store=loc["ship_from_store"], pickup_enabled=loc["pickup_enabled"], active=loc["active"],
            atp=atp.get(loc["store_id"], {})))
    return out


def orders(data: demo_data.DemoData) -> dict[str, list[Order]]:
    """The releasable orders per country, oldest first, as the engine's Order (stock lines only)."""
    weights = {s["sku"]: s.get("weight_g") for s in data.skus}
    categories = {s["sku"]: s.get("category") for s in data.skus}
    stores_by_code = {loc["magento_source_code"]: loc["store_id"] for loc in data.locations}
    country_of = {c["magento_store_id"]: c["country_code"] for c in data.countries}
    out: dict[str, list[Order]] = defaultdict(list)
    for o in sorted(data.orders, key=lambda o: (o["created_at"], o["entity_id"])):
        country = country_of.get(o["store_id"])
        method = o["payment"]["method"]
        if country is None or not is_releasable(o["state"], method):
            continue
        lines = []
        for item in o["items"]:
            if item["product_type"] in ("configurable", "bundle") or item.get("is_virtual") \
                    or item["product_type"] in ("virtual", "downloadable") or item["sku"] not in weights:
                continue
            qty = item["qty_ordered"] - item.get("qty_canceled", 0) - item.get("qty_shipped", 0)
            if qty > 0:
                lines.append(OrderLine(line_key=str(item["item_id"]), sku=item["sku"], qty=qty,
                                       category=categories[item["sku"]], weight_g=weights[item["sku"]]))
        if not lines:
            continue
        ext = o.get("extension_attributes", {})
        address = ext.get("shipping_assignments", [{}])[0].get("shipping", {}).get("address") or {}
        pickup = stores_by_code.get(ext.get("pickup_location_code"))
        city = address.get("city")
        spec = demo_data.COUNTRIES[country]
        home = next((c for c in spec.cities if c.name == city), None)
        rng = random.Random(o["entity_id"])
        lat = home.latitude + rng.uniform(-0.03, 0.03) if home else None
        lon = home.longitude + rng.uniform(-0.03, 0.03) if home else None
        out[country].append(Order(
            increment_id=o["increment_id"], country_code=country, channel_code=f"{country.lower()}_web",
            lines=lines, shipping_method=ext.get("shipping_assignments", [{}])[0].get("shipping", {}).get("method"),
            pickup_store_id=pickup, order_value=float(o["grand_total"]), latitude=lat, longitude=lon, city=city,
            payment_releasable=True, created_at=datetime.strptime(o["created_at"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)))
    return out


def baseline(country_orders: list[Order], cands: list[Candidate], book: RateBook) -> dict[str, dict[str, Any]]:
    """Nearest location with stock, SKU by SKU; the whole order backordered if a line has none."""
    shippers = [c for c in cands if c.active and (c.location_type == "warehouse" or c.ship_from_store)]
    left = {(c.store_id, sku): qty for c in shippers for sku, qty in c.atp.items()}
    out = {}
    for order in country_orders:
        if order.is_pickup:
            continue
        dest = Point(order.latitude, order.longitude, order.city)
        near = sorted(shippers, key=lambda c: (math.inf if (d := dest.distance_to(c.latitude, c.longitude, c.city))
                                               is None else d, c.store_id))
        taken: list[tuple[Candidate, OrderLine]] = []
        need: dict[tuple[str, str], float] = defaultdict(float)
        for line in order.lines:
            pick = next((c for c in near if left.get((c.store_id, line.sku), 0)
                         - need.get((c.store_id, line.sku), 0) >= line.qty), None)
            if pick is None:
                taken = []
                break
            need[(pick.store_id, line.sku)] += line.qty
            taken.append((pick, line))
        if not taken:
            out[order.increment_id] = {"allocated": False}
            continue
        for key, qty in need.items():
            left[key] -= qty
        by_loc: dict[str, list] = defaultdict(list)
        for c, line in taken:
            by_loc[c.store_id].append((c, line))
        cost, unknown = 0.0, 0
        for group in by_loc.values():
            c = group[0][0]
            weight = sum((line.weight_g or 0) * line.qty for _, line in group)
            quote, _ = book.best(order.country_code, c.store_id, c.location_type, order.city,
                                 dest.distance_to(c.latitude, c.longitude, c.city), weight)
            if quote is None:
                unknown += 1
            else:
                cost += quote.cost
        out[order.increment_id] = {"allocated": True, "shipments": len(by_loc), "cost": cost, "unknown_cost": unknown}
    return out


def engine_summary(decisions) -> dict[str, dict[str, Any]]:
    out = {}
    for d in decisions:
        if d.shipments and d.shipments[0].fulfilment != "ship" or any(a.fulfilment != "ship" for a in d.allocations):
            continue
        if d.outcome in ("allocated", "split"):
            out[d.order_increment_id] = {
                "allocated": True, "shipments": len(d.shipments),
                "cost": sum(s.cost for s in d.shipments if s.cost is not None),
                "unknown_cost": sum(1 for s in d.shipments if s.cost is None)}
        elif not d.allocations:
            out[d.order_increment_id] = {"allocated": False}
    return out


def compare(results: dict[str, dict[str, Any]], common: set[str]) -> dict[str, Any]:
    done = {k: v for k, v in results.items() if v["allocated"]}
    on = [done[k] for k in common]
    return {
        "delivery_orders_allocated": len(done),
        "shipments_per_order": round(sum(v["shipments"] for v in on) / len(on), 4) if on else None,
        "split_orders_pct": round(100 * sum(1 for v in on if v["shipments"] > 1) / len(on), 2) if on else None,
        "shipping_cost_total": round(sum(v["cost"] for v in on), 2),
        "shipping_cost_per_order": round(sum(v["cost"] for v in on) / len(on), 3) if on else None,
        "shipments_without_rate": sum(v["unknown_cost"] for v in on),
    }


def run(n_orders: int, skus: int, stores: int, seed: int) -> dict[str, Any]:
    started = time.perf_counter()
    data = demo_data.generate(skus=skus, stores_per_country=stores, orders=n_orders, seed=seed, as_of=NOW,
                              countries=COUNTRIES)
    backlog, cands = orders(data), candidates(data)
    cards = {c: rate_cards(c) for c in COUNTRIES}
    prepared = time.perf_counter() - started
    total = sum(len(v) for v in backlog.values())
    profiles = {
        "warehouse_first (example)": json.loads((EXAMPLES / "warehouse_first.json").read_text()),
        "cost_first": COST_FIRST,
    }
    out: dict[str, Any] = {
        "generated": {"orders": n_orders, "releasable_orders_routed": total,
                      "delivery_orders": sum(1 for v in backlog.values() for o in v if not o.is_pickup),
                      "click_and_collect_orders": sum(1 for v in backlog.values() for o in v if o.is_pickup),
                      "lines": sum(len(o.lines) for v in backlog.values() for o in v), "skus": skus,
                      "locations": len(data.locations), "countries": list(COUNTRIES), "seed": seed,
                      "prepare_seconds": round(prepared, 2)},
        "profiles": {},
    }
    base: dict[str, dict[str, Any]] = {}
    t0 = time.perf_counter()
    for country, country_orders in backlog.items():
        base.update(baseline(country_orders, cands[country], RateBook(cards[country])))
    base_seconds = time.perf_counter() - t0
    for name, doc in profiles.items():
        decisions = []
        elapsed = cpu = 0.0
        for country, country_orders in backlog.items():
            profile = RoutingProfile.model_validate({**doc, "country_code": country, "profile_id": 1, "version": 1})
            context = RoutingContext(now=NOW, rate_cards=cards[country])
            route_batch(country_orders[:50], cands[country], profile, context)   # warm the caches of this code path
            t0, c0 = time.perf_counter(), time.process_time()
            decisions += route_batch(country_orders, cands[country], profile, context)
            elapsed += time.perf_counter() - t0
            cpu += time.process_time() - c0
        outcomes: dict[str, int] = defaultdict(int)
        for d in decisions:
            outcomes[d.outcome] += 1
        mine = engine_summary(decisions)
        common = {k for k, v in mine.items() if v["allocated"] and base.get(k, {}).get("allocated")}
        out["profiles"][name] = {
            "orders": len(decisions), "seconds": round(elapsed, 3), "cpu_seconds": round(cpu, 3),
            "orders_per_second": round(len(decisions) / elapsed),
            "orders_per_cpu_second": round(len(decisions) / cpu),
            "outcomes": dict(sorted(outcomes.items())), "compared_orders": len(common),
            "rules": compare(mine, common), "baseline": compare(base, common),
            "baseline_seconds": round(base_seconds, 3),
        }
    return out


def outcome_figures(decisions, cands: list[Candidate]) -> dict[str, Any]:
    """Allocated, split, cost per allocated delivery, parcels per store against its capacity."""
    allocated = [d for d in decisions if d.allocated]
    delivery = [d for d in allocated if all(s.fulfilment == "ship" for s in d.shipments)]
    parcels: dict[str, int] = defaultdict(int)
    limits: dict[str, int] = {}
    for d in allocated:
        for s in d.shipments:
            if s.fulfilment != "pickup":
                parcels[s.store_id] += 1
                if s.capacity_limit is not None:
                    limits[s.store_id] = s.capacity_limit
    base = {c.store_id: c.shipments_today for c in cands}
    over = sorted(sid for sid, n in parcels.items() if sid in limits and base.get(sid, 0) + n > limits[sid])
    split = sum(1 for d in allocated if len(d.shipments) > 1)
    return {"orders": len(decisions), "allocated": len(allocated), "split_orders": split,
            "delivery_splits": sum(1 for d in allocated if d.outcome == "split"),
            "split_pct": round(100 * split / len(allocated), 3) if allocated else None,
            "delivery_allocated": len(delivery),
            "cost_per_delivery": round(sum(s.cost or 0 for d in delivery for s in d.shipments) / len(delivery), 3)
            if delivery else None, "stores_over_capacity": over}


def run_optimiser(data, backlog, cands, cards, profile_doc, window: int) -> dict[str, Any]:
    """Rule engine vs optimiser per country, same backlog, same stock; all on one day."""
    out: dict[str, Any] = {"per_country": {}, "windows": []}
    totals = defaultdict(lambda: defaultdict(float))
    for country, country_orders in backlog.items():
        profile = RoutingProfile.model_validate({**profile_doc, "country_code": country, "profile_id": 1, "version": 1,
                                                 "mode": "batch", "batch": {"window_size": window}})
        context = RoutingContext(now=NOW, rate_cards=cards[country])
        t0 = time.perf_counter()
        rules = route_batch(country_orders, cands[country], profile, context)
        rules_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        opt = route_optimised(country_orders, cands[country], profile, context)
        opt_s = time.perf_counter() - t0
        r, o = outcome_figures(rules, cands[country]), outcome_figures(opt.decisions, cands[country])
        out["per_country"][country] = {"rules": r, "optimiser": o, "rules_seconds": round(rules_s, 2),
                                       "optimiser_seconds": round(opt_s, 2)}
        for w in opt.windows:
            out["windows"].append({"country": country, **w.as_dict()})
        for label, f in (("rules", r), ("optimiser", o)):
            for k in ("orders", "allocated", "split_orders", "delivery_splits", "delivery_allocated"):
                totals[label][k] += f[k]
            totals[label]["cost_total"] += (f["cost_per_delivery"] or 0) * f["delivery_allocated"]
            totals[label]["stores_over_capacity"] += len(f["stores_over_capacity"])
    for label, t in totals.items():
        t["cost_per_delivery"] = round(t.pop("cost_total") / t["delivery_allocated"], 3)
        t["split_pct_of_allocated"] = round(100 * t["split_orders"] / t["allocated"], 3)
        out[label] = dict(t)
    ws = out["windows"]
    optimised = [w for w in ws if w["optimised_orders"]]
    out["optimiser"]["lp_bound_delivery_allocated"] = round(sum(w["lp_bound_allocated"] or 0 for w in optimised), 2)
    out["optimiser"]["solver_delivery_allocated"] = sum(w["allocated_by_solver"] for w in optimised)
    out["optimiser"]["max_seconds_per_window"] = max((w["seconds"] for w in ws), default=None)
    out["optimiser"]["max_seconds_per_1000_orders"] = max((w["seconds"] * 1000 / w["orders"] for w in ws if w["orders"]),
                                                          default=None)
    out["optimiser"]["max_cpu_seconds_per_1000_orders"] = max(
        (w["cpu_seconds"] * 1000 / w["orders"] for w in ws if w["orders"]), default=None)
    out["optimiser"]["max_solve_seconds_per_window"] = max((w["solve_seconds"] for w in ws), default=None)
    out["optimiser"]["windows_fallen_back"] = sum(1 for w in ws if w["fell_back"])
    return out


def run_replay(backlog, cands, cards, ran_doc, other_doc) -> dict[str, Any]:
    """A month routed order by order (as the platform would), then replayed three ways."""
    from oms.routing import replay as rp
    from oms.routing.inputs import rate_card_fingerprint

    out: dict[str, Any] = {}
    for country in ("AE", "SA"):
        orders_ = backlog[country]
        ran = RoutingProfile.model_validate({**ran_doc, "country_code": country, "profile_id": 1, "version": 1})
        fp = rate_card_fingerprint(cards[country])
        book_cards = {fp: cards[country]}
        usage, day_ships = Usage(), defaultdict(int)
        events = []
        span = len(orders_)
        for i, order in enumerate(orders_):
            now = NOW.replace(day=1) + (i / span) * (NOW.replace(month=4, day=1) - NOW.replace(day=1)) / 1
            day = business_day(country, now)
            skus = {x.sku for x in order.lines}
            seen = [c.model_copy(update={
                "atp": {s: q - usage.consumed.get((c.store_id, s), 0.0) for s, q in c.atp.items() if s in skus},
                "shipments_today": day_ships[(c.store_id, day)]}) for c in cands[country]]
            d = route(order, seen, ran, RoutingContext(now=now, rate_cards=cards[country]))
            usage.apply(d)
            for s in d.shipments:
                if s.fulfilment != "pickup":
                    day_ships[(s.store_id, day)] += 1
            stored = d.model_dump(mode="json", include={*rp.COMPARED, "candidates"})
            events.append(rp.Event(i, order.increment_id, now, f"run/{now:%Y%m%d%H}", 1, stored, order, seen, fp))
        start, end = events[0].decided_at, events[-1].decided_at
        other = RoutingProfile.model_validate({**other_doc, "country_code": country, "profile_id": 2, "version": 2})
        batch = RoutingProfile.model_validate({**ran_doc, "country_code": country, "profile_id": 3, "version": 3,
                                               "mode": "batch"})
        runs = {}
        for label, prof in (("same_profile", None), ("other_profile", other), ("optimiser", batch)):
            res = rp.replay_events(events, {1: ran}, book_cards, country, start, end, prof)
            runs[label] = {"events": res.events, "replayed": res.replayed, "differences": res.differences,
                           "seconds": res.seconds, "cpu_seconds": res.cpu_seconds,
                           "orders_per_second": round(res.replayed / res.seconds),
                           "orders_per_cpu_second": round(res.replayed / res.cpu_seconds),
                           "comparison": {f: [a, b] for f, a, b in rp.comparison_rows(res)}}
        out[country] = runs
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=15_000)
    parser.add_argument("--skus", type=int, default=400)
    parser.add_argument("--stores", type=int, default=6, help="stores per country")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--window", type=int, default=1000, help="optimiser window (orders)")
    args = parser.parse_args()
    result = run(args.orders, args.skus, args.stores, args.seed)
    data = demo_data.generate(skus=args.skus, stores_per_country=args.stores, orders=args.orders, seed=args.seed,
                              as_of=NOW, countries=COUNTRIES)
    backlog, cands = orders(data), candidates(data)
    cards = {c: rate_cards(c) for c in COUNTRIES}
    warehouse_first = json.loads((EXAMPLES / "warehouse_first.json").read_text())
    result["optimiser"] = run_optimiser(data, backlog, cands, cards, warehouse_first, args.window)
    result["replay"] = run_replay(backlog, cands, cards, warehouse_first, COST_FIRST)
    result["machine"] = {"python": platform.python_version(), "platform": platform.platform(),
                         "measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    console = Console(width=160)
    g = result["generated"]
    console.print(f"Backlog: {g['releasable_orders_routed']} releasable orders of {g['orders']} generated "
                  f"({g['delivery_orders']} deliveries, {g['click_and_collect_orders']} click & collect, "
                  f"{g['lines']} lines), {g['skus']} SKUs, {g['locations']} locations in {len(g['countries'])} countries")
    table = Table(title="Rule routing vs nearest-with-stock, SKU by SKU (same orders, same stock)")
    for column in ("profile", "orders/s (wall)", "orders/CPU-s", "compared orders", "strategy",
                   "deliveries allocated", "shipments/order", "split %", "cost/order", "no rate"):
        table.add_column(column)
    for name, p in result["profiles"].items():
        for i, (label, m) in enumerate((("rules", p["rules"]), ("baseline", p["baseline"]))):
            first = i == 0
            table.add_row(name if first else "", f"{p['orders_per_second']:,}" if first else "",
                          f"{p['orders_per_cpu_second']:,}" if first else "", str(p["compared_orders"]) if first else "",
                          label, str(m["delivery_orders_allocated"]), str(m["shipments_per_order"]),
                          str(m["split_orders_pct"]), str(m["shipping_cost_per_order"]), str(m["shipments_without_rate"]))
    console.print(table)
    for name, p in result["profiles"].items():
        console.print(f"{name} outcomes: " + ", ".join(f"{k} {v}" for k, v in p["outcomes"].items()))
    o = result["optimiser"]
    table = Table(title="Warehouse first: rule engine vs optimiser (HiGHS), same backlog and stock, one day")
    for column in ("strategy", "orders", "allocated", "delivery splits", "orders with >1 shipment (incl. C&C transfers)",
                   "cost/delivery", "stores over capacity"):
        table.add_column(column)
    for label in ("rules", "optimiser"):
        m = o[label]
        table.add_row(label, f"{m['orders']:.0f}", f"{m['allocated']:.0f}", f"{m['delivery_splits']:.0f}",
                      f"{m['split_orders']:.0f}", str(m["cost_per_delivery"]), f"{m['stores_over_capacity']:.0f}")
    console.print(table)
    console.print(f"optimiser: solver allocated {o['optimiser']['solver_delivery_allocated']} deliveries, LP bound "
                  f"{o['optimiser']['lp_bound_delivery_allocated']}; slowest window {o['optimiser']['max_seconds_per_window']} s "
                  f"({o['optimiser']['max_seconds_per_1000_orders']:.2f} s wall, "
                  f"{o['optimiser']['max_cpu_seconds_per_1000_orders']:.2f} CPU-s per 1,000 orders; solver at most "
                  f"{o['optimiser']['max_solve_seconds_per_window']} s); "
                  f"{o['optimiser']['windows_fallen_back']} window(s) fell back")
    for country, runs in result["replay"].items():
        for label, r in runs.items():
            console.print(f"replay {country} {label}: {r['replayed']}/{r['events']} replayed, {r['differences']} "
                          f"differences, {r['orders_per_second']:,} orders/s wall, "
                          f"{r['orders_per_cpu_second']:,} per CPU-s")
        table = Table(title=f"Replayed month {country}: recorded (warehouse first) vs replays")
        for column in ("figure", "recorded", "cost first", "optimiser"):
            table.add_column(column)
        for figure, (a, b) in runs["other_profile"]["comparison"].items():
            table.add_row(figure, str(a), str(b), str(runs["optimiser"]["comparison"][figure][1]))
        console.print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"written to {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
