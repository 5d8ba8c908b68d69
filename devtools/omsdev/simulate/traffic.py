"""What happens in the retailer's month, tick by tick, from one seed: web orders with daily and weekly
peaks, a flash sale, till sales, receipts, transfers, shrinkage found by stock counts, cancellations
and outages. Deterministic: the same seed and scale give the same events in the same order.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from omsdev import demo_data

# Share of a day's web orders per local hour (GCC: evenings peak, nights are quiet).
HOURLY = [1, 1, 0.5, 0.3, 0.3, 0.4, 0.8, 1.2, 1.8, 2.4, 3, 3.4, 3.6, 3.4, 3.2, 3.4, 3.8, 4.4, 5.2, 6, 6.2, 5.4, 3.6, 2]
# Per weekday (Monday = 0): the GCC weekend (Friday, Saturday) sells more.
WEEKDAY = [0.9, 0.9, 0.95, 1.05, 1.25, 1.35, 1.0]


@dataclass(frozen=True)
class Scale:
    skus: int
    stores_per_country: int
    orders_per_day: float
    till_sales_per_day: float

    @classmethod
    def named(cls, name: str) -> Scale:
        return {"XS": cls(24, 2, 12, 10), "S": cls(200, 4, 170, 120), "M": cls(500, 8, 400, 300)}[name]


@dataclass
class Tick:
    start: datetime
    end: datetime
    events: list[dict[str, Any]] = field(default_factory=list)
    outages: set[str] = field(default_factory=set)     # systems down for the whole tick


class _SimOrderFactory(demo_data._OrderFactory):
    """The demo's Magento order builder, with the flash sale's SKU forced when asked."""

    forced: dict[str, Any] | None = None

    def _lines(self, order_id, spec, discount_pct, created):  # noqa: ANN001 — the parent's signature
        if self.forced is None:
            return super()._lines(order_id, spec, discount_pct, created)
        sku = self.forced
        return [self._row(order_id, spec, sku["sku"], sku["name"], "simple", 1,
                          demo_data._local(sku["price_aed"], spec), sku["weight_g"] / 1000, sku["product_id"],
                          discount_pct, created)]


def _stamp(order: dict[str, Any], at: datetime) -> dict[str, Any]:
    """The order as Magento shows it right after checkout at `at`."""
    moment = at.strftime("%Y-%m-%d %H:%M:%S")
    order["created_at"] = order["updated_at"] = moment
    for item in order["items"]:
        item["created_at"] = item["updated_at"] = moment
    for history in order.get("status_histories", []):
        history["created_at"] = moment
    return order


class Traffic:
    def __init__(self, data: demo_data.DemoData, scale: Scale, seed: int, start: datetime, days: int) -> None:
        self.data, self.scale, self.seed, self.start, self.days = data, scale, seed, start, days
        self.rng = random.Random(f"{seed}:traffic")
        self.specs = {s.code: s for s in demo_data._country_specs([c["country_code"] for c in data.countries])}
        # the generator's own catalogue rows (with the option ids configurable rows are built from)
        catalogue = list(demo_data.iter_skus(len(data.skus)))
        self.factory = _SimOrderFactory(random.Random(f"{seed}:orders"), catalogue,
                                        demo_data._configurable_parents(catalogue), data.locations, start)
        self.entity_ids = iter(range(500_001, 10_000_000))
        self.stores = [loc for loc in data.locations if loc["location_type"] == "store"]
        self.warehouses = [loc for loc in data.locations if loc["location_type"] == "warehouse"]
        beauty = sorted((s for s in data.skus if s["category"] == "beauty"), key=lambda s: s["sku"])
        self.flash_sku = beauty[len(beauty) // 3] if beauty else data.skus[0]
        self.flash_day = min(days - 1, max(1, days // 2))
        self.documents = iter(range(1, 10_000_000))
        # outages: each system once, a few hours, on different days (none on the first or the flash day)
        self.outage_days = {}
        candidates = [d for d in range(1, days) if d != self.flash_day]
        for system in ("magento", "erp", "clickpost"):
            if candidates:
                self.outage_days[system] = self.rng.choice(candidates)

    def ticks(self, hours: int) -> list[Tick]:
        ticks = []
        moment = self.start
        end = self.start + timedelta(days=self.days)
        while moment < end:
            ticks.append(Tick(moment, min(end, moment + timedelta(hours=hours))))
            moment = ticks[-1].end
        return ticks

    def fill(self, tick: Tick) -> Tick:
        """The tick's events in time order (each hour drawn on its own, from the seed)."""
        day = (tick.start - self.start).days
        for system, outage_day in self.outage_days.items():
            if outage_day == day and tick.start.hour < 12:
                tick.outages.add(system)
        hour = tick.start
        while hour < tick.end:
            rng = random.Random(f"{self.seed}:{hour.isoformat()}")
            tick.events.extend(self._hour(rng, hour, day))
            hour += timedelta(hours=1)
        tick.events.sort(key=lambda e: (e["at"], e["seq"]))
        return tick

    def _hour(self, rng: random.Random, hour: datetime, day: int) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        seq = iter(range(1_000_000))
        local_hour = (hour.hour + 4) % 24
        weight = HOURLY[local_hour] / sum(HOURLY) * WEEKDAY[hour.weekday()]

        def at() -> datetime:
            return hour + timedelta(seconds=rng.randrange(3600))

        for _ in range(_poisson(rng, self.scale.orders_per_day * weight)):
            spec = self.specs[rng.choices(list(self.specs), weights=[s.order_weight for s in self.specs.values()])[0]]
            events.append({"at": at(), "seq": next(seq), "kind": "web_order", "country": spec.code,
                           "order": self._order(spec)})
        if day == self.flash_day and 17 <= local_hour <= 21:
            # the flash sale: one SKU at a price that sells it down to its last units in a few hours
            for _ in range(_poisson(rng, 12)):
                spec = self.specs[rng.choice(list(self.specs))]
                self.factory.forced = self.flash_sku
                order = self._order(spec)
                self.factory.forced = None
                events.append({"at": at(), "seq": next(seq), "kind": "web_order", "country": spec.code,
                               "order": order, "flash": True})
        for _ in range(_poisson(rng, self.scale.till_sales_per_day * weight)):
            store = rng.choice(self.stores)
            sku = rng.choice(self.data.skus)
            events.append({"at": at(), "seq": next(seq), "kind": "till_sale", "store_id": store["store_id"],
                           "sku": sku["sku"], "qty": 1, "delay_ticks": 1 if rng.random() < 0.1 else 0})
        if local_hour == 9:  # morning deliveries into the warehouses
            for warehouse in self.warehouses:
                for sku in rng.sample(self.data.skus, k=max(1, len(self.data.skus) // 20)):
                    events.append({"at": at(), "seq": next(seq), "kind": "receipt", "store_id": warehouse["store_id"],
                                   "sku": sku["sku"], "qty": rng.choice((6, 12, 24))})
        if local_hour == 11 and rng.random() < 0.5:  # a store-to-store transfer, arriving the next day
            source, target = rng.sample(self.stores, 2) if len(self.stores) > 1 else (self.stores[0], self.stores[0])
            if source["country_code"] == target["country_code"] and source is not target:
                sku = rng.choice(self.data.skus)
                events.append({"at": at(), "seq": next(seq), "kind": "transfer", "store_id": source["store_id"],
                               "to_store_id": target["store_id"], "sku": sku["sku"], "qty": 1,
                               "document": f"TR-{next(self.documents)}"})
        if rng.random() < 0.15:  # a unit lost on the shelf (theft, damage): nobody tells the ERP
            store = rng.choice(self.stores)
            events.append({"at": at(), "seq": next(seq), "kind": "shrinkage", "store_id": store["store_id"],
                           "sku": rng.choice(self.data.skus)["sku"], "qty": 1})
        if local_hour == 22:  # the evening cycle count of one store
            store = rng.choice(self.stores)
            events.append({"at": at(), "seq": next(seq), "kind": "count", "store_id": store["store_id"]})
        return events

    def _order(self, spec: demo_data.CountrySpec) -> dict[str, Any]:
        return self.factory.build(next(self.entity_ids), spec)


def stamp(order: dict[str, Any], at: datetime) -> dict[str, Any]:
    return _stamp(order, at)


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method; means here are small."""
    if mean <= 0:
        return 0
    limit, k, p = pow(2.718281828459045, -mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
