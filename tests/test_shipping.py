"""Shipping on the real parts: Postgres, the Clickpost and Magento sandboxes over HTTP, the API.

Invoiced orders with routing decisions become Clickpost orders (one per shipped location) and
Magento shipments with the AWB track and the MSI source, each exactly once, also when the run
crashes between any two steps."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from psycopg.types.json import Jsonb

from oms import tokens
from oms.shipping import bodies, shipments
from oms.shipping.config import ShippingSettings
from oms.shipping.faults import CRASH_POINTS, InjectedCrash
from oms.warehouse import apply_ddl, connect
from omsdev.sandbox.clickpost_orders import CreateOrder, validate

from . import shipping_world as w

WH, ST = "AE-WH-01", "AE-ST-01"
# SH-A only at the warehouse, SH-B only at the store: an order of both splits (value above 150).
STOCK = {(WH, "SH-A"): 100, (WH, "SH-C"): 100, (ST, "SH-B"): 100, (ST, "SH-C"): 100}


@pytest.fixture(scope="module")
def world(sandboxes, pg_cluster):
    world = w.fresh_world(sandboxes, pg_cluster, "oms_test_shipping")
    apply_ddl(world[1])  # idempotent
    return world


def ship(world, **kw) -> shipments.Report:
    settings, dsn = world
    with connect(dsn) as conn, w.clickpost(settings) as cp, w.magento(settings) as mg:
        return shipments.run(conn, cp, mg, w.NOW, **kw)


def shipment_rows(dsn: str, increment_id: str) -> list[dict]:
    with connect(dsn) as conn:
        return conn.execute("SELECT * FROM oms.shipment WHERE order_increment_id = %s ORDER BY shipment_no",
                            (increment_id,)).fetchall()


def clickpost_refs(settings, increment_id: str) -> list[str]:
    return sorted(s["reference_number"] for s in w.clickpost_shipments(settings)
                  if s["reference_number"].startswith(increment_id))


def test_invoiced_orders_ship_through_clickpost_and_magento(world):
    settings, dsn = world
    prepaid = w.magento_order(101, [("SH-A", 1, 40)])                                   # one parcel, invoiced
    split_cod = w.magento_order(102, [("SH-A", 1, 100), ("SH-B", 2, 50)], method="cashondelivery", invoiced=False)
    not_invoiced = w.magento_order(103, [("SH-A", 1, 40)], invoiced=False, state="new")
    w.load_and_land(settings, dsn, [prepaid, split_cod, not_invoiced])
    for order in (prepaid, split_cod, not_invoiced):
        assert w.route(dsn, order, STOCK).decision.allocated
    report = ship(world, only=["000000101", "000000102", "000000103"])
    assert (report.planned, report.manifested, report.magento_shipped) == (3, 3, 3)

    [row] = shipment_rows(dsn, "000000101")
    assert (row["state"], row["store_id"], row["api_version"], row["reference_number"]) == (
        "magento_shipped", WH, 4, "000000101-AE-WH-01-1")
    assert row["request"]["shipment_details"]["order_type"] == "PREPAID"
    assert row["request"]["shipment_details"]["courier_partner"] == row["courier_partner_id"]
    assert row["request"]["shipment_details"]["weight"] == 300            # ref.sku weight
    assert row["request"]["pickup_info"]["address"] == w.LOCATIONS[0]["address_line"]
    assert row["request"]["drop_info"]["address"] == "Villa 12, Al Wasl Rd"
    # UAE has no postcodes: Magento's placeholder 00000 is not sent as one (v4 postal_code is optional)
    assert (row["request"]["drop_info"]["postal_code"], row["request"]["pickup_info"]["postal_code"]) == ("", "")
    assert row["courier_name"] and row["awb"] and bytes(row["label_pdf"]).startswith(b"%PDF")
    [magento_shipment] = w.magento_shipments(settings, 101)
    assert magento_shipment["extension_attributes"]["source_code"] == "ae-wh-01"
    assert [(t["track_number"], t["title"], t["carrier_code"]) for t in magento_shipment["tracks"]] == [
        (row["awb"], row["courier_name"], "clickpost")]

    rows = shipment_rows(dsn, "000000102")
    assert [(r["store_id"], r["state"]) for r in rows] == [(WH, "magento_shipped"), (ST, "magento_shipped")]
    cod = [r["request"]["shipment_details"] for r in rows]
    assert [d["order_type"] for d in cod] == ["COD", "COD"]
    # each parcel collects its own lines' value; the first also the shipping: together the grand total
    assert sum(d["cod_value"] for d in cod) == pytest.approx(split_cod["grand_total"])
    sources = sorted(s["extension_attributes"]["source_code"] for s in w.magento_shipments(settings, 102))
    assert sources == ["ae-st-01", "ae-wh-01"]
    assert shipment_rows(dsn, "000000103") == []                                       # not invoiced: waits
    assert clickpost_refs(settings, "000000102") == ["000000102-AE-ST-01-2", "000000102-AE-WH-01-1"]

    again = ship(world, only=["000000101", "000000102", "000000103"])
    assert again.as_dict() == shipments.Report().as_dict()
    assert len(clickpost_refs(settings, "0000001")) == 3 and len(w.magento_shipments(settings, 102)) == 2


def test_label_is_served_as_pdf(world):
    settings, dsn = world
    from api.app import create_app

    [row] = shipment_rows(dsn, "000000101")
    with connect(dsn) as conn:
        token = tokens.create_token(conn, "store", ["orders:read"])
    with TestClient(create_app(dsn)) as api:
        headers = {"Authorization": f"Bearer {token}"}
        answer = api.get(f"/v1/shipments/{row['awb']}/label", headers=headers)
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
        assert answer.content.startswith(b"%PDF") and row["awb"].encode() in answer.content
        assert api.get("/v1/shipments/NOPE123/label", headers=headers).status_code == 404
        assert api.get(f"/v1/shipments/{row['awb']}/label").status_code == 401


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_crash_between_steps_creates_no_duplicates(world, point):
    settings, dsn = world
    entity_id = 200 + CRASH_POINTS.index(point)
    increment_id = f"{entity_id:09d}"
    order = w.magento_order(entity_id, [("SH-A", 1, 100), ("SH-B", 1, 80)])             # splits in two
    w.load_and_land(settings, dsn, [order])
    assert w.route(dsn, order, STOCK).decision.outcome == "split"
    with pytest.raises(InjectedCrash):
        ship(world, only=[increment_id], crash_at=point)
    report = ship(world, only=[increment_id])                                            # the re-run
    rows = shipment_rows(dsn, increment_id)
    assert [r["state"] for r in rows] == ["magento_shipped", "magento_shipped"]
    refs = clickpost_refs(settings, increment_id)
    assert refs == sorted(r["reference_number"] for r in rows)                          # 0 duplicate Clickpost orders
    magento = w.magento_shipments(settings, entity_id)
    assert len(magento) == 2                                                             # 0 duplicate Magento shipments
    assert sorted(t["track_number"] for s in magento for t in s["tracks"]) == sorted(r["awb"] for r in rows)
    if point == "after_clickpost":
        assert report.already_placed == 1          # the re-sent body was answered 323 with the first AWB
    if point == "after_magento_ship":
        assert report.magento_found == 1           # found by its track in GET /V1/shipments, not shipped again


def test_refusals_are_kept_with_the_reason(world):
    settings, dsn = world
    # the sandbox's couriers refuse 000000; sent as is in a v3 body (v4 drops all-zero placeholders)
    order = w.magento_order(301, [("SH-A", 1, 40)], postcode="000000")
    w.load_and_land(settings, dsn, [order])
    w.route(dsn, order, STOCK)
    report = ship(world, only=["000000301"], settings=ShippingSettings(v4_countries=frozenset()))
    [row] = shipment_rows(dsn, "000000301")
    assert (report.not_serviceable, row["state"], row["awb"]) == (1, "failed", None)
    assert "not serviceable" in row["last_error"]
    assert clickpost_refs(settings, "000000301") == []

    nowhere = w.magento_order(302, [("SH-A", 1, 40)])
    nowhere["extension_attributes"] = {}
    del nowhere["billing_address"]
    w.load_and_land(settings, dsn, [nowhere])
    w.route(dsn, nowhere, STOCK)
    assert ship(world, only=["000000302"]).failed == 1
    [row] = shipment_rows(dsn, "000000302")
    assert (row["state"], row["last_error"]) == ("failed", "order 000000302 has no shipping address")
    assert ship(world, only=["000000302"]).failed == 0                                   # kept, not retried
    assert clickpost_refs(settings, "000000302") == []


def test_v3_body_for_countries_outside_the_v4_list_validates_against_clickpost_rules(world):
    settings, dsn = world
    [row] = shipment_rows(dsn, "000000101")
    with connect(dsn) as conn:
        record_key, payload = conn.execute(
            "SELECT record_key, payload FROM raw.magento_order WHERE entity_id = 101").fetchone().values()
        stock_lines = shipments.version_lines(conn, [record_key])[record_key]
    lines = bodies.order_lines("000000101", stock_lines, {1011: 1}, {"SH-A": 300}, ShippingSettings())
    courier = {"cp_id": 4, "account_code": "Aramex Express"}
    location = w.LOCATIONS[0] | {"magento_source_code": "ae-wh-01"}
    for version in (3, 4):
        body = bodies.build_body(payload=payload, location=location, lines=lines, reference="R-1", shipment_value=52,
                                 is_cod=True, version=version, courier=courier, now=w.NOW, settings=ShippingSettings())
        checked = validate(body, version)
        assert isinstance(checked, CreateOrder), checked
        assert (checked.order_type, checked.cod_value, checked.cp_id) == ("COD", 52, 4)
    assert bodies.reference_number("000000101", "ae_st/01", 2) == "000000101-AE-ST/01-2"
    assert bodies.reference_number("1", "a:b", 1) == "1-A-B-1"


def test_planner_reads_the_accepted_version_not_a_quarantined_newer_one(world):
    # A newer version of the order that the gate quarantined (here: no items, state closed) must not be
    # what the shipment is planned from: the previous good version stands (raw.magento_order_current).
    settings, dsn = world
    order = w.magento_order(401, [("SH-A", 1, 40)])
    w.load_and_land(settings, dsn, [order])
    with connect(dsn) as conn:
        good = conn.execute("SELECT * FROM raw.magento_order WHERE entity_id = 401").fetchone()
        broken = {**good["payload"], "state": "closed", "items": "not a list", "updated_at": "2026-10-01 09:00:00"}
        conn.execute(
            "INSERT INTO raw.magento_order (record_key, entity_id, updated_at, increment_id, store_id, channel_code,"
            " payload, batch_id, data_interval_start, data_interval_end)"
            " VALUES ('401@newer', 401, %s + interval '30 minutes', %s, %s, %s, %s, 'b', now(), now())",
            (good["updated_at"], good["increment_id"], good["store_id"], good["channel_code"], Jsonb(broken)))
        conn.execute("INSERT INTO raw.quarantine (source, record_key, batch_id, reason, detail, payload)"
                     " VALUES ('magento_order', '401@newer', 'b', 'malformed_item', 'items is not a list', %s)",
                     (Jsonb(broken),))
    assert w.route(dsn, order, STOCK).decision.allocated
    report = ship(world, only=["000000401"])
    assert (report.planned, report.manifested, report.magento_shipped) == (1, 1, 1)
    [row] = shipment_rows(dsn, "000000401")
    assert [i["sku"] for i in row["line_items"]] == ["SH-A"]
