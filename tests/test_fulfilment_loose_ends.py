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
from oms.aftersale.magento_sync import send_pending
from oms.erp.landing import land_stock_rows
from oms.fulfilment import tasks
from oms.integrations.clickpost import ClickpostClient, _answer, cancelled
from oms.integrations.magento import MagentoClient
from oms.inventory import movements, order_demand
from oms.inventory.reservations import OrderDemand, sync_order_demand
from oms.magento.landing import land_orders
from oms.routing import profiles
from oms.shipping import shipments as shipping
from oms.tasks import atp_build, order_routing
from oms.validation.erp_stock import validate_window as validate_stock
from oms.validation.magento_orders import validate_window as validate_orders
from oms.warehouse import apply_ddl, connect
from omsdev import demo, demo_data

from .conftest import fresh_database

EXAMPLES = Path(__file__).resolve().parents[1] / "plugins" / "oms" / "routing" / "examples"
AS_OF = datetime(2026, 3, 2, tzinfo=UTC)
DECIDED = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _demands(conn) -> list[OrderDemand]:
    """Every landed order's demand, as the landing computes it (oms.inventory.order_demand)."""
    return order_demand.demands_for(conn, [r["entity_id"] for r in conn.execute(
        "SELECT entity_id FROM raw.magento_order_current")])


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
        built = atp_build.build(dsn, "loose", end)
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
            MagentoClient(settings.magento_url, settings.magento_token, attempts=2))


def _ship(world, only: list[str]) -> shipping.Report:
    clickpost, magento = _clients(world["settings"])
    with connect(world["dsn"]) as conn, clickpost, magento:
        return shipping.run(conn, clickpost, magento, DECIDED, only=only)


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
    with MagentoClient(settings.magento_url, settings.magento_token, attempts=2) as client:
        return send_pending(world["dsn"], client)


def test_rejected_parcel_is_cancelled_at_clickpost_and_the_new_allocation_ships(world):
    dsn = world["dsn"]
    with connect(dsn) as conn:
        ready = {r["increment_id"] for r in conn.execute(shipping.READY_SQL, {"cod": True, "only": None})}
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


