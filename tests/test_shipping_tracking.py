"""Tracking: Clickpost webhooks into the API (key checked, stored raw, deduplicated, latest by
timestamp), the updated-order feed as a backstop, and each milestone pushed to Magento once.
Webhooks are the Clickpost sandbox's own payloads (its admin `advance` records courier scans)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from oms.shipping import shipments, tracking
from oms.shipping.config import get_shipping_settings
from oms.tasks.atp_build import build as build_marts
from oms.warehouse import connect

from . import shipping_world as w

STOCK = {("AE-WH-01", "SH-A"): 100, ("AE-WH-01", "SH-C"): 100}
KEY = {"webhook_key": get_shipping_settings().webhook_key}
# Courier scans come after the manifest scan, which the sandbox stamps with the wall clock when a
# test ships: T0 is set at import, so it leaves room for the whole suite to run before this module.
T0 = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)


@pytest.fixture(scope="module")
def world(sandboxes, pg_cluster):
    return w.fresh_world(sandboxes, pg_cluster, "oms_test_tracking")


def shipped(world, entity_id: int) -> dict:
    """A routed, invoiced order shipped through Clickpost and Magento: its shipment row."""
    settings, dsn = world
    order = w.magento_order(entity_id, [("SH-A", 1, 40)])
    w.load_and_land(settings, dsn, [order])
    w.route(dsn, order, STOCK)
    with connect(dsn) as conn, w.clickpost(settings) as cp, w.magento(settings) as mg:
        shipments.run(conn, cp, mg, w.NOW, only=[order["increment_id"]])
        return conn.execute("SELECT * FROM oms.shipment WHERE magento_entity_id = %s", (entity_id,)).fetchone()


def advance(settings, awb: str, scans: list[tuple[int, datetime] | tuple[int, datetime, dict]]) -> list[dict]:
    """Courier scans in the Clickpost sandbox; returns the webhook payloads Clickpost would send."""
    asks = [{"waybill": awb, "status_code": s[0], "timestamp": s[1].isoformat(), **(s[2] if len(s) > 2 else {})}
            for s in scans]
    answer = httpx.post(f"{settings.clickpost_url}/_sandbox/advance", json=asks, timeout=30)
    answer.raise_for_status()
    return answer.json()["events"]


def push(world) -> dict:
    settings, dsn = world
    with connect(dsn) as conn, w.magento(settings) as mg:
        return tracking.push_to_magento(conn, mg)


def comments(settings, entity_id: int) -> list[str]:
    with w.magento(settings) as mg:
        return [c["comment"] for c in mg.comments(entity_id)]


def order_status(settings, entity_id: int) -> str:
    headers = {"Authorization": f"Bearer {settings.magento_token}"}
    return httpx.get(f"{settings.magento_url}/rest/V1/orders/{entity_id}", headers=headers, timeout=30).json()["status"]


def test_webhooks_are_verified_stored_deduplicated_and_reach_magento_once(world):
    settings, dsn = world
    from api.app import create_app

    row = shipped(world, 501)
    events = advance(settings, row["awb"], [
        (4, T0), (5, T0 + timedelta(hours=3)), (6, T0 + timedelta(days=1)),
        (9, T0 + timedelta(days=1, hours=4), {"ndr_status_code": 6}),
        (6, T0 + timedelta(days=2)), (8, T0 + timedelta(days=2, hours=2))])
    with TestClient(create_app(dsn)) as api:
        assert api.post("/v1/webhooks/clickpost", json=events[0]).status_code == 401
        assert api.post("/v1/webhooks/clickpost", json=events[0], headers={"webhook_key": "wrong"}).status_code == 401
        bad = api.post("/v1/webhooks/clickpost", content=b"{not json", headers=KEY)
        assert bad.status_code == 422 and "stored as delivery" in bad.json()["error"]["message"]
        # delivered out of order, one of them twice, with a field Clickpost may add one day
        answers = [api.post("/v1/webhooks/clickpost", json={**e, "brand_new_field": {"x": 1}}, headers=KEY)
                   for e in [events[5], events[2], events[0], events[2], events[3], events[1], events[4]]]
    assert all(a.status_code == 200 for a in answers)
    assert answers[3].json()["new_scans"] == 0                              # the repeated delivery added nothing
    with connect(dsn) as conn:
        raw = conn.execute("SELECT count(*) AS n, count(error) AS bad FROM raw.clickpost_webhook").fetchone()
        assert (raw["n"], raw["bad"]) == (8, 1)                             # every delivery kept, the bad one too
        codes = [r["status_code"] for r in conn.execute(
            "SELECT status_code FROM oms.shipment_event WHERE waybill = %s ORDER BY status_at", (row["awb"],))]
        assert codes == [4, 5, 6, 9, 6, 8]                                  # 6 twice: two delivery attempts
        state = conn.execute("SELECT status_code, status_at FROM oms.shipment WHERE shipment_id = %s",
                             (row["shipment_id"],)).fetchone()
    assert (state["status_code"], state["status_at"]) == (8, T0 + timedelta(days=2, hours=2))   # latest by timestamp

    assert push(world) == {"pushed": 4, "found": 0}     # shipped, out for delivery, failed delivery, delivered
    notes = comments(settings, 501)
    for text in ("Shipped", "Out for delivery", "Delivery attempt failed", "Reason: Address Issue", "Delivered"):
        assert sum(text in c for c in notes) == 1, (text, notes)
    assert order_status(settings, 501) == "delivered"
    assert push(world) == {"pushed": 0, "found": 0}
    # the customer hears of each milestone once per channel, from the platform's outbox (the
    # default setting), so Magento's own e-mail stays off on those comments
    with connect(dsn) as conn:
        queued = conn.execute(
            "SELECT event, channel, payload->>'tracking_url' AS url FROM oms.notification "
            "WHERE order_increment_id = %s ORDER BY event, channel", (row["order_increment_id"],)).fetchall()
    assert [(q["event"], q["channel"]) for q in queued] == [
        ("delivered", "email"), ("delivered", "sms"), ("out_for_delivery", "email"), ("out_for_delivery", "sms"),
        ("shipped", "email"), ("shipped", "sms")]
    assert all(row["awb"] in q["url"] for q in queued)
    with w.magento(settings) as mg:
        assert not any(c.get("is_customer_notified") for c in mg.comments(501))

    # a crash after Magento took the comment and before our ledger update: the re-run finds the marker
    with connect(dsn) as conn:
        conn.execute("UPDATE oms.shipment_magento_push SET state = 'intent', pushed_at = NULL "
                     "WHERE shipment_id = %s AND milestone = 'delivered'", (row["shipment_id"],))
    assert push(world) == {"pushed": 0, "found": 1}
    assert comments(settings, 501) == notes


def test_backstop_feed_catches_missed_webhooks_through_the_same_dedupe(world):
    settings, dsn = world
    from api.app import create_app

    row = shipped(world, 502)
    build_marts(dsn, dag_run_id="rto-test", data_interval_end=w.NOW)   # restocking reads the order lines
    started = datetime.now(UTC) - timedelta(minutes=1)
    events = advance(settings, row["awb"], [(4, T0), (6, T0 + timedelta(days=1)), (8, T0 + timedelta(days=1, hours=3))])
    with connect(dsn) as conn, w.clickpost(settings) as cp:
        # 40 minutes: read in two windows (the feed allows 30 minutes per call)
        counts = tracking.read_feed(conn, cp, started - timedelta(minutes=38), started + timedelta(minutes=2))
        assert counts["bad"] == 0
        codes = [r["status_code"] for r in conn.execute(
            "SELECT status_code FROM oms.shipment_event WHERE waybill = %s AND source = 'feed' ORDER BY status_at",
            (row["awb"],))]
        assert codes == [1, 4, 6, 8]                                          # the manifest scan (1) too
        assert tracking.read_feed(conn, cp, started, started + timedelta(minutes=2))["new_scans"] == 0
        status = conn.execute("SELECT status_code FROM oms.shipment WHERE shipment_id = %s",
                              (row["shipment_id"],)).fetchone()["status_code"]
    assert status == 8
    with TestClient(create_app(dsn)) as api:   # the feed's naive IST times equal the webhooks' UTC ones
        assert [api.post("/v1/webhooks/clickpost", json=e, headers=KEY).json()["new_scans"] for e in events] == [0, 0, 0]
    assert push(world)["pushed"] == 3 and order_status(settings, 502) == "delivered"


@pytest.fixture(scope="module")
def tracked(world):
    """A shipped order's webhooks, never recorded outside the property test's rolled-back transactions."""
    settings, _ = world
    row = shipped(world, 503)
    events = advance(settings, row["awb"], [
        (4, T0), (5, T0 + timedelta(hours=5)), (6, T0 + timedelta(days=1)),
        (9, T0 + timedelta(days=1, hours=2), {"ndr_status_code": 1}), (6, T0 + timedelta(days=2)),
        (9, T0 + timedelta(days=2, hours=1), {"ndr_status_code": 5}), (11, T0 + timedelta(days=3)),
        (21, T0 + timedelta(days=4)), (14, T0 + timedelta(days=6))])
    return row, [json.dumps(e) for e in events]


def final_state(conn, row) -> tuple:
    shipment = conn.execute("SELECT status_code, status_at, status_description FROM oms.shipment "
                            "WHERE shipment_id = %s", (row["shipment_id"],)).fetchone()
    scans = conn.execute("SELECT status_code, status_at, ndr_status_code FROM oms.shipment_event WHERE waybill = %s "
                         "ORDER BY status_at, status_code", (row["awb"],)).fetchall()
    pushes = sorted((p["milestone"], p["status_code"], p["status_at"], p["order_status"])
                    for p in tracking._plan_pushes(conn, get_shipping_settings()))
    return tuple(shipment.values()), tuple(tuple(s.values()) for s in scans), tuple(pushes)


def replay(dsn: str, row: dict, bodies: list[str]) -> tuple:
    with connect(dsn) as conn:
        try:
            for body in bodies:
                tracking.record_delivery(conn, body)
            return final_state(conn, row)
        finally:
            conn.rollback()


@given(data=st.data())
@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_duplicated_and_shuffled_webhooks_leave_the_same_final_state(world, tracked, data):
    _, dsn = world
    row, bodies = tracked
    expected = replay(dsn, row, bodies)
    assert expected[0][0] == 14 and len(expected[2]) == 5        # RTO delivered wins; five milestones to push
    extra = data.draw(st.lists(st.sampled_from(range(len(bodies))), max_size=2 * len(bodies)), label="duplicates")
    order = data.draw(st.permutations(list(range(len(bodies))) + extra), label="delivery order")
    assert replay(dsn, row, [bodies[i] for i in order]) == expected


# Last in the module: its scans and its marts build would change what the tests above see.
def test_rto_delivered_restocks_the_origin_once(world):
    settings, dsn = world
    row = shipped(world, 502)
    build_marts(dsn, dag_run_id="rto-test", data_interval_end=w.NOW)   # restocking reads the order lines
    events = advance(settings, row["awb"], [(4, T0), (9, T0 + timedelta(days=1)), (11, T0 + timedelta(days=2)),
                                            (14, T0 + timedelta(days=4))])
    with connect(dsn) as conn:
        for event in events:
            tracking.record_delivery(conn, json.dumps(event))
        conn.commit()
        before = conn.execute("SELECT count(*) AS n FROM oms.sales_posting WHERE posting_type = 'return_restock'"
                              ).fetchone()["n"]
        assert tracking.settle_returns(conn) == {"rto_restocked": 1, "reverse_pickups_updated": 0}
        conn.commit()
        restocked = conn.execute(
            "SELECT store_id, sku, qty FROM oms.sales_posting WHERE posting_type = 'return_restock' "
            "AND source_ref = %s", (f"rto:{row['awb']}",)).fetchall()
        assert [(r["store_id"], r["sku"], float(r["qty"])) for r in restocked] == [(row["store_id"], "SH-A", 1.0)]
        # the same scan again, or another run: nothing more
        tracking.record_delivery(conn, json.dumps(events[-1]))
        assert tracking.settle_returns(conn) == {"rto_restocked": 0, "reverse_pickups_updated": 0}
        after = conn.execute("SELECT count(*) AS n FROM oms.sales_posting WHERE posting_type = 'return_restock'"
                             ).fetchone()["n"]
    assert after == before + 1
