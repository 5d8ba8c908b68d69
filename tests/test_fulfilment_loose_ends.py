"""Stock that must not leak between routing, stores, Clickpost and Magento, on the real parts:
demo orders landed and built into the marts by the real pipeline code (dbt), the routing run,
store tasks, the shipment ledger against the Clickpost sandbox and the Magento outbox against the
Magento sandbox, over HTTP. Each test counts units before and after.

- a store rejecting a parcel that is already a Clickpost order: the parcel is cancelled at
  Clickpost, the re-routed allocation ships (one live parcel per unit, never two);
- a routing decision `cancelled`: the order's holds go back to ATP and Magento cancels the order;
- click & collect ready for pickup / picked up: Magento ships the order from the pickup source and
  gets the comments;
- a click & collect order whose pickup store has no stock: exception `no_stock_at_pickup_store`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from oms import tokens
from oms.aftersale.magento_sync import MagentoSync, send_pending
from oms.erp.landing import land_stock_rows
from oms.fulfilment import tasks
from oms.inventory import movements
from oms.inventory.reservations import OrderDemand, sync_order_demand
from oms.magento.landing import land_orders
from oms.pipelines import atp, order_routing
from oms.pipelines.order_reservations import DEMAND_SQL, OPEN_STATUSES
from oms.routing import profiles
from oms.shipping import ledger
from oms.shipping.clients import ClickpostClient, MagentoSalesClient, _answer, cancelled
from oms.validation.erp_stock import validate_window as validate_stock
from oms.validation.magento_orders import validate_window as validate_orders
from oms.warehouse import apply_ddl, connect
from omsdev import demo, demo_data

from .conftest import fresh_database

EXAMPLES = Path(__file__).resolve().parents[1] / "plugins" / "oms" / "routing" / "examples"
AS_OF = datetime(2026, 3, 2, tzinfo=UTC)
DECIDED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _demands(conn) -> list[OrderDemand]:
    return [OrderDemand(r["increment_id"], r["line_key"], r["country_code"], r["pickup_store_id"], r["sku"],
                        r["qty_open"], r["is_open"])
            for r in conn.execute(DEMAND_SQL, {"open": list(OPEN_STATUSES)}).fetchall()]


def _on_hand(conn, store: str, sku: str) -> Decimal:
    row = conn.execute("SELECT on_hand_qty FROM oms.atp_store_live(%s) WHERE store_id = %s",
                       ([sku], store)).fetchone()
    return row["on_hand_qty"] if row else Decimal(0)


@pytest.fixture(scope="module")
def world(sandboxes, pg_cluster):
    """Demo data through landing, validation and dbt; the Magento sandbox holding the same orders
    and sources; one click & collect order whose pickup store loses its stock before the demand
    sync (its hold falls short); then one routing run."""
    from oms.transform import profile_env

    dsn = fresh_database(pg_cluster, "oms_test_loose_ends")
    apply_ddl(dsn)
    data = demo_data.generate(skus=24, stores_per_country=3, orders=60, seed=5, as_of=AS_OF)
    demo.load_reference(dsn, data, store_safety=0)
    start, end = AS_OF - timedelta(days=15), AS_OF + timedelta(hours=1)
    with connect(dsn) as conn:
        land_stock_rows(conn, data.stock_rows, "loose/stock", start, end)
        validate_stock(conn, "loose/stock", start, end)
        land_orders(conn, data.orders, "loose/orders", start, end, None)
        validate_orders(conn, "loose/orders", start, end, start, timedelta(minutes=60))
    with pytest.MonkeyPatch.context() as mp:
        for name in profile_env(dsn):
            mp.setenv(name, "")
        built = atp.build(dsn, "loose", end)
    assert built["dbt_passed"] and not built["dbt_failed"]

    magento, clickpost = sandboxes.magento_url, sandboxes.clickpost_url
    for url in (magento, clickpost):
        httpx.post(f"{url}/_sandbox/reset", json={}, timeout=30).raise_for_status()
    httpx.post(f"{clickpost}/_sandbox/webhook-url", json={"url": None, "key": None}, timeout=30)
    httpx.post(f"{magento}/_sandbox/sources", json=data.magento_sources(), timeout=60).raise_for_status()
    httpx.post(f"{magento}/_sandbox/stocks", json=data.magento_stocks(), timeout=60).raise_for_status()
    items = [{"sku": s["sku"], "source_code": src["source_code"], "quantity": 1000, "status": 1}
             for s in data.skus for src in data.magento_sources()]
    httpx.post(f"{magento}/rest/V1/inventory/source-items", json={"sourceItems": items}, timeout=60,
               headers={"Authorization": f"Bearer {sandboxes.magento_token}"}).raise_for_status()
    httpx.post(f"{magento}/_sandbox/orders", json=data.orders, timeout=60).raise_for_status()

    with connect(dsn) as conn:
        # the pickup store of one open click & collect order loses every unit of its SKUs
        starved = conn.execute(
            """SELECT o.increment_id, o.pickup_store_id FROM marts.fct_orders o
               WHERE o.is_click_and_collect AND o.pickup_store_id IS NOT NULL
                 AND o.fulfilment_status = 'ready_to_fulfil'
               ORDER BY o.created_at DESC, o.increment_id LIMIT 1""").fetchone()
        assert starved is not None, "the demo data has no open click & collect order"
        skus = [r["sku"] for r in conn.execute(
            "SELECT DISTINCT sku FROM marts.fct_order_lines WHERE increment_id = %s AND requires_fulfilment",
            (starved["increment_id"],))]
        lines = [{"document_id": "TEST-EMPTY-PICKUP", "line_no": i, "movement_type": "adjustment",
                  "store_id": starved["pickup_store_id"], "sku": sku,
                  "qty": format(-_on_hand(conn, starved["pickup_store_id"], sku), "f"),
                  "posted_at": (AS_OF + timedelta(hours=2)).isoformat()}
                 for i, sku in enumerate(skus) if _on_hand(conn, starved["pickup_store_id"], sku) > 0]
        if lines:
            assert not movements.record_movements(conn, lines, AS_OF + timedelta(hours=2))["rejected"]
        sync_order_demand(conn, _demands(conn))
        for country in ("AE", "QA"):
            doc = json.loads((EXAMPLES / "warehouse_first.json").read_text())
            profiles.create_version(conn, {**doc, "country_code": country}, "test", activate=True)
        holds_before = {r["order_increment_id"]: r["q"] for r in conn.execute(
            "SELECT order_increment_id, sum(qty) AS q FROM oms.reservation WHERE status = 'active' GROUP BY 1")}
    routed = order_routing.route_pending(dsn, DECIDED)
    assert routed["orders"] > 0 and not routed["errors"], routed
    return {"dsn": dsn, "settings": sandboxes, "data": data, "starved": dict(starved), "skus": skus,
            "holds_before": holds_before}


def _clients(settings):
    return (ClickpostClient(settings.clickpost_url, settings.clickpost_username, settings.clickpost_key, attempts=2),
            MagentoSalesClient(settings.magento_url, settings.magento_token, attempts=2))


def _ship(world, only: list[str]) -> ledger.Report:
    clickpost, magento = _clients(world["settings"])
    with connect(world["dsn"]) as conn, clickpost, magento:
        return ledger.run(conn, clickpost, magento, DECIDED, only=only)


def _live_parcel_units(world, increment_id: str) -> dict[str, float]:
    """Units per pickup store in the Clickpost sandbox's parcels of the order that are not cancelled."""
    with connect(world["dsn"]) as conn:
        rows = {r["reference_number"]: r for r in conn.execute(
            "SELECT reference_number, store_id, line_items FROM oms.shipment WHERE order_increment_id = %s",
            (increment_id,))}
    out: dict[str, float] = {}
    for parcel in httpx.get(f"{world['settings'].clickpost_url}/_sandbox/shipments", timeout=30).json():
        row = rows.get(parcel["reference_number"])
        if row is not None and not parcel["cancelled"]:
            out[row["store_id"]] = out.get(row["store_id"], 0.0) + sum(float(i["qty"]) for i in row["line_items"])
    return out


