"""The customer view: the customer marts are built by the orders build and GET /v1/customers/{id}."""

from __future__ import annotations

from decimal import Decimal

from oms.warehouse import connect

from .conftest import auth
from .data import ORDERS


def test_a_customer_by_id_with_orders_value_returns_and_preferred_store(api, aftersale_dsn, aftersale_tokens):
    from .test_store_returns import ret

    store = aftersale_tokens["store"]
    body = ret("POS-CUST-1", [{"sku": "RT-CAP", "qty": 1, "condition": "sellable"}], order="AE000005005")
    assert api.post("/v1/returns", json=body, headers=auth(store)).status_code == 201
    from .helpers import rebuild_marts

    assert rebuild_marts(aftersale_dsn)["dbt_failed"] == 0
    response = api.get("/v1/customers/10001", headers=auth(aftersale_tokens["orders:read"]))
    assert response.status_code == 200, response.text
    customer = response.json()
    totals = {o["increment_id"]: Decimal(str(o["grand_total"])) for o in ORDERS}
    with connect(aftersale_dsn) as conn:
        refunded = conn.execute("SELECT coalesce(sum(l.refund_amount), 0) AS r FROM oms.customer_return r "
                                "JOIN oms.customer_return_line l USING (return_id) "
                                "WHERE r.status = 'received' AND r.refund_due").fetchone()["r"]
    assert customer["customer_key"] == "id:10001" and customer["orders_count"] == len(ORDERS)
    assert Decimal(str(customer["lifetime_value"])) == sum(totals.values()) - refunded
    assert customer["returns_count"] >= 1 and customer["preferred_store"]["store_id"] == "AE-ST-01"
    assert customer["preferred_city"] == "Dubai"
    assert [o["increment_id"] for o in customer["orders"]][:1] and len(customer["orders"]) == len(ORDERS)
    assert api.get("/v1/customers/424242", headers=auth(store)).status_code == 404
    assert api.get("/v1/customers/layla@example.com", headers=auth(store)).status_code == 404  # not a guest
    assert api.get("/v1/customers/not-an-id", headers=auth(store)).status_code == 400
    assert api.get("/v1/customers/10001", headers=auth(aftersale_tokens["stock:read"])).status_code == 403
