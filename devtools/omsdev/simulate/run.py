"""A month of trading driven through the real platform, with the simulator as everyone else: the web
shoppers (orders placed in the Magento sandbox when Magento says the stock is salable, pushed to the
platform's order API when it has one, pulled by the ingest DAG either way), the ERP (till sales,
receipts, transfers and counts posted to the platform's movement API — some late, some out of order
—, its own stock book in the ERP sandbox, the platform's sales postings pulled, posted and
acknowledged), the stores (tasks picked, packed or rejected when the unit is not on the shelf,
click & collect handed over), the courier (Clickpost scans: picked up … delivered, a share failed
and returned to origin) and the outages (a sandbox answering 5xx for half a day).

The platform is never written to directly: everything goes through the sandboxes, the API and the
DAGs. The simulator keeps the ground truth (omsdev.simulate.world) and measures the promise
against it (omsdev.simulate.metrics).
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from oms import tokens
from oms.settings import REPO_ROOT, Settings
from oms.warehouse import connect
from omsdev import demo, demo_data
from omsdev.simulate.metrics import Metrics
from omsdev.simulate.stack import Dags, Sandboxes, SimClock
from omsdev.simulate.traffic import Scale, Tick, Traffic, stamp
from omsdev.simulate.world import World

# The DAGs of one tick, in the order the assets would schedule them.
CYCLE = ("magento_orders_ingest", "erp_stock_ingest", "atp_build", "order_routing", "clickpost_shipments",
         "clickpost_tracking", "magento_stock_publish")
STOCK_LINE_TYPES = ("simple", "virtual", "downloadable")
# Courier scans after a parcel is packed: (status code, hours later). A share fails and goes back.
DELIVERED = ((4, 2), (5, 8), (6, 20), (8, 24))
RETURNED_TO_ORIGIN = ((4, 2), (5, 8), (6, 20), (9, 22), (11, 30), (12, 32), (14, 48))
# a failed delivery (NDR: the customer was out) and a second attempt the next day that delivers
DELIVERED_AFTER_NDR = ((4, 2), (5, 8), (6, 20), (9, 22), (6, 44), (8, 46))
RTO_SHARE, NDR_SHARE = 0.04, 0.06
# delivered parcels of which one unit comes back 0–3 days later: (share, how) — in a store for a
# refund, in a store for another size (an exchange), or from home by a Clickpost reverse pickup
RETURN_SHARE = 0.25   # fashion: a quarter of the parcels
RETURN_HOW = (("store", 0.5), ("exchange", 0.2), ("home", 0.3))
DAMAGED_SHARE = 0.2   # returned units not fit to sell again: not restocked, kept off the shelves


class Simulation:
    def __init__(self, settings: Settings, *, days: int, seed: int, scale: str, tick_hours: int = 24,
                 start: datetime | None = None) -> None:
        self.settings, self.days, self.seed, self.tick_hours = settings, days, seed, tick_hours
        self.scale = Scale.named(scale)
        self.start = start or datetime(2026, 10, 1, tzinfo=UTC)
        self.clock = SimClock(self.start)
        self.world = World()
        self.metrics = Metrics(self.world)
        self.rng = random.Random(f"{seed}:actors")
        self.erp_book: dict[tuple[str, str], float] = defaultdict(float)
        self.late_lines: list[dict[str, Any]] = []
        self.documents = iter(range(1, 100_000_000))
        self.placed: dict[str, dict[str, Any]] = {}          # increment_id → order as placed
        self.parcels: dict[str, dict[str, Any]] = {}         # awb → what the simulator knows of it
        self.handled_tasks: set[int] = set()
        # units picked into parcels or handed over whose sale the ERP has not booked yet (it books it
        # when it pulls the platform's sales posting): a count must not "find" them missing
        self.picked_unposted: dict[tuple[str, str], float] = defaultdict(float)
        # units a transfer to a pickup store moved between shelves that the ERP has not booked yet
        # (it books them when it pulls the transfer_out/transfer_in postings): + at the pickup
        # store, − at the source; a count must not "find" them either
        self.transfer_unbooked: dict[tuple[str, str], float] = defaultdict(float)
        # units coming back to a shelf at a moment: (when, store, [(sku, qty)], waybill, rto_back | return_home)
        self.rto_back: list[tuple[datetime, str, list[tuple[str, float]], str, str]] = []
        self._scans: list[tuple[datetime, dict[str, Any]]] = []   # courier scans, sent at their moment
        # returns: planned (when, what), reverse pickups on their way (waybill → return), and
        # units back on a shelf whose return_receipt the ERP has not booked yet (a count must not
        # "find" them, as it must not find units picked and not posted)
        self._returns: list[tuple[datetime, dict[str, Any]]] = []
        self.home_returns: dict[int, dict[str, Any]] = {}     # return_id → what is coming back
        self.returned_unbooked: dict[tuple[str, str], float] = defaultdict(float)
        self.aftersale_rng = random.Random(f"{seed}:aftersale")
        self.returns = defaultdict(int)                          # by outcome, for the report
        # planned for later moments: transfers arriving, payment failures cancelling their orders
        self._arrivals: list[tuple[datetime, dict[str, Any]]] = []
        self._pending_cancels: list[tuple[datetime, dict[str, Any]]] = []
        self._pending_payments: list[tuple[datetime, dict[str, Any]]] = []
        self.settled_postings: set[int] = set()
        self.push_path = True
        self.outages: set[str] = set()       # the systems down during the current tick
        self.erp_posted = False              # movements posted since the last stock publish
        self.orders_changed = False          # orders Magento cancelled or invoiced since the last pull
        self.phase_seconds: dict[str, float] = defaultdict(float)   # wall time per part of a tick
        # idle connections dropped after 1 s: the servers close theirs after 5 s (uvicorn), and a
        # request sent on a connection the server is closing is reset (seen after the longer DAG runs)
        limits = httpx.Limits(keepalive_expiry=1.0)
        self.api = httpx.Client(base_url=settings.api_url, timeout=60, limits=limits)
        self.magento = httpx.Client(base_url=f"{settings.magento_url}/rest/V1", timeout=60, limits=limits,
                                    headers={"Authorization": f"Bearer {settings.magento_token}"})

    # ------------------------------------------------------------------ set-up
    def setup(self, webhook_key: str) -> None:
        self.data = demo_data.generate(skus=self.scale.skus, stores_per_country=self.scale.stores_per_country,
                                       orders=0, seed=self.seed, as_of=self.start)
        self.traffic = Traffic(self.data, self.scale, self.seed, self.start, self.days)
        self.locations = {loc["store_id"]: loc for loc in self.data.locations}
        self.countries = {c["country_code"]: c for c in self.data.countries}
        dsn = self.settings.warehouse_dsn
        demo.load_reference(dsn, self.data)
        demo.ensure_routing_profiles(dsn, list(self.countries))
        with connect(dsn) as conn:
            self.tokens = {
                "erp": tokens.create_token(conn, "simulator-erp", ["erp:write"]),
                "stock": tokens.create_token(conn, "simulator-magento", ["stock:read"]),
                # one store app per location in real life; one token naming every location here
                "store": tokens.create_token(conn, "simulator-stores", ["store"], stores=list(self.locations)),
            }
            try:
                self.tokens["orders"] = tokens.create_token(conn, "simulator-webhook", ["orders:write"])
            except tokens.UnknownScope:
                self.push_path = False
            self.safety = {r["store_id"]: float(r["safety_qty"]) for r in conn.execute(
                "SELECT store_id, safety_qty FROM ref.safety_stock_rule WHERE store_id IS NOT NULL AND sku IS NULL"
            ).fetchall()} if _has_table(conn, "ref", "safety_stock_rule") else {}
        self.sandboxes = Sandboxes(self.settings, self.clock, webhook_key)
        self.sandboxes.start()
        magento_state = self.sandboxes.magento.state.sandbox
        magento_state.inventory.register_sources(self.data.magento_sources())
        magento_state.inventory.register_stocks(self.data.magento_stocks())
        erp_state = self.sandboxes.erp.state.sandbox.state
        erp_state.put_items(self.data.erp_items())
        rows = list(self.data.iter_stock_rows())
        stamp_at = _erp_time(self.start - timedelta(minutes=5))   # inside the first ingest window
        rows = [{**row, "lastModifiedDateTime": stamp_at} for row in rows]
        erp_state.put_stock(rows, mode="replace")
        self.world.open_with(rows)
        for row in rows:
            self.erp_book[(row["locationCode"], row["itemNumber"])] = float(row["inventory"])
        self.dags = Dags(str(REPO_ROOT / "dags"))
        # the first runs set the ingest watermarks at the simulation's start: later runs read from there
        for dag_id in ("magento_orders_ingest", "erp_stock_ingest", "atp_build", "magento_stock_publish"):
            self.dags.run(dag_id, self.start)

    # ------------------------------------------------------------------ the month
    def run(self, progress=None, checkpoint=None) -> dict[str, Any]:
        """The month, tick by tick. `checkpoint` gets the figures so far after each tick (a month
        stopped part-way still leaves what it measured; the month-end checks are empty there)."""
        started = time.perf_counter()
        ticks = self.traffic.ticks(self.tick_hours)
        for number, tick in enumerate(ticks, 1):
            with self.timed("traffic"):
                self.play(self.traffic.fill(tick))
            self.cycle(tick)
            with self.timed("drift sampling"):
                self.metrics.sample_drift(self, tick.end, reconciled=False)
            if progress:
                progress(number, len(ticks), tick)
            if checkpoint:
                checkpoint({**self.metrics.report(self, wall_seconds=time.perf_counter() - started),
                            "ticks_done": number, "ticks": len(ticks)})
        self.recover_all(ticks[-1].end)
        self.metrics.sample_drift(self, ticks[-1].end, reconciled=True)
        self.metrics.finish(self)
        return self.metrics.report(self, wall_seconds=time.perf_counter() - started)

    def play(self, tick: Tick) -> None:
        self.outages = set(tick.outages)
        self._faults(tick.outages)
        self._post_erp(self.late_lines, tick.start)   # yesterday's late ERP postings arrive first
        self.late_lines = []
        hours = [tick.start + timedelta(hours=h) for h in range(1, int((tick.end - tick.start).total_seconds() // 3600))]
        for event in tick.events:
            while hours and hours[0] <= event["at"]:
                self.on_the_hour(hours.pop(0))
            self.due(event["at"])
            self.clock.set(event["at"])
            handler = getattr(self, f"on_{event['kind']}")
            handler(event)
        for hour in hours:
            self.on_the_hour(hour)

    def on_the_hour(self, at: datetime) -> None:
        """Each simulated hour inside a tick: what the scheduler would have run for what happened in
        the hour — the order pull when Magento changed an order by itself (a payment failed or
        completed), the stock publish when the ERP movement API sent its asset event (within
        seconds of a movement in production; here at most an hour later) — then a drift sample."""
        self.due(at)
        self.clock.set(at)
        if self.orders_changed and "magento" not in self.outages:
            # Magento cancelled or invoiced an order this hour: the order pull (every 10 minutes
            # in production) lands the change; a cancelled order's holds are released as it lands
            with self.timed("dag runs"):
                self.dags.run("magento_orders_ingest", at)
            self.orders_changed = False
        if self.erp_posted and "magento" not in self.outages:
            with self.timed("dag runs"):
                self.dags.run("magento_stock_publish", at)
            self.erp_posted = False
        with self.timed("drift sampling"):
            self.metrics.sample_drift(self, at, reconciled=False)

    def cycle(self, tick: Tick) -> None:
        """The tick's DAG runs at its end, then the stores, the courier and the ERP act on what the
        platform asked of them, and the DAGs that follow their answers run again."""
        self.due(tick.end)
        self.clock.set(tick.end)
        with self.timed("dag runs"):
            for dag_id in CYCLE:
                self.dags.run(dag_id, tick.end)
        with self.timed("measuring allocations"):
            self.metrics.check_allocations(self, tick.end)
        with self.timed("stores, courier, ERP"):
            self.act_as_stores(tick.end)
            self.act_as_courier(tick.end)
            self.restock_returned_parcels(tick.end)
            self.act_as_erp(tick.end)
        self._faults(set())
        self.outages = set()
        # aftersale_magento_sync sends the Magento documents the stores' and routing's steps queued
        # (the shipment of a click & collect order at "ready for pickup", cancellations)
        with self.timed("dag runs"):
            # the publish before the outbox: a transfer received at a pickup-only store this tick
            # puts its units in that store's source before Magento is asked to ship them there
            for dag_id in ("clickpost_shipments", "clickpost_tracking", "magento_stock_publish",
                           "aftersale_magento_sync"):
                self.dags.run(dag_id, tick.end)
            if tick.end.hour == 0:   # the daily reconcile of Magento's source items with the platform
                self.dags.run("magento_stock_reconcile", tick.end)
        self.erp_posted = self.orders_changed = False   # the tick's pull and publishes ran after them

    @contextmanager
    def timed(self, phase: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.phase_seconds[phase] += time.perf_counter() - started

    def recover_all(self, end: datetime) -> None:
        """After the last tick: every outage is over; one more cycle catches up what was missed (the
        ingest DAGs read from their last validated window, as `oms backfill` relies on)."""
        self._faults(set())
        self._post_erp(self.late_lines, end)
        self.late_lines = []
        for dag_id in CYCLE:
            self.dags.run(dag_id, end)
        self.metrics.check_allocations(self, end)
        self.act_as_stores(end)
        for dag_id in ("clickpost_shipments", "clickpost_tracking"):
            self.dags.run(dag_id, end)
        self.act_as_courier(end)
        self.send_scans(end + timedelta(days=3))   # every parcel on its way reaches its end
        self.restock_returned_parcels(end + timedelta(days=3))
        self.dags.run("clickpost_tracking", end)
        self.act_as_erp(end)
        for store_id in sorted(self.locations):   # the month-end stock take of every location
            self.on_count({"at": end, "store_id": store_id})
        for dag_id in ("aftersale_magento_sync", "erp_stock_ingest", "atp_build", "magento_stock_publish",
                       "magento_stock_reconcile"):
            self.dags.run(dag_id, end)

    # ------------------------------------------------------------------ shoppers
    def on_web_order(self, event: dict[str, Any]) -> None:
        order = stamp(event["order"], event["at"])
        country = self.countries[event["country"]]
        lines = _stock_lines(order)
        self.metrics.demand(event, lines)
        if order["state"] == "canceled":
            return   # a checkout that failed before Magento placed it: no demand reached the platform
        salable = {sku: self._salable(sku, country["stock_id"]) for sku, _ in lines}
        if any(value is None for value in salable.values()):
            self.metrics.lost_to_outage(event, lines)   # the web store is down: nobody can check out
            return
        refused = [(sku, qty) for sku, qty in lines if salable[sku] < qty]
        if refused:
            self.metrics.refused_by_magento(self, event, order, refused)
            return
        self.sandboxes.magento.state.sandbox.sales.load_orders([order])
        self.placed[order["increment_id"]] = order
        self.metrics.placed(order, event, lines)
        if self.push_path:
            started = time.perf_counter()
            response = self.api.post("/v1/magento/orders", json=order,
                                     headers={"Authorization": f"Bearer {self.tokens['orders']}"})
            if response.status_code == 404:
                self.push_path = False
            else:
                self.metrics.lag("order_landed_to_reserved", time.perf_counter() - started, event["at"])
        if order["state"] == "pending_payment":
            if self.rng.random() < 0.6:   # the payment fails: Magento cancels the order an hour later
                self.traffic_cancel(order, event["at"] + timedelta(hours=1))
            else:                         # the card payment completes: Magento invoices (captures) it
                self._pending_payments.append((event["at"] + timedelta(minutes=20), order))

    def traffic_cancel(self, order: dict[str, Any], at: datetime) -> None:
        self.metrics.cancellations += 1
        self._pending_cancels.append((at, order))

    def _salable(self, sku: str, stock_id: int) -> float | None:
        """Magento's salable quantity as the storefront sees it; None while Magento is down."""
        response = self.magento.get(f"/inventory/get-product-salable-quantity/{sku}/{stock_id}")
        if response.status_code >= 500:
            return None
        return float(response.json()) if response.status_code == 200 else 0.0

    # ------------------------------------------------------------------ the ERP
    def on_till_sale(self, event: dict[str, Any]) -> None:
        key = (event["store_id"], event["sku"])
        if self.world.free(*key) < event["qty"]:
            return   # nothing free on the shelf: the walk-in customer leaves without it
        self.world.change(event["at"], "till_sale", *key, -event["qty"], ref="till")
        line = self._line("sale", event["store_id"], event["sku"], -event["qty"], event["at"])
        if event.get("delay_ticks"):
            self.late_lines.append(line)   # posted late, with its original time
        else:
            self._post_erp([line], event["at"], measure=True)

    def on_receipt(self, event: dict[str, Any]) -> None:
        self.world.change(event["at"], "receipt", event["store_id"], event["sku"], event["qty"], ref="receipt")
        self._post_erp([self._line("receipt", event["store_id"], event["sku"], event["qty"], event["at"])],
                       event["at"])

    def on_transfer(self, event: dict[str, Any]) -> None:
        key = (event["store_id"], event["sku"])
        if self.world.free(*key) < event["qty"]:
            return
        self.world.change(event["at"], "transfer_out", *key, -event["qty"], ref=event["document"])
        arrival = event["at"] + timedelta(hours=20)
        self._post_erp([self._line("transfer_out", event["store_id"], event["sku"], -event["qty"], event["at"])],
                       event["at"])
        self._arrivals.append((arrival, event))

    def on_shrinkage(self, event: dict[str, Any]) -> None:
        key = (event["store_id"], event["sku"])
        if self.world.free(*key) >= event["qty"]:
            self.world.change(event["at"], "shrinkage", *key, -event["qty"], ref="lost")

    def on_count(self, event: dict[str, Any]) -> None:
        """A cycle count of one store: the ERP's book becomes what is on the shelves plus what the store
        has set aside for orders (still there, physically); the difference is posted as adjustments."""
        lines = []
        for (store_id, sku), book in list(self.erp_book.items()):
            if store_id != event["store_id"]:
                continue
            counted = (self.world.on_shelf[(store_id, sku)] + self.picked_unposted[(store_id, sku)]
                       - self.transfer_unbooked[(store_id, sku)] - self.returned_unbooked[(store_id, sku)])
            if abs(counted - book) > 1e-9 and not self._unposted_at(store_id, sku):
                lines.append(self._line("adjustment", store_id, sku, counted - book, event["at"]))
        self.metrics.counts += 1
        if lines:
            self._post_erp(lines, event["at"])

    def _unposted_at(self, store_id: str, sku: str) -> bool:
        return any(line["store_id"] == store_id and line["sku"] == sku for line in self.late_lines)

    def _line(self, kind: str, store_id: str, sku: str, qty: float, at: datetime, **extra: Any) -> dict[str, Any]:
        return {"document_id": f"SIM-{next(self.documents)}", "line_no": 1, "movement_type": kind,
                "store_id": store_id, "sku": sku, "qty": qty, "posted_at": at.isoformat(), **extra}

    def _post_erp(self, lines: list[dict[str, Any]], at: datetime, measure: bool = False) -> None:
        if not lines:
            return
        if len(lines) > 1:
            self.rng.shuffle(lines)     # the ERP's batches are not in posting order
        started = time.perf_counter()
        response = self.api.post("/v1/erp/stock-movements", json={"lines": lines},
                                 headers={"Authorization": f"Bearer {self.tokens['erp']}"})
        self.erp_posted = True   # the API sends the asset event the stock publish is scheduled on
        if response.status_code >= 300:
            self.metrics.incident("erp_post_refused", at, detail=response.text[:300], lines=lines)
        if measure:
            self.metrics.lag("erp_movement_to_api", time.perf_counter() - started, at)
        rows = []
        for line in lines:
            key = (line["store_id"], line["sku"])
            self.erp_book[key] += float(line["qty"])
            rows.append({"itemNumber": line["sku"], "locationCode": line["store_id"], "variantCode": "",
                         "inventory": self.erp_book[key], "unitOfMeasureCode": "PCS",
                         "lastModifiedDateTime": _erp_time(self.clock.now)})
        self.sandboxes.erp.state.sandbox.state.put_stock(rows, mode="upsert")

    def due(self, at: datetime) -> None:
        """What was planned for until `at`, at its own moment: the courier's scans (their webhooks),
        parcels back on a shelf, transfers arriving (posted by the ERP), payments failing (Magento
        cancels the order) or completing (invoiced), customers returning a unit."""
        planned = [(when, "arrival", item) for when, item in self._arrivals if when <= at]
        planned += [(when, "cancel", item) for when, item in self._pending_cancels if when <= at]
        planned += [(when, "pay", item) for when, item in self._pending_payments if when <= at]
        self._arrivals = [a for a in self._arrivals if a[0] > at]
        self._pending_cancels = [c for c in self._pending_cancels if c[0] > at]
        self._pending_payments = [c for c in self._pending_payments if c[0] > at]
        self.send_scans(at)
        self.restock_returned_parcels(at)
        planned += [(when, "return", item) for when, item in self._returns if when <= at]
        self._returns = [r for r in self._returns if r[0] > at]
        for when, kind, item in sorted(planned, key=lambda p: (p[0], p[1])):
            self.clock.set(when)
            if kind == "return":
                self.hand_back(when, item)
            elif kind == "arrival":
                self.world.change(when, "transfer_in", item["to_store_id"], item["sku"], item["qty"],
                                  ref=item["document"])
                self._post_erp([self._line("transfer_in", item["to_store_id"], item["sku"], item["qty"], when)],
                               when)
            elif kind == "pay":
                self.sandboxes.magento.state.sandbox.sales.invoice(int(item["entity_id"]), {"capture": True})
                self.orders_changed = True
            else:
                self.sandboxes.magento.state.sandbox.sales.cancel(int(item["entity_id"]))
                self.orders_changed = True

    def act_as_erp(self, at: datetime) -> None:
        """The platform's sales postings are pulled, posted in the ERP's book (a sale naming the order
        line, so the platform settles its posting) and acknowledged."""
        self.due(at)
        headers = {"Authorization": f"Bearer {self.tokens['erp']}"}
        response = self.api.get("/v1/erp/sales-postings", params={"limit": 1000}, headers=headers)
        if response.status_code != 200:
            return
        items = response.json().get("items", [])
        sale_lines, ack = [], []
        for item in items:
            ack.append(item["posting_id"])
            qty = float(item["qty"])
            if item["posting_type"] in ("shipment", "collection", "sale"):
                key = (item["store_id"], item["sku"])
                self.picked_unposted[key] = max(0.0, self.picked_unposted[key] - qty)
                sale_lines.append(self._line("sale", item["store_id"], item["sku"], -qty, at,
                                             order_increment_id=item["order_increment_id"],
                                             order_line_key=item["line_key"]))
            elif item["posting_type"] in ("return_restock", "return", "return_receipt", "restock"):
                key = (item["store_id"], item["sku"])
                self.returned_unbooked[key] = max(0.0, self.returned_unbooked[key] - qty)
                sale_lines.append(self._line("return_receipt", item["store_id"], item["sku"], qty, at,
                                             order_increment_id=item["order_increment_id"],
                                             order_line_key=item["line_key"]))
            elif item["posting_type"] in ("transfer_out", "transfer_in"):
                # a transfer to a pickup store, booked by the ERP as its own movement naming the line
                sign = -1.0 if item["posting_type"] == "transfer_out" else 1.0
                self.transfer_unbooked[(item["store_id"], item["sku"])] -= sign * qty
                sale_lines.append(self._line(item["posting_type"], item["store_id"], item["sku"], sign * qty, at,
                                             order_increment_id=item["order_increment_id"],
                                             order_line_key=item["line_key"]))
        self._post_erp(sale_lines, at)
        if ack:
            self.api.post("/v1/erp/sales-postings/ack", json={"ids": ack}, headers=headers)
            self.metrics.postings += len(ack)

    # ------------------------------------------------------------------ stores and courier
    def act_as_stores(self, at: datetime) -> None:
        """Every open task, transfers first (their units must reach the pickup counter before the
        hand-over): the store looks on its shelf; what is there leaves it, what is not is rejected."""
        headers = {"Authorization": f"Bearer {self.tokens['store']}"}
        open_tasks = []
        for store_id in sorted(self.locations):
            # accepted: a hand-over accepted earlier whose transfer had not arrived yet
            for status in ("open", "accepted"):
                response = self.api.get(f"/v1/stores/{store_id}/tasks", params={"status": status}, headers=headers)
                if response.status_code == 200:
                    open_tasks += [(store_id, task) for task in response.json().get("tasks", [])
                                   if task["task_id"] not in self.handled_tasks]
        order = {"transfer_to_pickup": 0, "ship": 1, "pickup": 2}
        for store_id, task in sorted(open_tasks, key=lambda st: (order.get(st[1].get("kind"), 3), st[1]["task_id"])):
            if self._handle_task(store_id, task, at, headers):
                self.handled_tasks.add(task["task_id"])

    def _handle_task(self, store_id: str, task: dict[str, Any], at: datetime, headers: dict[str, str]) -> bool:
        """True when the task is done with (packed, handed over or rejected); False when the platform
        does not let it go on yet (a hand-over whose transfer has not arrived): tried again later."""
        kind = task.get("kind")
        lines = [(str(line["sku"]), float(line["qty"])) for line in task.get("lines") or []]
        base = f"/v1/stores/{store_id}/tasks/{task['task_id']}"
        ref = str(task.get("order_increment_id"))
        if kind == "pickup":
            # the counter hands over only what the platform says is ready (units come by transfer)
            if task.get("status") == "open":
                self.api.post(f"{base}/accept", headers=headers)
            if self.api.post(f"{base}/ready", headers=headers).status_code >= 300:
                return False
        missing = [line for line in lines if self.world.on_shelf[(store_id, line[0])] + 1e-9 < line[1]]
        if missing:
            self.api.post(f"{base}/reject", json={"reason": "item_not_found"}, headers=headers)
            self.metrics.rejections += 1
            for sku, _ in missing:
                self.metrics.incident("store_rejection", at, store_id=store_id, sku=sku, order=ref, task_kind=kind,
                                      chain=self.world.chain(store_id, sku, at))
            return True
        for sku, qty in lines:
            key = (store_id, sku)
            self.world.committed[key] = max(0.0, self.world.committed[key] - qty)
            if kind == "transfer_to_pickup":   # to the pickup store's counter, set aside for the customer
                target = task["deliver_to_store_id"]
                self.world.change(at, "transfer_out", store_id, sku, -qty, ref=ref)
                self.world.change(at, "transfer_in", target, sku, qty, ref=ref)
                self.world.committed[(target, sku)] += qty
                self.transfer_unbooked[key] -= qty
                self.transfer_unbooked[(target, sku)] += qty
            else:                              # into the parcel, or into the customer's hands
                self.world.change(at, "pick" if kind == "ship" else "handover", store_id, sku, -qty, ref=ref)
                self.picked_unposted[key] += qty
        if kind == "pickup":
            self.api.post(f"{base}/picked-up", headers=headers)
        else:
            self.api.post(f"{base}/accept", headers=headers)
            self.api.post(f"{base}/pack", headers=headers)
            if kind == "transfer_to_pickup" and not task.get("courier"):
                # no courier lane: the retailer's own van takes it over and the pickup store books
                # it in (a courier's parcel is dispatched and received by its scans instead)
                self.api.post(f"{base}/dispatch", headers=headers)
                self.api.post(f"/v1/stores/{task['deliver_to_store_id']}/tasks/{task['task_id']}/receive",
                              headers=headers)
        return True

    def act_as_courier(self, at: datetime) -> None:
        shipments = self.sandboxes.clickpost.state.sandbox.state if hasattr(
            self.sandboxes.clickpost.state.sandbox, "state") else self.sandboxes.clickpost.state.sandbox
        asks = []
        for shipment in list(getattr(shipments, "shipments", {}).values()) if isinstance(
                getattr(shipments, "shipments", None), dict) else list(getattr(shipments, "shipments", [])):
            awb = str(getattr(shipment, "waybill", None) or shipment.get("waybill"))
            if awb in self.parcels:
                continue
            rto = self.rng.random() < RTO_SHARE
            origin = self._parcel_origin(awb)
            if rto:
                if origin is None or origin[2]:   # a transfer to a pickup store is not returned here
                    rto = False
                else:
                    self.rto_back.append((at + timedelta(hours=48), origin[0], origin[1], awb, "rto_back"))
            ndr = not rto and self.aftersale_rng.random() < NDR_SHARE
            scans = RETURNED_TO_ORIGIN if rto else DELIVERED_AFTER_NDR if ndr else DELIVERED
            self.parcels[awb] = {"rto": rto, "ndr": ndr, "packed_at": at}
            self.metrics.courier[("rto" if rto else "ndr_then_delivered" if ndr else "delivered")] += 1
            self._after_delivery(awb, origin, at + timedelta(hours=scans[-1][1]))
            for code, hours in scans:
                asks.append((hours, {"waybill": awb, "status_code": code,
                                     "timestamp": (at + timedelta(hours=hours)).isoformat()}))
        if asks:
            self._scans += [(at + timedelta(hours=hours), ask) for hours, ask in asks]
            self.metrics.parcels += len({a["waybill"] for _, a in asks})
        self.send_scans(at)

    def send_scans(self, at: datetime) -> None:
        """The courier's scans up to `at`, each at its own moment (its webhook reaches the platform
        then: an RTO or a reverse pickup is restocked when its parcel is back, not before)."""
        due = sorted((s for s in self._scans if s[0] <= at), key=lambda s: (s[0], s[1]["waybill"]))
        self._scans = [s for s in self._scans if s[0] > at]
        if due:
            response = httpx.post(f"{self.settings.clickpost_url}/_sandbox/advance", json=[a for _, a in due],
                                  timeout=600)
            if response.status_code >= 300:
                self.metrics.incident("courier_scan_refused", at, detail=response.text[:300])

    def _parcel_origin(self, awb: str) -> tuple[str, list[tuple[str, float]], bool, str | None] | None:
        """Where a parcel left from, what it holds, whether it is a transfer to a pickup store and its
        order (the platform's shipment row, read to know which shelf the returned units go back to)."""
        with connect(self.settings.warehouse_dsn) as conn:
            row = conn.execute("SELECT store_id, line_items, deliver_to_store_id, order_increment_id"
                               " FROM oms.shipment WHERE awb = %s", (awb,)).fetchone()
        if row is None:
            return None
        lines = [(str(i.get("sku")), float(i.get("quantity") or i.get("qty") or 0)) for i in row["line_items"] or []]
        return (row["store_id"], [line for line in lines if line[1] > 0], row["deliver_to_store_id"] is not None,
                row["order_increment_id"])

    def _after_delivery(self, awb: str, origin, delivered_at: datetime) -> None:
        """A reverse pickup's parcel reaches its store when the courier delivers it; a share of the
        customers' parcels comes back (one unit) a few days after delivery."""
        with connect(self.settings.warehouse_dsn) as conn:
            rvp = conn.execute("SELECT return_id FROM oms.reverse_pickup WHERE waybill = %s", (awb,)).fetchone()
        if rvp is not None and rvp["return_id"] in self.home_returns:
            back = self.home_returns.pop(rvp["return_id"])
            if back["condition"] == "sellable":
                self.rto_back.append((delivered_at, back["store_id"], [(back["sku"], 1.0)], awb, "return_home"))
            self.returns["home_delivered"] += 1
            return
        if origin is None or origin[2] or self.parcels[awb]["rto"] or not origin[1]:
            return
        if self.aftersale_rng.random() >= RETURN_SHARE:
            return
        draw, how = self.aftersale_rng.random(), RETURN_HOW[-1][0]
        for name, share in RETURN_HOW:
            if draw < share:
                how = name
                break
            draw -= share
        sku = origin[1][self.aftersale_rng.randrange(len(origin[1]))][0]
        country = self.locations[origin[0]]["country_code"]
        stores = sorted(s for s, loc in self.locations.items()
                        if loc["country_code"] == country and loc["location_type"] == "store")
        when = delivered_at + timedelta(days=self.aftersale_rng.randrange(4), hours=1 + self.aftersale_rng.randrange(10))
        self._returns.append((when, {
            "how": how, "order": origin[3], "sku": sku, "store_id": stores[self.aftersale_rng.randrange(len(stores))],
            "condition": "damaged" if self.aftersale_rng.random() < DAMAGED_SHARE else "sellable",
            "exchange_sku": self._another_size(sku, country)}))

    def _another_size(self, sku: str, country: str) -> str:
        """The exchange's replacement: a SKU of the same product in another size (the catalogue's
        SKUs are <product>-<colour>-<size>), else the next SKU of the catalogue."""
        skus = sorted(s["sku"] for s in self.data.skus)
        family = [s for s in skus if s.rsplit("-", 1)[0] == sku.rsplit("-", 1)[0] and s != sku]
        pool = family or [s for s in skus if s != sku]
        return pool[self.aftersale_rng.randrange(len(pool))]

    def hand_back(self, at: datetime, item: dict[str, Any]) -> None:
        """The customer returns one unit: in a store (a refund, or an exchange for another size) or
        from home (a reverse pickup the platform books with Clickpost). A sellable unit handed in at
        a store is on its shelf at once; a damaged one is set apart (never on a sellable shelf)."""
        line = {"sku": item["sku"], "qty": 1, "condition": item["condition"]}
        placed = self.placed.get(item["order"]) or {}
        same_sku = [i for i in placed.get("items", [])
                    if i.get("sku") == item["sku"] and i.get("product_type") in STOCK_LINE_TYPES]
        if len(same_sku) > 1:   # two lines of one SKU: the store names the line from the receipt, as the API asks
            line["line_key"] = f"{placed['entity_id']}-{same_sku[0]['item_id']}"
        body = {"client_return_id": f"SIM-RET-{next(self.documents)}", "order_increment_id": item["order"],
                "store_id": item["store_id"], "lines": [line]}
        if item["how"] == "exchange":
            body["exchange"] = [{"sku": item["exchange_sku"], "qty": 1}]
        path = "/v1/returns/pickups" if item["how"] == "home" else "/v1/returns"
        response = self.api.post(path, json=body, headers={"Authorization": f"Bearer {self.tokens['store']}"})
        if response.status_code != 201:
            self.returns[f"refused_{item['how']}"] += 1
            self.metrics.incident("return_refused", at, how=item["how"], order=item["order"], sku=item["sku"],
                                  status=response.status_code, detail=response.text[:300])
            return
        self.returns[item["how"]] += 1
        if item["how"] == "home":
            self.home_returns[int(response.json()["return_id"])] = item
        elif item["condition"] == "sellable":
            self.world.change(at, "return_in_store", item["store_id"], item["sku"], 1.0, ref=item["order"])
            self.returned_unbooked[(item["store_id"], item["sku"])] += 1.0

    def restock_returned_parcels(self, at: datetime) -> None:
        for when, store_id, lines, awb, kind in [r for r in self.rto_back if r[0] <= at]:
            for sku, qty in lines:
                self.world.change(when, kind, store_id, sku, qty, ref=awb)
                self.returned_unbooked[(store_id, sku)] += qty
        self.rto_back = [r for r in self.rto_back if r[0] > at]

    def _faults(self, systems: set[str]) -> None:
        urls = {"magento": self.settings.magento_url, "erp": self.settings.erp_url,
                "clickpost": self.settings.clickpost_url}
        for system, url in urls.items():
            if system in systems:
                httpx.post(f"{url}/_sandbox/faults", json={"error_rate": 1.0}, timeout=10)
                self.metrics.outage_ticks[system] += 1
            else:
                httpx.delete(f"{url}/_sandbox/faults", timeout=10)


def _stock_lines(order: dict[str, Any]) -> list[tuple[str, float]]:
    lines: dict[str, float] = defaultdict(float)
    for item in order["items"]:
        if item.get("product_type") in STOCK_LINE_TYPES and item.get("product_type") == "simple":
            lines[item["sku"]] += float(item["qty_ordered"])
    return sorted(lines.items())


def _erp_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _has_table(conn, schema: str, table: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL AS ok", (f"{schema}.{table}",)).fetchone()["ok"]


def write_result(result: dict[str, Any], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"promise-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2, default=str))
    return path


def write_partial(result: dict[str, Any], path: Path) -> None:
    """The figures so far, replaced after each tick (written aside and renamed: never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".tmp")
    scratch.write_text(json.dumps(result, indent=2, default=str))
    scratch.replace(path)