def _magento_order(world, entity_id: int) -> dict:
    settings = world["settings"]
    return httpx.get(f"{settings.magento_url}/rest/V1/orders/{entity_id}", timeout=30,
                     headers={"Authorization": f"Bearer {settings.magento_token}"}).json()


def _send_outbox(world) -> dict:
    settings = world["settings"]
    client = MagentoSync(settings.magento_url, settings.magento_token)
    try:
        return send_pending(world["dsn"], client)
    finally:
        client.close()


def test_rejected_parcel_is_cancelled_at_clickpost_and_the_new_allocation_ships(world):
    dsn = world["dsn"]
    with connect(dsn) as conn:
        ready = {r["increment_id"] for r in conn.execute(ledger.READY_SQL, {"cod": True, "only": None})}
        task = next(t for t in conn.execute(
            "SELECT * FROM oms.fulfilment_task t WHERE kind = 'ship' AND status = 'open' ORDER BY task_id")
            if t["order_increment_id"] in ready and not conn.execute(
                "SELECT 1 FROM oms.fulfilment_task x WHERE x.order_increment_id = %s AND x.task_id <> %s",
                (t["order_increment_id"], t["task_id"])).fetchone())
    order, store = task["order_increment_id"], task["store_id"]
    units = sum(float(x["qty"]) for x in task["lines"])
    first = _ship(world, [order])
    assert first.manifested == 1 and first.magento_shipped == 1
    assert _live_parcel_units(world, order) == {store: units}

    with connect(dsn) as conn:
        rejected = tasks.reject(conn, task["task_id"], "damaged", store_id=store, now=DECIDED)
    assert rejected["rerouted"]["outcome"] in ("allocated", "split"), rejected["rerouted"]
    new_stores = set(rejected["rerouted"]["stores"])
    assert store not in new_stores

    second = _ship(world, [order])
    assert second.cancelled == 1 and second.manifested == len(new_stores)
    # one live parcel per unit, from the new stores only; the old one is cancelled at Clickpost
    live = _live_parcel_units(world, order)
    assert sum(live.values()) == units and set(live) == new_stores
    with connect(dsn) as conn:
        rows = conn.execute("SELECT store_id, state, awb, magento_shipment_id, magento_entity_id, reference_number"
                            " FROM oms.shipment"
                            " WHERE order_increment_id = %s ORDER BY shipment_id", (order,)).fetchall()
    old, new = rows[0], rows[1:]
    assert old["state"] == "cancelled" and old["store_id"] == store
    assert all(r["state"] == "magento_shipped" and r["reference_number"].endswith(
        f"-D{rejected['rerouted']['decision_id']}") for r in new)
    # Magento keeps one shipment for the items; it carries the new AWB as a track
    clickpost, magento = _clients(world["settings"])
    with magento:
        shipments = magento.shipments_of_order(old["magento_entity_id"])
    tracks = {t["track_number"] for s in shipments for t in s.get("tracks") or []}
    assert {r["awb"] for r in new} <= tracks and len(shipments) == 1

    third = _ship(world, [order])                                  # nothing left to do: nothing happens
    assert (third.cancelled, third.planned, third.manifested, third.magento_shipped) == (0, 0, 0, 0)
    assert _live_parcel_units(world, order) == live


