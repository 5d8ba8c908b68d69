"""Returns from home (Clickpost reverse pickup), RTO restocks, and exchanges routed store-first."""

from __future__ import annotations

from decimal import Decimal

import pytest

from oms.aftersale import returns, rvp
from oms.integrations.clickpost import ClickpostClient
from oms.routing import profiles
from oms.warehouse import connect

from .conftest import auth
from .test_store_returns import store_atp


def test_a_return_from_home_books_one_reverse_pickup_and_restocks_when_it_arrives(
        api, aftersale_dsn, aftersale_tokens, sandboxes, dagbag, airflow_on_aftersale):
    read = aftersale_tokens["stock:read"]
    before = store_atp(api, read, "RT-CAP")
    body = {"client_return_id": "WEB-RMA-5003", "order_increment_id": "AE000005003", "store_id": "AE-ST-01",
            "lines": [{"sku": "RT-CAP", "qty": 1, "condition": "sellable"}]}
    response = api.post("/v1/returns/pickups", json=body, headers=auth(aftersale_tokens["store"]))
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["kind"] == "home" and created["status"] == "pickup_requested"
    assert created["reverse_pickup"]["reference_number"] == f"OMS-RVP-{created['return_id']}"
    assert store_atp(api, read, "RT-CAP") == before  # still with the customer
    assert dagbag.get_dag("aftersale_magento_sync").test().state == "success"
    with connect(aftersale_dsn) as conn:
        pickup = conn.execute("SELECT * FROM oms.reverse_pickup WHERE return_id = %s",
                              (created["return_id"],)).fetchone()
        assert pickup["waybill"] and pickup["status"] == "booked", pickup["status"]
        # booking again (a lost record): Clickpost answers "already placed" with the same waybill
        conn.execute("UPDATE oms.reverse_pickup SET waybill = NULL, status = 'to_book' WHERE return_id = %s",
                     (created["return_id"],))
    with ClickpostClient(sandboxes.clickpost_url, sandboxes.clickpost_username, sandboxes.clickpost_key) as clickpost:
        assert rvp.book_pickups(aftersale_dsn, clickpost) == {"booked": 1, "refused": 0, "retry": 0}
    with connect(aftersale_dsn) as conn:
        again = conn.execute("SELECT waybill FROM oms.reverse_pickup WHERE return_id = %s",
                             (created["return_id"],)).fetchone()
        assert again["waybill"] == pickup["waybill"]
        # tracked by waybill: in transit changes nothing, delivered (8) receives the return once
        assert rvp.pickup_status(conn, pickup["waybill"], 6, "InTransit") is True
        assert rvp.pickup_status(conn, "NOT-OURS", 8) is False
    assert store_atp(api, read, "RT-CAP") == before
    with connect(aftersale_dsn) as conn:
        rvp.pickup_status(conn, pickup["waybill"], rvp.RVP_DELIVERED, "Delivered")
        rvp.pickup_status(conn, pickup["waybill"], rvp.RVP_DELIVERED, "Delivered")
    assert store_atp(api, read, "RT-CAP") == before + 1
    final = api.get(f"/v1/returns/{created['return_id']}", headers=auth(aftersale_tokens["orders:read"])).json()
    assert final["status"] == "received" and final["order_return_status"] == "returned"
    assert api.get("/v1/returns/999999", headers=auth(aftersale_tokens["orders:read"])).status_code == 404


def test_restock_rto_puts_the_units_back_at_the_origin_once(api, aftersale_dsn, aftersale_tokens):
    read = aftersale_tokens["stock:read"]
    before = store_atp(api, read, "RT-BAG", "AE-ST-02")
    with connect(aftersale_dsn) as conn:
        first = rvp.restock_rto(conn, "AWB-RTO-1", "AE000005004", "AE-ST-02")
    with connect(aftersale_dsn) as conn:
        assert rvp.restock_rto(conn, "AWB-RTO-1", "AE000005004", "AE-ST-02") == first  # status 14 again
        posting = conn.execute("SELECT posting_type, qty, store_id FROM oms.sales_posting WHERE posting_id = %s",
                               (first[0],)).fetchone()
    assert (posting["posting_type"], posting["qty"], posting["store_id"]) == ("return_restock", 2, "AE-ST-02")
    assert store_atp(api, read, "RT-BAG", "AE-ST-02") == before + 2
    with connect(aftersale_dsn) as conn, pytest.raises(returns.ReturnError):
        rvp.restock_rto(conn, "AWB-RTO-2", "AE999", "AE-ST-02")


def test_an_exchange_refunds_nothing_and_routes_the_replacement_to_the_store_first(
        api, aftersale_dsn, aftersale_tokens):
    with connect(aftersale_dsn) as conn:
        profiles.create_version(conn, {
            "country_code": "AE", "name": "Exchanges", "rules": [{
                "name": "click & collect", "filters": {"is_pickup": True}, "sorts": ["stock_depth"],
                "constraints": {"max_shipments_per_order": 2},
                "fallback": ["transfer", "reject"]}]}, "test", activate=True)
    read = aftersale_tokens["stock:read"]
    before = store_atp(api, read, "RT-TEE-M")
    body = {"client_return_id": "POS-AE01-EX1", "order_increment_id": "AE000005002", "store_id": "AE-ST-01",
            "lines": [{"sku": "RT-TEE-S", "qty": 1, "condition": "sellable"}],
            "exchange": [{"sku": "RT-TEE-M", "qty": 1}]}
    response = api.post("/v1/returns", json=body, headers=auth(aftersale_tokens["store"]))
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["refund_due"] is False and created["refund_amount"] == 0
    exchange = created["exchange"]
    assert exchange["exchange_increment_id"] == f"AE000005002-EX{created['return_id']}"
    assert exchange["routing_outcome"] == "allocated"
    with connect(aftersale_dsn) as conn:
        held = conn.execute("SELECT store_id, sku, qty FROM oms.reservation WHERE order_increment_id = %s "
                            "AND status = 'active'", (exchange["exchange_increment_id"],)).fetchall()
        kinds = conn.execute("SELECT kind FROM oms.magento_outbox WHERE dedupe_key LIKE %s",
                             (f"%:return:{created['return_id']}",)).fetchall()
    assert [(h["store_id"], h["sku"], h["qty"]) for h in held] == [("AE-ST-01", "RT-TEE-M", Decimal(1))]
    assert [k["kind"] for k in kinds] == ["comment"]      # no credit memo for an exchange
    assert store_atp(api, read, "RT-TEE-M") == before - 1
    unknown = {**body, "client_return_id": "POS-AE01-EX2", "exchange": [{"sku": "NOPE", "qty": 1}]}
    assert api.post("/v1/returns", json=unknown, headers=auth(aftersale_tokens["store"])).status_code == 422
