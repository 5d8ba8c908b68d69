"""Promise accuracy against the simulator's ground truth.

* oversell: allocated order lines the location could not physically fulfil when the platform sent
  them there (units on the shelf not already set aside for earlier allocations), per 1,000 orders;
* undersell: demand the platform refused (Magento showed it not salable; routing backordered or
  cancelled it) while an eligible location of the country physically held the units free, as a
  share of demanded units;
* drift: Magento's salable quantity against the platform's ATP per SKU and country, sampled each
  simulated hour (after the stock publish the hour's ERP movements triggered) and after each reconcile;
* lag: ERP movement → API answer (the POST answers once the ATP cache has heard it) and order
  landed → reserved (the push path answers after the reservation committed), p50/p95/max;
* the fulfilment KPI marts checked against the simulator's own counts.

Reading the platform's tables here is measuring, not driving: nothing is written to them.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from oms.warehouse import connect
from omsdev.simulate.world import World


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    ordered = sorted(values)
    return {"n": len(ordered), "p50": round(statistics.median(ordered), 4),
            "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 4), "max": round(ordered[-1], 4)}


class Metrics:
    def __init__(self, world: World) -> None:
        self.world = world
        self.orders = Counter()                    # by kind
        self.demand_units = 0.0
        self.refused_units = 0.0
        self.outage_units = 0.0
        self.undersold_units = 0.0
        self.oversold_lines = 0
        self.allocated_lines = 0
        self.cancellations = self.rejections = self.counts = self.postings = self.parcels = 0
        self.outage_ticks: Counter = Counter()
        self.courier: Counter = Counter()          # parcels by lifecycle: delivered, ndr_then_delivered, rto
        self.lags: dict[str, list[float]] = defaultdict(list)
        self.day_lags: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.drift_samples: list[dict[str, Any]] = []
        self.incidents: list[dict[str, Any]] = []
        self.checked_decisions: set[int] = set()
        self.refused_orders: set[str] = set()
        self.held_for_short_sibling_units = 0.0
        # units of placed orders not yet allocated to a location, per (country, sku): promised to
        # someone already, so not free for the next shopper even though they are on a shelf
        self.pending: dict[tuple[str, str], float] = defaultdict(float)
        self.per_day: dict[str, Counter] = defaultdict(Counter)
        self.kpi_check: dict[str, Any] = {}
        self.ledger_check: dict[str, Any] = {}

    # -------------------------------------------------------------- demand
    def demand(self, event: dict[str, Any], lines: list[tuple[str, float]]) -> None:
        self.demand_units += sum(qty for _, qty in lines)
        self.per_day[event["at"].date().isoformat()]["demand_units"] += sum(qty for _, qty in lines)

    def placed(self, order: dict[str, Any], event: dict[str, Any], lines: list[tuple[str, float]]) -> None:
        for sku, qty in lines:
            self.pending[(event["country"], sku)] += qty
        method = (order.get("payment") or {}).get("method")
        pickup = (order.get("extension_attributes") or {}).get("pickup_location_code")
        self.orders["placed"] += 1
        self.orders["cod" if method == "cashondelivery" else "prepaid"] += 1
        self.orders["click_and_collect" if pickup else "delivery"] += 1
        self.orders["flash_sale"] += bool(event.get("flash"))
        self.per_day[event["at"].date().isoformat()]["orders"] += 1

    def _free_in_country(self, sim, country: str, sku: str) -> dict[str, float]:
        return {store_id: self.world.free(store_id, sku) - sim.safety.get(store_id, 0.0)
                for store_id, loc in sim.locations.items()
                if loc["country_code"] == country and loc.get("active", True)
                and (loc["location_type"] == "warehouse" or loc.get("ship_from_store"))}

    def _available(self, country: str, sku: str, free: dict[str, float]) -> float:
        """Units of the country's eligible locations free beyond safety stock, less what placed
        orders not yet allocated already count on."""
        return sum(max(units, 0.0) for units in free.values()) - self.pending[(country, sku)]

    def lost_to_outage(self, event: dict[str, Any], lines: list[tuple[str, float]]) -> None:
        """Demand that met a Magento outage: lost, but not refused by the promise."""
        self.orders["lost_to_magento_outage"] += 1
        self.outage_units += sum(qty for _, qty in lines)

    def refused_by_magento(self, sim, event: dict[str, Any], order: dict[str, Any],
                           refused: list[tuple[str, float]]) -> None:
        self.orders["refused_by_magento"] += 1
        for sku, qty in refused:
            self.refused_units += qty
            free = self._free_in_country(sim, event["country"], sku)
            if self._available(event["country"], sku, free) >= qty:
                self.undersold_units += qty
                self.per_day[event["at"].date().isoformat()]["undersold_units"] += qty
                self.incident("undersell", event["at"], sku=sku, qty=qty, country=event["country"],
                              where="magento showed it not salable", free_units=free,
                              chain=[c for s in free if free[s] >= qty for c in self.world.chain(s, sku, event["at"], 4)])

    # -------------------------------------------------------------- allocations
    def check_allocations(self, sim, at: datetime) -> None:
        with connect(sim.settings.warehouse_dsn) as conn:
            rows = conn.execute(
                "SELECT decision_id, order_increment_id, country_code, outcome, reason, allocations, unallocated "
                "FROM oms.routing_decision WHERE decision_id > %s ORDER BY decision_id",
                (max(self.checked_decisions, default=0),)).fetchall()
        for row in rows:
            self.checked_decisions.add(row["decision_id"])
            for allocation in row["allocations"]:
                store_id, sku, qty = allocation["store_id"], allocation["sku"], float(allocation["qty"])
                self.allocated_lines += 1
                pending_key = (row["country_code"].strip(), sku)
                self.pending[pending_key] = max(0.0, self.pending[pending_key] - qty)
                if self.world.free(store_id, sku) + 1e-9 < qty:
                    self.oversold_lines += 1
                    self.per_day[at.date().isoformat()]["oversold_lines"] += 1
                    self.incident("oversell", at, order=row["order_increment_id"], store_id=store_id, sku=sku,
                                  qty=qty, free=self.world.free(store_id, sku),
                                  chain=self.world.chain(store_id, sku, at))
                self.world.committed[(store_id, sku)] += qty
            if row["outcome"] in ("backordered", "cancelled") and row["order_increment_id"] not in self.refused_orders:
                # once per order (a backordered order is routed again every run until stock comes),
                # and only when every line it left unallocated was physically there: lines held
                # back because a sibling line had no stock anywhere wait under the profile's rule
                # (one parcel, or the warehouse only, for a backorder), not for want of stock
                self.refused_orders.add(row["order_increment_id"])
                country = row["country_code"].strip()
                wanted: dict[str, float] = defaultdict(float)
                for line in row["unallocated"]:
                    wanted[line["sku"]] += float(line["qty"])
                free = {sku: self._free_in_country(sim, country, sku) for sku in wanted}
                short = sorted(sku for sku, qty in wanted.items() if self._available(country, sku, free[sku]) < qty)
                units = sum(wanted.values())
                if short:
                    self.held_for_short_sibling_units += sum(q for sku, q in wanted.items() if sku not in short)
                    continue
                self.undersold_units += units
                self.per_day[at.date().isoformat()]["undersold_units"] += units
                self.incident("undersell", at, order=row["order_increment_id"], skus=dict(wanted),
                              where=f"routing {row['outcome']}", reason=row.get("reason"), free_units=free)

    # -------------------------------------------------------------- drift and lag
    def sample_drift(self, sim, at: datetime, reconciled: bool) -> None:
        skus = sorted(s["sku"] for s in sim.data.skus)
        headers = {"Authorization": f"Bearer {sim.tokens['stock']}"}
        platform: dict[tuple[str, str], float] = {}
        for start in range(0, len(skus), 500):
            response = sim.api.post("/v1/atp/query", json={"skus": skus[start:start + 500]}, headers=headers)
            if response.status_code != 200:
                self.incident("atp_query_failed", at, detail=response.text[:200])
                return
            for item in response.json()["items"]:
                for country in item.get("countries", []):
                    platform[(item["sku"], country["country_code"])] = float(country["atp_qty"])
        samples = differing = 0
        worst = []
        if "magento" in sim.outages:
            return   # the web store is down: nothing is promised, nothing to compare
        # Magento's salable quantity as GET /V1/inventory/get-product-salable-quantity answers it,
        # read from the sandbox's state in this process (the same function; 24 samples a day of
        # 2 × SKUs HTTP calls would cost more than the platform's work being measured)
        inventory = sim.sandboxes.magento.state.sandbox.inventory
        for code, country in sim.countries.items():
            for sku in skus:
                try:
                    salable = float(inventory.salable_qty(sku, country["stock_id"]))
                except Exception:  # noqa: BLE001 — a SKU Magento does not know answers 404 over HTTP
                    continue
                samples += 1
                ours = platform.get((sku, code), 0.0)
                if abs(salable - ours) > 1e-9:
                    differing += 1
                    worst.append({"sku": sku, "country": code, "magento": salable, "platform": ours})
        for example in worst[:5]:   # the chain: the orders Magento still reserves the SKU for
            example["magento_open_reservations"] = _open_reservations(
                sim, sim.countries[example["country"]]["stock_id"], example["sku"])
        self.drift_samples.append({"at": at.isoformat(), "reconciled": reconciled, "samples": samples,
                                   "differing": differing, "examples": worst[:5]})
        self.per_day[at.date().isoformat()]["drift_samples"] += samples
        self.per_day[at.date().isoformat()]["drift_differing"] += differing

    def lag(self, name: str, seconds: float, at: datetime | None = None) -> None:
        self.lags[name].append(seconds)
        if at is not None:
            self.day_lags[(at.date().isoformat(), name)].append(seconds)

    def incident(self, kind: str, at: datetime, **detail: Any) -> None:
        self.incidents.append({"kind": kind, "at": at.isoformat(), **detail})

    # -------------------------------------------------------------- the end
    def finish(self, sim) -> None:
        with connect(sim.settings.warehouse_dsn) as conn:
            marts = conn.execute(
                "SELECT count(*) AS orders FROM marts.fct_orders WHERE increment_id = ANY(%s)",
                (list(sim.placed),)).fetchone()
        self.kpi_check = {"orders_placed_simulator": len(sim.placed), "orders_in_marts": marts["orders"]}
        unexplained = {}
        for key, book in sim.erp_book.items():
            truth = self.world.on_shelf[key]
            if abs(book - truth) > 1e-9:
                unexplained[f"{key[0]}/{key[1]}"] = {"erp_book": book, "on_shelf": truth,
                                                      "picked_not_posted": sim.picked_unposted[key]}
        self.ledger_check = {"world_conservation_errors": self.world.conservation_errors(),
                             "erp_book_vs_shelf_differences": len(unexplained),
                             "units_picked_never_posted": sum(sim.picked_unposted.values()),
                             "examples": dict(list(unexplained.items())[:10])}

    def report(self, sim, wall_seconds: float) -> dict[str, Any]:
        placed = max(self.orders["placed"], 1)
        between = [s for s in self.drift_samples if not s["reconciled"]]
        after = [s for s in self.drift_samples if s["reconciled"]]
        drift_between = sum(s["differing"] for s in between) / max(sum(s["samples"] for s in between), 1)
        drift_after = sum(s["differing"] for s in after)
        return {
            "days": sim.days, "seed": sim.seed, "scale": sim.scale.__dict__, "tick_hours": sim.tick_hours,
            "wall_seconds": round(wall_seconds, 1),
            "push_path": sim.push_path,
            "orders": dict(self.orders),
            "figures": {
                "oversell_per_1000_orders": round(1000 * self.oversold_lines / placed, 3),
                "oversold_lines": self.oversold_lines, "allocated_lines": self.allocated_lines,
                "undersell_share_of_demand": round(self.undersold_units / max(self.demand_units, 1), 5),
                "undersold_units": self.undersold_units, "demand_units": self.demand_units,
                "refused_units": self.refused_units,
                "backordered_units_held_for_a_short_sibling_line": self.held_for_short_sibling_units,
                "units_lost_to_magento_outage": self.outage_units,
                "drift_share_between_reconciles": round(drift_between, 5),
                "drift_after_reconcile": drift_after,
                "lag_erp_movement_to_api_s": percentiles(self.lags["erp_movement_to_api"]),
                "lag_order_landed_to_reserved_s": percentiles(self.lags["order_landed_to_reserved"]),
            },
            "activity": {"cancellations": self.cancellations, "store_rejections": self.rejections,
                         "stock_counts": self.counts, "postings_acknowledged": self.postings,
                         "parcels": self.parcels, "courier": dict(self.courier),
                         "returns": dict(sim.returns), "outage_ticks": dict(self.outage_ticks)},
            "kpi_check": self.kpi_check, "ledger_check": self.ledger_check,
            "dag_runs": {"count": len(sim.dags.runs),
                         "failed": [r for r in sim.dags.runs if r["state"] != "success"][:20],
                         "seconds": round(sum(r["seconds"] for r in sim.dags.runs), 1),
                         "by_dag": _by_dag(sim.dags.runs)},
            "phase_seconds": {k: round(v, 1) for k, v in sorted(sim.phase_seconds.items())},
            "per_day": {day: {**dict(values), **{f"{name}_p95_s": percentiles(lags)["p95"]
                                                 for (d, name), lags in self.day_lags.items() if d == day}}
                        for day, values in sorted(self.per_day.items())},
            "drift_samples": self.drift_samples,
            "incidents": self.incidents,
        }


def _by_dag(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Runs and seconds per DAG: where the wall time goes."""
    out: dict[str, dict[str, float]] = {}
    for run in runs:
        entry = out.setdefault(run["dag_id"], {"runs": 0, "seconds": 0.0, "skipped": 0})
        if run["state"] == "skipped":
            entry["skipped"] += 1
            continue
        entry["runs"] += 1
        entry["seconds"] = round(entry["seconds"] + run["seconds"], 1)
    return out


def _open_reservations(sim, stock_id: int, sku: str) -> dict[str, float]:
    """Magento's reservations of one SKU in one stock that are still open, per order (read from
    the sandbox's state: measuring, as a merchant would read inventory_reservation)."""
    import json

    net: dict[str, float] = defaultdict(float)
    for row in sim.sandboxes.magento.state.sandbox.inventory.reservations:
        if row["stock_id"] == stock_id and row["sku"] == sku:
            meta = json.loads(row["metadata"]) if isinstance(row["metadata"], str) else row["metadata"]
            net[str(meta.get("object_increment_id"))] += float(row["quantity"])
    return {order: qty for order, qty in net.items() if abs(qty) > 1e-9}