def test_clickpost_documented_cancel_error_counts_as_already_cancelled():
    from .test_sandboxes import fixture_text

    sample = fixture_text("clickpost_cancel_order_error_response.invalid-json.txt")
    answer = _answer(httpx.Response(400, content=sample.encode()))
    assert answer.status == 400 and cancelled(answer)               # "already in a deleted state"
    refused = _answer(httpx.Response(200, json={"meta": {"status": 350, "message": "picked up", "success": False}}))
    assert not cancelled(refused)


def test_cancelled_decision_releases_the_stock_and_cancels_in_magento(world):
    dsn = world["dsn"]
    with connect(dsn) as conn:
        cancelled_orders = [r["order_increment_id"] for r in conn.execute(
            "SELECT order_increment_id FROM oms.routing_decision WHERE outcome = 'cancelled' ORDER BY 1")]
        assert cancelled_orders, "the demo data has no order past cancel_after_days"
        order = next(o for o in cancelled_orders if world["holds_before"].get(o, 0) > 0)
        held_after = conn.execute("SELECT coalesce(sum(qty), 0) AS q FROM oms.reservation WHERE status = 'active'"
                                  " AND order_increment_id = %s", (order,)).fetchone()["q"]
        released = conn.execute("SELECT count(*) AS n FROM oms.reservation WHERE order_increment_id = %s"
                                " AND reason = 'routing_cancelled'", (order,)).fetchone()["n"]
        # the next demand sync (Magento still shows it open) does not hold it again
        sync_order_demand(conn, _demands(conn))
        held_after_sync = conn.execute("SELECT coalesce(sum(qty), 0) AS q FROM oms.reservation"
                                       " WHERE status = 'active' AND order_increment_id = %s", (order,)).fetchone()["q"]
        entity_id = conn.execute("SELECT entity_id FROM raw.magento_order WHERE increment_id = %s LIMIT 1",
                                 (order,)).fetchone()["entity_id"]
    assert world["holds_before"][order] > 0 and held_after == 0 and released > 0 and held_after_sync == 0

    before = _magento_order(world, entity_id)
    assert before["state"] != "canceled"
    sent = _send_outbox(world)
    with connect(dsn) as conn:
        outbox = {r["kind"]: r for r in conn.execute(
            "SELECT kind, status, last_error FROM oms.magento_outbox WHERE dedupe_key LIKE %s",
            (f"%routing%{order}",))}
    assert set(outbox) == {"comment", "cancel"} and outbox["comment"]["status"] == "done"
    after = _magento_order(world, entity_id)
    if before.get("total_invoiced") and float(before["total_invoiced"]) >= float(before["grand_total"]):
        # Magento cannot cancel an order invoiced in full: the row says so, for people to refund
        assert outbox["cancel"]["status"] == "failed" and "cannot be cancelled" in outbox["cancel"]["last_error"]
    else:
        assert outbox["cancel"]["status"] == "done" and after["state"] == "canceled"
    assert any("[OMS routing cancel]" in (h.get("comment") or "") for h in after.get("status_histories") or [])
    assert _send_outbox(world) == {"done": 0, "found": 0, "failed": 0, "retry": 0}   # each once
    assert sent["done"] >= 1