def test_erp_reconciliation_finds_each_difference_with_its_cause(world, monkeypatch):
    """The ERP sandbox holds the snapshot the platform built; then, per (store, SKU):
    P1 a shipment the ERP has not processed (posting unacknowledged), P2 a stock change in the ERP
    without a movement, P3 a movement the ERP also shows (no difference), P4 a movement the ERP's
    stock does not show (unexplained). Untouched pairs are not reported."""
    from oms.erp import reconciliation as erp_reconciliation
    from oms.integrations.erp import ErpClient
    from oms.inventory import postings

    dsn, settings, data = world["dsn"], world["settings"], world["data"]
    erp_url = settings.erp_url
    httpx.post(f"{erp_url}/_sandbox/reset", json={}, timeout=30).raise_for_status()
    httpx.post(f"{erp_url}/_sandbox/items", json=data.erp_items(), timeout=60).raise_for_status()
    httpx.post(f"{erp_url}/_sandbox/stock", json=data.stock_rows, timeout=120).raise_for_status()
    with connect(dsn) as conn:
        quiet = conn.execute(
            """SELECT s.store_id, s.sku, s.snapshot_on_hand_qty AS qty FROM marts.fct_atp_store s
               WHERE s.snapshot_on_hand_qty >= 5
                 AND NOT EXISTS (SELECT 1 FROM oms.erp_movement m WHERE m.store_id = s.store_id AND m.sku = s.sku)
                 AND NOT EXISTS (SELECT 1 FROM oms.sales_posting p WHERE p.store_id = s.store_id AND p.sku = s.sku)
                 AND NOT EXISTS (SELECT 1 FROM oms.reservation r WHERE r.store_id = s.store_id AND r.sku = s.sku)
               ORDER BY s.store_id, s.sku LIMIT 4""").fetchall()
        assert len(quiet) == 4
        p1, p2, p3, p4 = ((r["store_id"], r["sku"], r["qty"]) for r in quiet)
        when = AS_OF + timedelta(days=1)
        postings.record_shipped_line(conn, source_ref="RECON-SHIP-1", order_increment_id="RECON-1", line_key="1",
                                     store_id=p1[0], sku=p1[1], qty=2, currency_code="AED", unit_price=10,
                                     row_total_incl_tax=20, occurred_at=when)
        lines = [{"document_id": "RECON-ADJ", "line_no": 1, "movement_type": "adjustment", "store_id": p3[0],
                  "sku": p3[1], "qty": "-1", "posted_at": when.isoformat()},
                 {"document_id": "RECON-ADJ", "line_no": 2, "movement_type": "adjustment", "store_id": p4[0],
                  "sku": p4[1], "qty": "-2", "posted_at": when.isoformat()}]
        assert not movements.record_movements(conn, lines, when)["rejected"]
    erp_row = {(r["locationCode"], r["itemNumber"]): r for r in data.stock_rows}
    changed = [{**erp_row[(p2[0], p2[1])], "inventory": float(p2[2]) + 3, "lastModifiedDateTime": when.isoformat()},
               {**erp_row[(p3[0], p3[1])], "inventory": float(p3[2]) - 1, "lastModifiedDateTime": when.isoformat()}]
    httpx.post(f"{erp_url}/_sandbox/stock", json=changed, timeout=30).raise_for_status()

    monkeypatch.setenv("OMS_POSTING_ACK_STALE_HOURS", "0")   # every unacknowledged posting is stale now
    erp = ErpClient(base_url=erp_url, username=settings.erp_username, password=settings.erp_password,
                    company_id=settings.erp_company_id)
    now = datetime.now(UTC)
    with erp:
        first = erp_reconciliation.run(dsn, erp, now.date(), now, run_id="recon-test")
        again = erp_reconciliation.run(dsn, erp, now.date(), now, run_id="recon-test")
    with connect(dsn) as conn:
        found = {(r["store_id"], r["sku"]): r for r in conn.execute(
            "SELECT * FROM oms.erp_reconciliation WHERE run_date = %s", (now.date(),))}
        untouched = conn.execute(
            """SELECT count(*) AS n FROM oms.erp_reconciliation c WHERE c.run_date = %s
                 AND NOT EXISTS (SELECT 1 FROM oms.erp_movement m WHERE m.store_id = c.store_id AND m.sku = c.sku)
                 AND NOT EXISTS (SELECT 1 FROM oms.sales_posting p WHERE p.store_id = c.store_id AND p.sku = c.sku)""",
            (now.date(),)).fetchone()["n"]
        alerts = conn.execute("SELECT count(*) AS n FROM oms.alert_log WHERE kind = 'condition'"
                              " AND run_id = 'recon-test'").fetchone()["n"]
    one = found[p1[:2]]
    assert (one["cause"], one["diff_qty"], one["erp_qty"], one["unacked_postings"]) == (
        "unacknowledged_posting", 2, p1[2], 1)                       # ERP still counts the 2 shipped units
    assert (found[p2[:2]]["cause"], found[p2[:2]]["diff_qty"]) == ("missing_movement", 3)
    assert p3[:2] not in found                                        # the movement and the ERP agree
    assert (found[p4[:2]]["cause"], found[p4[:2]]["diff_qty"]) == ("unexplained", 2)
    assert untouched == 1                                             # P2 only: nothing else differs
    assert first["differences"] == again["differences"] == len(found)
    assert first["stale_unacked"] >= 1 and first["alert"]["recorded"] and again["alert"].get("duplicate")
    assert alerts == 1

    # the pipeline health shows the differences and the age of the oldest unacknowledged posting
    from api.app import create_app

    with TestClient(create_app(dsn)) as api:
        health = api.get("/v1/pipeline/health").json()
    recon = health["erp_reconciliation"]
    assert recon["last_run_date"] == now.date().isoformat() and recon["differences"] == len(found)
    assert recon["differences_by_cause"]["unacknowledged_posting"] >= 1
    assert recon["oldest_unacknowledged_posting_age_seconds"] >= 0 and recon["postings_stale"]
    assert any("has not acknowledged a sales posting" in r for r in health["reasons"])

    # the KPI mart, built by the KPI branch of dbt
    from oms.tasks import kpi_build

    assert kpi_build.build(dsn)["failed"] == 0
    with connect(dsn) as conn:
        mart = {r["cause"]: r for r in conn.execute(
            "SELECT * FROM marts.fct_erp_reconciliation_daily WHERE run_date = %s", (now.date(),))}
    assert mart["unacknowledged_posting"]["differing_pairs"] >= 1 and mart["missing_movement"]["units_abs_diff"] >= 3