def test_click_and_collect_ready_and_picked_up_reach_magento(world):
    dsn = world["dsn"]
    with connect(dsn) as conn:
        task = conn.execute(
            "SELECT * FROM oms.fulfilment_task t WHERE kind = 'pickup' AND status = 'open'"
            " AND NOT EXISTS (SELECT 1 FROM oms.fulfilment_task x WHERE x.decision_id = t.decision_id"
            "                 AND x.kind = 'transfer_to_pickup') ORDER BY task_id LIMIT 1").fetchone()
        entity_id = conn.execute("SELECT entity_id FROM raw.magento_order WHERE increment_id = %s LIMIT 1",
                                 (task["order_increment_id"],)).fetchone()["entity_id"]
        source = conn.execute("SELECT magento_source_code FROM ref.location WHERE store_id = %s",
                              (task["store_id"],)).fetchone()["magento_source_code"]
    units = sum(float(x["qty"]) for x in task["lines"])

    def shipments() -> list[dict]:
        clickpost, magento = _clients(world["settings"])
        with clickpost, magento:
            return magento.shipments_of_order(entity_id)

    assert shipments() == []
    with connect(dsn) as conn:
        tasks.ready_for_pickup(conn, task["task_id"], now=DECIDED)
    _send_outbox(world)
    [shipment] = shipments()
    assert shipment["extension_attributes"]["source_code"] == source
    assert float(shipment["total_qty"]) == units                  # every unit of the order, from the pickup store
    assert any(tasks.pickup_marker(task["task_id"], "ready") in c["comment"] for c in shipment["comments"])
    assert _magento_order(world, entity_id)["state"] in ("processing", "complete")

    with connect(dsn) as conn:
        tasks.picked_up(conn, task["task_id"], now=DECIDED + timedelta(hours=3))
    _send_outbox(world)
    _send_outbox(world)
    assert len(shipments()) == 1                                    # shipped once
    comments = [h.get("comment") or "" for h in _magento_order(world, entity_id).get("status_histories") or []]
    assert sum(tasks.pickup_marker(task["task_id"], "picked_up") in c for c in comments) == 1


def test_no_stock_at_the_pickup_store_is_an_order_exception(world):
    dsn, starved = world["dsn"], world["starved"]
    with connect(dsn) as conn:
        for sku in world["skus"]:
            assert _on_hand(conn, starved["pickup_store_id"], sku) == 0
        decision = conn.execute("SELECT outcome FROM oms.routing_decision WHERE order_increment_id = %s"
                                " ORDER BY decision_id DESC LIMIT 1", (starved["increment_id"],)).fetchone()
        token = tokens.create_token(conn, "ops", ["orders:read"])
        others = conn.execute("SELECT count(*) AS n FROM oms.order_exception WHERE reason = 'no_stock_at_pickup_store'"
                              " AND increment_id <> %s AND resolved_at IS NULL",
                              (starved["increment_id"],)).fetchone()["n"]
    assert decision["outcome"] != "allocated"          # not from the pickup store: transfer, alternatives or waits
    from api.app import create_app

    with TestClient(create_app(dsn)) as api:
        answer = api.get("/v1/exceptions", headers={"Authorization": f"Bearer {token}"},
                         params={"reason": "no_stock_at_pickup_store"})
    assert answer.status_code == 200, answer.text
    items = [i for i in answer.json()["items"] if i["increment_id"] == starved["increment_id"]]
    assert len(items) == 1 and starved["pickup_store_id"] in items[0]["detail"]
    assert len(answer.json()["items"]) == others + 1
