"""Contract tests for the Magento, Clickpost and ERP sandboxes and the demo data generator.

The payload samples in ``tests/fixtures`` (the vendors' documented samples rewritten with values of
our own: same shapes, field names, types, quirks and error codes) are the reference: the sandboxes must
accept the sample requests and answer in the sample response shapes.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient

from omsdev import demo_data
from omsdev.sandbox import clickpost, erp, magento
from omsdev.sandbox.server import resolve_credentials

from .net import free_port

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
TOKEN = "magento-test-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
CP_AUTH = {"username": "oms", "key": "cp-key"}
ERP_AUTH = ("oms", "erp-pass")
AS_OF = datetime(2026, 1, 2, tzinfo=UTC)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def sources_of(body: dict[str, Any]) -> list[dict[str, str]]:
    """The Magento sources a source-items sample names, to register before saving it."""
    return [{"source_code": code} for code in dict.fromkeys(i["source_code"] for i in body["sourceItems"])]


def criteria(
    *groups: list[tuple[str, Any, str]],
    sort: list[tuple[str, str]] = (),
    page_size: int | None = None,
    page: int | None = None,
    camel: bool = False,
) -> dict[str, str]:
    """Build Magento's bracketed query string the way a PHP-style client sends it."""
    fg, ct, so = (
        ("filterGroups", "conditionType", "sortOrders")
        if camel
        else ("filter_groups", "condition_type", "sortOrders")
    )
    params: dict[str, str] = {}
    for g, filters in enumerate(groups):
        for f, (field, value, condition) in enumerate(filters):
            base = f"searchCriteria[{fg}][{g}][filters][{f}]"
            params[f"{base}[field]"] = field
            params[f"{base}[value]"] = str(value)
            params[f"{base}[{ct}]"] = condition
    for i, (field, direction) in enumerate(sort):
        params[f"searchCriteria[{so}][{i}][field]"] = field
        params[f"searchCriteria[{so}][{i}][direction]"] = direction
    if page_size is not None:
        params["searchCriteria[pageSize]"] = str(page_size)
    if page is not None:
        params["searchCriteria[currentPage]"] = str(page)
    return params or {"searchCriteria": ""}


class FrozenClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


def simple_order(
    entity_id: int,
    sku: str,
    qty: float = 1,
    *,
    state: str = "processing",
    stock_id: int | None = None,
    updated_at: str = "2026-01-01 10:00:00",
    **extra: Any,
) -> dict[str, Any]:
    order = {
        "entity_id": entity_id,
        "increment_id": f"T{entity_id:09d}",
        "state": state,
        "status": state,
        "created_at": "2026-01-01 09:00:00",
        "updated_at": updated_at,
        "customer_email": "t@example.com",
        "grand_total": 100.0 * qty,
        "base_grand_total": 100.0 * qty,
        "subtotal": 100.0 * qty,
        "payment": {"method": "checkmo"},
        "items": [
            {
                "item_id": entity_id * 10,
                "sku": sku,
                "name": sku,
                "product_type": "simple",
                "qty_ordered": qty,
                "price": 100.0,
                "row_total": 100.0 * qty,
            }
        ],
        **extra,
    }
    if stock_id is not None:
        order["extension_attributes"] = {"shipping_assignments": [{"stock_id": stock_id}]}
    return order


@pytest.fixture(scope="module")
def demo() -> demo_data.DemoData:
    return demo_data.generate(skus=60, stores_per_country=3, orders=40, seed=11, as_of=AS_OF)


@pytest.fixture
def mage() -> TestClient:
    return TestClient(magento.create_app(TOKEN))


# --- Magento: auth, routing ---------------------------------------------------------------------------


def test_magento_rejects_missing_or_wrong_token(mage: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"}):
        response = mage.get("/rest/V1/orders", params={"searchCriteria": ""}, headers=headers)
        assert response.status_code == 401
        assert response.json() == {
            "message": "The consumer isn't authorized to access %resources.",
            "parameters": {"resources": "Magento_Sales::actions_view"},
        }
    denied = mage.post("/rest/V1/inventory/source-items", json={"sourceItems": []})
    assert denied.json()["parameters"] == {"resources": "Magento_InventoryApi::source"}


def test_magento_store_code_segment_unknown_route_and_missing_entity(mage: TestClient) -> None:
    mage.post("/_sandbox/orders", json=simple_order(7, "SKU-A"))
    for path in ("/rest/V1/orders/7", "/rest/ae/V1/orders/7", "/rest/all/V1/orders/7"):
        assert mage.get(path, headers=BEARER).json()["increment_id"] == "T000000007"
    assert mage.get("/rest/V1/orders/8", headers=BEARER).json() == {
        "message": "The entity that was requested doesn't exist. Verify the entity and try again."
    }
    miss = mage.get("/rest/V1/no-such-thing", headers=BEARER)
    assert miss.status_code == 404 and miss.json()["message"] == "Request does not match any route."
    assert mage.get("/rest/V1/orders", headers=BEARER).json()["parameters"] == {"fieldName": "searchCriteria"}
    # the log keeps the path as the platform sent it
    assert [e["path"] for e in mage.get("/_sandbox/requests", params={"path_prefix": "/rest/ae"}).json()] == [
        "/rest/ae/V1/orders/7"
    ]


# --- Magento: searchCriteria ----------------------------------------------------------------------------


@pytest.fixture
def mage_orders(mage: TestClient) -> TestClient:
    orders = [
        simple_order(
            i,
            f"SKU-{i % 3}",
            updated_at=f"2026-01-01 10:{i:02d}:00",
            status="processing" if i % 4 else "pending",
            customer_email=f"c{i}@example.com",
        )
        for i in range(1, 26)
    ]
    orders[4]["customer_email"] = None  # a NULL column
    assert mage.post("/_sandbox/orders", json=orders).status_code == 200
    return mage


def test_search_filters_sort_and_total_count(mage_orders: TestClient) -> None:
    def search(params: dict[str, str]) -> dict[str, Any]:
        response = mage_orders.get("/rest/V1/orders", params=params, headers=BEARER)
        assert response.status_code == 200, response.text
        return response.json()

    window = search(
        criteria(
            [("updated_at", "2026-01-01 10:05:00", "gteq")],
            [("updated_at", "2026-01-01 10:10:00", "lt")],
            sort=[("updated_at", "DESC")],
        )
    )
    assert [o["entity_id"] for o in window["items"]] == [9, 8, 7, 6, 5]
    assert window["total_count"] == 5
    assert window["search_criteria"]["filter_groups"][0]["filters"][0] == {
        "field": "updated_at",
        "value": "2026-01-01 10:05:00",
        "condition_type": "gteq",
    }
    # filters in one group are OR-ed; camelCase keys are accepted too
    either = search(criteria([("entity_id", 3, "eq"), ("entity_id", 20, "eq")], camel=True))
    assert [o["entity_id"] for o in either["items"]] == [3, 20]
    assert search(criteria([("status", "PENDING", "eq")]))["total_count"] == 6  # case-insensitive like MySQL
    assert search(criteria([("entity_id", "2,4,6", "in")]))["total_count"] == 3
    assert search(criteria([("increment_id", "T00000001%", "like")]))["total_count"] == 10
    # NULL only matches null; neq never matches NULL (SQL semantics)
    assert [o["entity_id"] for o in search(criteria([("customer_email", "", "null")]))["items"]] == [5]
    assert search(criteria([("customer_email", "c1@example.com", "neq")]))["total_count"] == 23
    partial = search(
        {**criteria([("entity_id", 3, "eq")]), "fields": "items[increment_id,entity_id],total_count"}
    )
    assert partial == {"items": [{"increment_id": "T000000003", "entity_id": 3}], "total_count": 1}


def test_paging_repeats_last_page_past_the_end(mage_orders: TestClient) -> None:
    def page(n: int) -> dict[str, Any]:
        params = criteria(sort=[("entity_id", "ASC")], page_size=10, page=n)
        return mage_orders.get("/rest/V1/orders", params=params, headers=BEARER).json()

    pages = [page(n) for n in (1, 2, 3, 4, 9)]
    assert [len(p["items"]) for p in pages] == [10, 10, 5, 5, 5]
    assert all(p["total_count"] == 25 for p in pages)
    assert pages[3]["items"] == pages[2]["items"] == pages[4]["items"]  # Magento's quirk
    assert pages[3]["search_criteria"]["current_page"] == 4

    fixed = TestClient(magento.create_app(TOKEN, repeat_last_page=False))
    fixed.post("/_sandbox/orders", json=[simple_order(i, "SKU") for i in range(1, 4)])
    beyond = fixed.get("/rest/V1/orders", params=criteria(page_size=2, page=3), headers=BEARER).json()
    assert beyond["items"] == [] and beyond["total_count"] == 3


def test_input_limiting_page_size_and_list_limits() -> None:
    limited = TestClient(magento.create_app(TOKEN, input_limiting=True))
    limited.post("/_sandbox/orders", json=[simple_order(i, "SKU") for i in range(1, 26)])
    default_page = limited.get("/rest/V1/orders", params=criteria(), headers=BEARER).json()
    assert len(default_page["items"]) == 20 and default_page["total_count"] == 25
    too_big = limited.get("/rest/V1/orders", params=criteria(page_size=301), headers=BEARER)
    assert too_big.status_code == 400
    assert too_big.json() == {
        "message": "Maximum SearchCriteria pageSize is %max",
        "parameters": {"max": 300},
    }
    limited.post("/_sandbox/sources", json=[{"source_code": "s1"}])
    items = [{"sku": f"S{i}", "source_code": "s1", "quantity": 1, "status": 1} for i in range(21)]
    refused = limited.post("/rest/V1/inventory/source-items", json={"sourceItems": items}, headers=BEARER)
    assert refused.status_code == 400 and refused.json()["parameters"]["max"] == 20
    accepted = limited.post(
        "/rest/async/bulk/V1/inventory/source-items", json=[{"sourceItems": items}], headers=BEARER
    )
    assert accepted.status_code == 202


# --- Magento: MSI ----------------------------------------------------------------------------------------


def test_fixture_source_items_saved_and_read_back(mage: TestClient) -> None:
    body = fixture("magento_source_items_save_request.json")
    mage.post("/_sandbox/sources", json=sources_of(body))
    saved = mage.post("/rest/V1/inventory/source-items", json=body, headers=BEARER)
    assert saved.status_code == 200 and saved.json() == []
    expected = fixture("magento_source_items_search_response.json")
    sku = expected["items"][0]["sku"]
    found = mage.get("/rest/V1/inventory/source-items", params=criteria([("sku", sku, "eq")]), headers=BEARER)
    assert found.json() == expected


def test_source_item_validation(mage: TestClient) -> None:
    mage.post("/_sandbox/sources", json=[{"source_code": "central"}])
    missing = mage.post(
        "/rest/V1/inventory/source-items",
        headers=BEARER,
        json={"sourceItems": [{"sku": "", "source_code": "central", "quantity": 1, "status": 1}]},
    )
    assert missing.status_code == 400
    assert missing.json() == {
        "message": "Validation Failed",
        "errors": [{"message": '"%field" can not be empty.', "parameters": {"field": "sku"}}],
    }
    unknown = mage.post(
        "/rest/V1/inventory/source-items",
        headers=BEARER,
        json={"sourceItems": [{"sku": "A", "source_code": "nowhere", "quantity": 1, "status": 1}]},
    )
    assert unknown.status_code == 400 and unknown.json() == {"message": "Could not save Source Item"}
    assert mage.get("/_sandbox/source-items").json() == []  # all or nothing
    mage.post(
        "/rest/V1/inventory/source-items",
        headers=BEARER,
        json={"sourceItems": [{"sku": "A", "source_code": "central", "quantity": 4, "status": 1}]},
    )
    deleted = mage.post(
        "/rest/V1/inventory/source-items-delete",
        headers=BEARER,
        json={"sourceItems": [{"sku": "A", "source_code": "central"}]},
    )
    assert deleted.status_code == 200 and mage.get("/_sandbox/source-items").json() == []


@pytest.fixture
def msi(mage: TestClient) -> TestClient:
    """Magento's own functional-test setup (InventoryApi/Test/_files): stock 10 links eu-1, eu-2,
    eu-3 and the disabled eu-disabled; stock 20 links us-1."""
    mage.post(
        "/_sandbox/sources",
        json=[
            {"source_code": "eu-1"},
            {"source_code": "eu-2"},
            {"source_code": "eu-3"},
            {"source_code": "eu-disabled", "enabled": False},
            {"source_code": "us-1"},
        ],
    )
    mage.post(
        "/_sandbox/stocks",
        json=[
            {
                "stock_id": 10,
                "name": "EU-stock",
                "website_code": "eu_website",
                "source_codes": ["eu-1", "eu-2", "eu-3", "eu-disabled"],
            },
            {"stock_id": 20, "name": "US-stock", "website_code": "us_website", "source_codes": ["us-1"]},
        ],
    )
    response = mage.post(
        "/rest/V1/inventory/source-items",
        headers=BEARER,
        json={
            "sourceItems": [
                {"sku": "SKU-1", "source_code": "eu-1", "quantity": 5.5, "status": 1},
                {"sku": "SKU-1", "source_code": "eu-2", "quantity": 3, "status": 1},
                {"sku": "SKU-1", "source_code": "eu-3", "quantity": 10, "status": 0},
                {"sku": "SKU-1", "source_code": "eu-disabled", "quantity": 10, "status": 1},
                {"sku": "SKU-2", "source_code": "us-1", "quantity": 5, "status": 1},
            ]
        },
    )
    assert response.status_code == 200
    return mage


def salable(client: TestClient, sku: str, stock_id: int) -> Any:
    return client.get(
        f"/rest/V1/inventory/get-product-salable-quantity/{sku}/{stock_id}", headers=BEARER
    ).json()


def test_salable_quantity_reproduces_magento_worked_example(msi: TestClient) -> None:
    assert salable(msi, "SKU-1", 10) == 8.5
    assert salable(msi, "SKU-1", 20) == 0
    assert salable(msi, "SKU-2", 20) == 5
    flags = msi.get(
        "/rest/V1/inventory/are-products-salable",
        headers=BEARER,
        params={"skus[0]": "SKU-1", "skus[1]": "SKU-2", "stockId": "20"},
    ).json()
    assert flags == [
        {"sku": "SKU-1", "stock_id": 20, "salable": False},
        {"sku": "SKU-2", "stock_id": 20, "salable": True},
    ]
    assert msi.get("/rest/V1/inventory/stock-resolver/website/eu_website", headers=BEARER).json() == {
        "stock_id": 10,
        "name": "EU-stock",
        "extension_attributes": {"sales_channels": [{"type": "website", "code": "eu_website"}]},
    }


def test_reservations_follow_order_lifecycle(msi: TestClient) -> None:
    msi.post(
        "/_sandbox/orders",
        json=[
            simple_order(1, "SKU-1", 2, stock_id=10),
            simple_order(2, "SKU-1", 1, state="new", stock_id=10),
            simple_order(3, "SKU-1", 4, state="canceled", stock_id=10),
        ],
    )
    assert salable(msi, "SKU-1", 10) == 5.5  # 8.5 − 2 − 1; the canceled order reserves nothing
    shipped = msi.post(
        "/rest/V1/order/1/ship",
        headers=BEARER,
        json={
            "items": [{"order_item_id": 10, "qty": 2}],
            "tracks": [{"track_number": "AWB1", "title": "Aramex", "carrier_code": "clickpost"}],
            "arguments": {"extension_attributes": {"source_code": "eu-1"}},
        },
    )
    assert shipped.status_code == 200 and isinstance(shipped.json(), int)
    assert salable(msi, "SKU-1", 10) == 5.5  # physical −2 at eu-1, reservation +2: net unchanged
    eu1 = msi.get(
        "/rest/V1/inventory/source-items",
        headers=BEARER,
        params=criteria([("sku", "SKU-1", "eq")], [("source_code", "eu-1", "eq")]),
    ).json()
    assert eu1["items"][0]["quantity"] == 3.5
    assert msi.post("/rest/V1/orders/2/cancel", headers=BEARER).json() is True
    assert salable(msi, "SKU-1", 10) == 6.5
    assert msi.post("/rest/V1/orders/2/cancel", headers=BEARER).json() is False
    events = [json.loads(r["metadata"])["event_type"] for r in msi.get("/_sandbox/reservations").json()]
    assert events == ["order_placed", "order_placed", "shipment_created", "order_canceled"]


def test_async_bulk_source_items_apply_after_delay(mage: TestClient) -> None:
    slow = TestClient(magento.create_app(TOKEN, bulk_delay_seconds=3600))
    sample = fixture("magento_source_items_save_request.json")
    for client in (slow, mage):
        client.post("/_sandbox/sources", json=sources_of(sample))
    body = [
        sample,
        {"sourceItems": [{"sku": "", "source_code": sources_of(sample)[-1]["source_code"], "quantity": 1, "status": 1}]},
    ]
    accepted = slow.post("/rest/all/async/bulk/V1/inventory/source-items", json=body, headers=BEARER)
    assert accepted.status_code == 202
    answer = accepted.json()
    assert set(answer) == set(fixture("magento_async_bulk_response.json"))
    assert [i["status"] for i in answer["request_items"]] == ["accepted", "accepted"] and answer[
        "errors"
    ] is False
    status = slow.get(f"/rest/V1/bulk/{answer['bulk_uuid']}/status", headers=BEARER).json()
    assert set(status) == set(fixture("magento_bulk_status_response.json"))
    assert [op["status"] for op in status["operations_list"]] == [4, 4]  # open: the consumer has not run
    assert slow.get("/_sandbox/source-items").json() == []

    done = mage.post("/rest/async/bulk/V1/inventory/source-items", json=body, headers=BEARER).json()
    time.sleep(0.25)  # default delay 0.2 s
    ops = mage.get(f"/rest/V1/bulk/{done['bulk_uuid']}/status", headers=BEARER).json()["operations_list"]
    assert [op["status"] for op in ops] == [1, 3]  # complete, not retriably failed
    assert len(mage.get("/_sandbox/source-items").json()) == 4


# --- Magento: fulfilment ------------------------------------------------------------------------------------


def test_ship_validation_messages(mage: TestClient) -> None:
    mage.post("/_sandbox/sources", json=[{"source_code": "wh"}])
    mage.post(
        "/rest/V1/inventory/source-items",
        headers=BEARER,
        json={"sourceItems": [{"sku": "SKU-A", "source_code": "wh", "quantity": 1, "status": 1}]},
    )
    mage.post("/_sandbox/orders", json=simple_order(5, "SKU-A", 2))
    url = "/rest/V1/order/5/ship"
    no_number = mage.post(
        url, headers=BEARER, json={"tracks": [{"title": "Aramex", "carrier_code": "clickpost"}]}
    )
    assert no_number.status_code == 400
    assert no_number.json() == {
        "message": "Shipment Document Validation Error(s):\nPlease enter a tracking number."
    }
    no_title = mage.post(url, headers=BEARER, json={"tracks": [{"track_number": "1", "carrier_code": "x"}]})
    assert no_title.json()["parameters"] == {"fieldName": "title"}
    too_many = mage.post(url, headers=BEARER, json={"items": [{"order_item_id": 50, "qty": 3}]})
    assert too_many.json()["message"] == (
        'Shipment Document Validation Error(s):\nWe found an invalid quantity to ship for item "SKU-A".\n'
        "You can't create a shipment without products."
    )
    unknown = mage.post(url, headers=BEARER, json={"items": [{"order_item_id": 999, "qty": 1}]})
    assert 'We can not found item "999" in order.' in unknown.json()["message"]
    short = mage.post(
        url, headers=BEARER, json={"arguments": {"extension_attributes": {"source_code": "wh"}}}
    )
    assert short.json() == {"message": "Not all of your products are available in the requested quantity."}


def test_invoice_ship_complete_then_refund_closes(mage: TestClient) -> None:
    mage.post("/_sandbox/sources", json=[{"source_code": "wh"}])
    mage.post(
        "/rest/V1/inventory/source-items",
        headers=BEARER,
        json={"sourceItems": [{"sku": "SKU-A", "source_code": "wh", "quantity": 5, "status": 1}]},
    )
    mage.post("/_sandbox/orders", json=simple_order(5, "SKU-A", 2, state="new"))
    invoice_id = mage.post(
        "/rest/V1/order/5/invoice", headers=BEARER, json=fixture("magento_invoice_order_request_capture.json")
    ).json()
    order = mage.get("/rest/V1/orders/5", headers=BEARER).json()
    assert (order["state"], order["total_paid"], order["items"][0]["qty_invoiced"]) == ("processing", 200, 2)
    invoice = mage.get(f"/rest/V1/invoices/{invoice_id}", headers=BEARER).json()
    assert invoice["order_id"] == 5 and invoice["state"] == 2 and invoice["items"][0]["order_item_id"] == 50
    listed = mage.get("/rest/V1/invoices", params=criteria([("order_id", 5, "eq")]), headers=BEARER).json()
    assert listed["total_count"] == 1
    mage.post(
        "/rest/V1/order/5/ship",
        headers=BEARER,
        json={
            "items": [{"order_item_id": 50, "qty": 2}],
            "notify": True,
            "tracks": [{"track_number": "AWB9", "title": "Aramex", "carrier_code": "clickpost"}],
            "arguments": {"extension_attributes": {"source_code": "wh"}},
        },
    )
    order = mage.get("/rest/V1/orders/5", headers=BEARER).json()
    assert (order["state"], order["status"], order["items"][0]["qty_shipped"]) == ("complete", "complete", 2)
    shipments = mage.get(
        "/rest/V1/shipments", params=criteria([("order_id", 5, "eq")]), headers=BEARER
    ).json()
    assert shipments["items"][0]["tracks"][0]["track_number"] == "AWB9"
    assert shipments["items"][0]["extension_attributes"] == {"source_code": "wh"}
    refund = copy.deepcopy(fixture("magento_refund_order_request.json"))
    refund["items"] = [{"order_item_id": 50, "qty": 2}]
    refund["arguments"]["extension_attributes"]["return_to_stock_items"] = [50]
    assert isinstance(mage.post("/rest/V1/order/5/refund", headers=BEARER, json=refund).json(), int)
    order = mage.get("/rest/V1/orders/5", headers=BEARER).json()
    assert (order["state"], order["total_refunded"]) == ("closed", 200)
    assert mage.get("/_sandbox/source-items").json()[0]["quantity"] == 5  # 5 − 2 shipped + 2 returned


def test_comments_cancel_hold(mage: TestClient) -> None:
    clock = FrozenClock(datetime(2026, 1, 5, 8, 0, tzinfo=UTC))
    client = TestClient(magento.create_app(TOKEN, clock=clock))
    client.post("/_sandbox/orders", json=simple_order(42, "SKU-A"))
    clock.now += timedelta(minutes=5)
    comment = fixture("magento_order_comment_request_statusHistory.json")
    added = client.post("/rest/V1/orders/42/comments", headers=BEARER, json=comment)
    assert added.status_code == 200 and added.json() is True
    order = client.get("/rest/V1/orders/42", headers=BEARER).json()
    assert order["updated_at"] == "2026-01-05 08:05:00"
    assert order["status_histories"][0]["comment"] == comment["statusHistory"]["comment"]
    comments = client.get("/rest/V1/orders/42/comments", headers=BEARER).json()
    assert comments["total_count"] == 1
    client.post(
        "/rest/V1/orders/42/comments",
        headers=BEARER,
        json={
            "statusHistory": {
                "comment": "Delivered",
                "is_customer_notified": 0,
                "is_visible_on_front": 0,
                "parent_id": 42,
                "status": "delivered",
            }
        },
    )
    assert client.get("/rest/V1/orders/42/statuses", headers=BEARER).json() == "delivered"
    assert client.post("/rest/V1/orders/42/hold", headers=BEARER).json() is True
    assert client.post("/rest/V1/orders/42/hold", headers=BEARER).json() == {
        "message": "A hold action is not available."
    }
    assert (
        client.post("/rest/V1/orders/42/cancel", headers=BEARER).json() is False
    )  # held orders cannot cancel
    assert client.post("/rest/V1/orders/42/unhold", headers=BEARER).json() is True
    assert client.post("/rest/V1/orders/42/cancel", headers=BEARER).json() is True
    assert client.get("/rest/V1/orders/42", headers=BEARER).json()["state"] == "canceled"


def test_demo_orders_round_trip_in_magento_shape(mage: TestClient, demo: demo_data.DemoData) -> None:
    assert mage.post("/_sandbox/orders", json=demo.orders).status_code == 200
    for original in demo.orders[:5]:
        assert mage.get(f"/rest/V1/orders/{original['entity_id']}", headers=BEARER).json() == original
    listed = mage.get(
        "/rest/V1/orders", params=criteria([("state", "processing", "eq")]), headers=BEARER
    ).json()
    assert listed["total_count"] == sum(o["state"] == "processing" for o in demo.orders)


# --- Clickpost ------------------------------------------------------------------------------------------------


@pytest.fixture
def cp() -> TestClient:
    return TestClient(clickpost.create_app("oms", "cp-key", async_delay_seconds=0.2))


def test_clickpost_v3_create_is_idempotent_on_reference_number(cp: TestClient) -> None:
    body = fixture("clickpost_v3_create_order_request_prepaid.json")
    first = cp.post("/api/v3/create-order/", params=CP_AUTH, json=body)
    assert first.status_code == 200
    answer = first.json()
    sample = fixture("clickpost_v3_create_order_response.json")
    assert answer["meta"] == sample["meta"]
    assert set(answer["result"]) == set(sample["result"])
    assert answer["result"]["waybill"] == body["additional"]["awb_number"]  # pre-allocated AWB is kept
    again = cp.post("/api/v3/create-order", params=CP_AUTH, json=body).json()
    assert again["meta"]["status"] == 323
    assert again["result"]["waybill"] == answer["result"]["waybill"]
    reference = body["shipment_details"]["reference_number"]
    by_ref = cp.get("/api/v3/create-order/", params={"key": "cp-key", "reference_number": reference}).json()
    assert set(by_ref["result"]) >= set(
        fixture("clickpost_v3_get_order_by_reference_number_response.json")["result"]
    )
    by_awb = cp.get(
        "/api/v3/create-order/", params={"key": "cp-key", "waybill": answer["result"]["waybill"]}
    ).json()
    assert set(by_awb["result"]) == set(fixture("clickpost_v3_get_order_by_awb_response.json")["result"])


def test_clickpost_v4_international_and_label(cp: TestClient) -> None:
    body = fixture("clickpost_v4_create_order_request_international.json")
    answer = cp.post("/api/v4/create-order/", params=CP_AUTH, json=body).json()
    assert answer["meta"]["status"] == 200
    assert set(answer["result"]) == set(fixture("clickpost_v4_create_order_response.json")["result"])
    waybill = answer["result"]["waybill"]
    assert cp.post("/api/v4/create-order/", params=CP_AUTH, json=body).json()["result"]["waybill"] == waybill
    pdf = cp.get(f"/labels/{waybill}.pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF") and pdf.content.rstrip().endswith(b"%%EOF")
    assert waybill.encode() in pdf.content
    fetched = cp.get(
        "/api/v1/fetch/shippinglabel/", params={"key": "cp-key", "waybill": waybill, "cp_id": 2}
    ).json()
    sample = fixture("clickpost_fetch_shipping_label_response.json")
    assert fetched["meta"] == sample["meta"] and set(fetched["result"]) == set(sample["result"])
    assert fetched["result"]["shipping_label"].endswith(f"/labels/{waybill}.pdf")


def test_clickpost_rejections(cp: TestClient) -> None:
    body = fixture("clickpost_v3_create_order_request_prepaid.json")
    assert (
        cp.post("/api/v3/create-order/", params={"username": "oms", "key": "bad"}, json=body).json()["meta"][
            "status"
        ]
        == 301
    )
    broken = copy.deepcopy(body)
    del broken["drop_info"]["drop_phone"]
    refused = cp.post("/api/v3/create-order/", params=CP_AUTH, json=broken)
    assert refused.status_code == 400
    answer = refused.json()
    assert answer["meta"]["success"] is False and "drop_info.drop_phone" in answer["meta"]["message"]
    assert answer["reference_number"] == body["shipment_details"]["reference_number"]
    cod_wrong = copy.deepcopy(body)
    cod_wrong["shipment_details"]["cod_value"] = 50
    assert cp.post("/api/v3/create-order/", params=CP_AUTH, json=cod_wrong).json()["meta"]["status"] == 315
    nowhere = copy.deepcopy(body)
    nowhere["drop_info"]["drop_pincode"] = "000000"
    failure = cp.post("/api/v3/create-order/", params=CP_AUTH, json=nowhere).json()
    assert set(failure) == set(fixture("clickpost_create_order_failure_319_response.json"))
    assert failure["meta"]["status"] == 319 and failure["meta"]["success"] is False
    # a rejected order was not placed: fixing it and retrying works
    assert cp.post("/api/v3/create-order/", params=CP_AUTH, json=body).json()["meta"]["status"] == 200


def test_clickpost_async_create_then_available(cp: TestClient) -> None:
    body = copy.deepcopy(fixture("clickpost_v3_create_order_request_prepaid.json"))
    body["additional"]["async"] = True
    queued = cp.post("/api/v3/create-order/", params=CP_AUTH, json=body).json()
    assert queued["meta"]["status"] == 202 and queued["result"]["waybill"] is None and "order_id" in queued
    assert cp.post("/api/v3/create-order/", params=CP_AUTH, json=body).json()["meta"]["status"] == 102
    lookup = {"key": "cp-key", "reference_number": body["shipment_details"]["reference_number"]}
    assert cp.get("/api/v3/create-order/", params=lookup).json()["meta"]["status"] == 400
    time.sleep(0.25)
    assert cp.get("/api/v3/create-order/", params=lookup).json()["result"]["waybill"] == body["additional"]["awb_number"]
    assert cp.post("/api/v3/create-order/", params=CP_AUTH, json=body).json()["meta"]["status"] == 323


def test_clickpost_recommendation_cancel_and_feed(cp: TestClient) -> None:
    request = fixture("clickpost_recommendation_request.json")
    answer = cp.post("/api/v1/recommendation_api/", params={"key": "cp-key"}, json=request).json()
    sample = fixture("clickpost_recommendation_response.json")
    assert set(answer["result"][0]) == set(sample["result"][0])
    assert set(answer["result"][0]["preference_array"][0]) == set(sample["result"][0]["preference_array"][0])
    assert answer == cp.post("/api/v1/recommendation_api/", params={"key": "cp-key"}, json=request).json()

    created = cp.post(
        "/api/v3/create-order/",
        params=CP_AUTH,
        json=fixture("clickpost_v3_create_order_request_prepaid.json"),
    ).json()["result"]
    now = int(time.time())
    feed = cp.get(
        "/api/v1/updated-order/", params={**CP_AUTH, "start_date": now - 600, "end_date": now + 60}
    ).json()
    assert [r["waybill"] for r in feed["result"]] == [created["waybill"]]
    assert set(feed["result"][0]) == set(fixture("clickpost_updated_orders_response.json")["result"][0])
    too_wide = cp.get("/api/v1/updated-order/", params={**CP_AUTH, "start_date": now - 3600, "end_date": now})
    assert too_wide.json()["meta"]["status"] == 400
    cancel = {**CP_AUTH, "waybill": created["waybill"], "cp_id": 3}
    assert cp.get("/api/v1/cancel-order/", params=cancel).json()["meta"] == {
        "status": 200,
        "message": "SUCCESS",
        "success": True,
    }
    assert cp.get("/api/v1/cancel-order/", params=cancel).json()["meta"]["status"] == 600


class WebhookReceiver:
    """An in-process platform endpoint: records what Clickpost posts; can fail the first N calls."""

    def __init__(self, fail_first: int = 0) -> None:
        self.calls: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.fail_first = fail_first
        self.app = FastAPI()

        @self.app.post("/v1/webhooks/clickpost")
        async def receive(request: Request):
            self.calls.append((dict(request.headers), await request.json()))
            status = 503 if len(self.calls) <= self.fail_first else 200
            return JSONResponse({"ok": status == 200}, status_code=status)

    def client(self, **options: Any) -> TestClient:
        return TestClient(
            clickpost.create_app(
                "oms",
                "cp-key",
                "http://platform/v1/webhooks/clickpost",
                "hook-secret",
                webhook_transport=httpx.ASGITransport(app=self.app),
                webhook_retry_delay_seconds=0.01,
                **options,
            )
        )


def test_clickpost_webhook_shape_headers_and_retries() -> None:
    receiver = WebhookReceiver(fail_first=1)
    client = receiver.client()
    waybill = client.post(
        "/api/v3/create-order/",
        params=CP_AUTH,
        json=fixture("clickpost_v3_create_order_request_prepaid.json"),
    ).json()["result"]["waybill"]
    report = client.post(
        "/_sandbox/advance",
        json={"waybill": waybill, "status_code": 8, "remark": "Delivered to consignee", "location": "Dubai"},
    ).json()
    assert report["deliveries"][0]["attempts"] == 2 and report["deliveries"][0]["delivered"] is True
    headers, payload = receiver.calls[-1]
    assert headers["webhook_key"] == "hook-secret" and headers["content-type"] == "application/json"
    sample = fixture("clickpost_webhook_selected_delivered.json")
    assert set(payload) == set(sample)
    assert set(payload["additional"]) == set(sample["additional"])
    assert set(payload["additional"]["latest_status"]) == set(sample["additional"]["latest_status"])
    assert (payload["clickpost_status_code"], payload["clickpost_status_description"]) == (8, "Delivered")
    assert payload["additional"]["notification_event_id"] == 5
    assert payload["additional"]["latest_status"]["clickpost_status_bucket"] == 6
    assert {k.lower() for k in fixture("clickpost_webhook_headers.json")} <= set(headers)


def test_clickpost_webhook_duplicates_and_disorder() -> None:
    receiver = WebhookReceiver()
    client = receiver.client(clock=FrozenClock(datetime(2026, 1, 1, tzinfo=UTC)))  # created before the scans
    waybill = client.post(
        "/api/v3/create-order/",
        params=CP_AUTH,
        json=fixture("clickpost_v3_create_order_request_prepaid.json"),
    ).json()["result"]["waybill"]
    client.post("/_sandbox/faults", json={"duplicate_rate": 1.0, "shuffle": True, "seed": 3})
    scans = [
        {"waybill": waybill, "status_code": code, "timestamp": f"2026-01-0{day}T10:00:00Z"}
        for day, code in ((2, 4), (3, 5), (4, 6), (5, 8))
    ]
    client.post("/_sandbox/advance", json=scans)
    codes = [payload["clickpost_status_code"] for _, payload in receiver.calls]
    assert sorted(codes) == [4, 4, 5, 5, 6, 6, 8, 8]  # every event sent twice
    assert codes != sorted(codes)  # and not in order
    # whatever the arrival order, latest_status is the latest scan
    assert {p["additional"]["latest_status"]["clickpost_status_code"] for _, p in receiver.calls} == {8}


# --- ERP -------------------------------------------------------------------------------------------------------


@pytest.fixture
def erp_client() -> TestClient:
    return TestClient(erp.create_app(*ERP_AUTH))


STOCK_URL = f"/api/oms/stock/v1.0/companies({erp.DEFAULT_COMPANY_ID})/locationInventory"


def test_erp_auth_and_companies(erp_client: TestClient) -> None:
    for auth in (None, ("oms", "wrong")):
        refused = erp_client.get(STOCK_URL, auth=auth)
        assert (
            refused.status_code == 401
            and refused.json()["error"]["code"] == "Authentication_InvalidCredentials"
        )
    companies = erp_client.get("/api/v2.0/companies", auth=ERP_AUTH).json()
    assert companies["value"][0]["id"] == erp.DEFAULT_COMPANY_ID
    missing = erp_client.get(
        "/api/oms/stock/v1.0/companies(00000000-0000-0000-0000-000000000000)/locationInventory", auth=ERP_AUTH
    )
    assert missing.status_code == 404


def test_erp_paging_with_next_link_and_filter_window(
    erp_client: TestClient, demo: demo_data.DemoData
) -> None:
    assert demo.stock_rows[0]["lastModifiedDateTime"] == "2026-01-02T00:00:00Z"  # as_of
    day_one = [{**row, "lastModifiedDateTime": "2026-01-01T12:00:00Z"} for row in demo.stock_rows[:45]]
    day_two = [{**row, "lastModifiedDateTime": "2026-01-02T06:00:00Z"} for row in demo.stock_rows[45:70]]
    erp_client.post("/_sandbox/stock", json=day_one + day_two)
    window = "lastModifiedDateTime ge 2026-01-01T00:00:00Z and lastModifiedDateTime lt 2026-01-02T00:00:00Z"
    page = erp_client.get(STOCK_URL, params={"$filter": window, "$top": "20"}, auth=ERP_AUTH).json()
    pages = [page["value"]]
    while "@odata.nextLink" in page:
        assert "$skip=" in page["@odata.nextLink"]
        page = erp_client.get(page["@odata.nextLink"], auth=ERP_AUTH).json()
        assert page["@odata.context"].endswith("/locationInventory")
        pages.append(page["value"])
    assert [len(p) for p in pages] == [20, 20, 5]
    assert [r["itemNumber"] + r["locationCode"] for p in pages for r in p] == [
        r["itemNumber"] + r["locationCode"] for r in day_one
    ]
    everything = erp_client.get(STOCK_URL, auth=ERP_AUTH).json()
    assert len(everything["value"]) == 70 and "@odata.nextLink" not in everything
    bad = erp_client.get(STOCK_URL, params={"$filter": "inventory gt 1 or inventory lt 0"}, auth=ERP_AUTH)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "BadRequest"


def test_erp_serves_bad_rows_as_given(erp_client: TestClient, demo: demo_data.DemoData) -> None:
    bad = demo.bad_stock_rows(5)
    stamped = {k: v for k, v in bad[1].items() if k != "lastModifiedDateTime"}
    erp_client.post("/_sandbox/stock", json=[*bad, stamped], params={"mode": "append"})  # keep both copies
    served = erp_client.get(STOCK_URL, auth=ERP_AUTH).json()["value"]
    assert served[:5] == bad
    assert served[5]["inventory"] == "abc" and served[5]["lastModifiedDateTime"].endswith("Z")
    assert "locationCode" not in served[2]


def test_erp_items_shape(erp_client: TestClient, demo: demo_data.DemoData) -> None:
    erp_client.post("/_sandbox/items", json=demo.erp_items()[:3])
    erp_client.post(
        "/_sandbox/stock", json=[r for r in demo.stock_rows if r["itemNumber"] == demo.skus[0]["sku"]]
    )
    items = erp_client.get(f"/api/v2.0/companies({erp.DEFAULT_COMPANY_ID})/items", auth=ERP_AUTH).json()[
        "value"
    ]
    assert set(items[0]) == set(fixture("bc_v2_item_get_response.json"))
    total = sum(r["inventory"] for r in demo.stock_rows if r["itemNumber"] == demo.skus[0]["sku"])
    assert items[0]["inventory"] == total and items[1]["inventory"] == 0


# --- faults ------------------------------------------------------------------------------------------------------


def test_error_rate_one_fails_everything_but_admin(mage: TestClient) -> None:
    assert mage.post("/_sandbox/faults", json={"error_rate": 1.0}).json()["error_rate"] == 1.0
    for _ in range(3):
        response = mage.get("/rest/V1/orders", params=criteria(), headers=BEARER)
        assert response.status_code == 503 and response.json() == {
            "message": "Service Unavailable",
            "trace": None,
        }
    assert mage.get("/_sandbox/faults").status_code == 200
    assert [e["fault"] for e in mage.get("/_sandbox/requests").json()] == ["error"] * 3
    assert mage.delete("/_sandbox/faults").json()["error_rate"] == 0.0
    assert mage.get("/rest/V1/orders", params=criteria(), headers=BEARER).status_code == 200


def test_rate_limit_answers_429_with_retry_after() -> None:
    responses = []
    for client, path in (
        (TestClient(magento.create_app(TOKEN)), "/rest/V1/orders"),
        (TestClient(clickpost.create_app("oms", "cp-key")), "/api/v2/track-order/"),
        (TestClient(erp.create_app(*ERP_AUTH)), STOCK_URL),
    ):
        client.post("/_sandbox/faults", json={"rate_429": 1.0})
        response = client.get(path)
        assert response.status_code == 429 and response.headers["retry-after"] == "1"
        responses.append(response.json())
    assert responses[0] == {"message": "Too Many Requests", "trace": None}
    assert responses[1]["meta"]["status"] == 429
    assert responses[2]["error"]["code"] == "Application_TooManyRequests"


def test_timeout_latency_validation_and_reset(erp_client: TestClient) -> None:
    erp_client.post("/_sandbox/faults", json={"timeout_rate": 1.0, "timeout_seconds": 0.05})
    started = time.perf_counter()
    assert erp_client.get(STOCK_URL, auth=ERP_AUTH).status_code == 504
    assert time.perf_counter() - started >= 0.05
    erp_client.post("/_sandbox/faults", json={"timeout_rate": 0.0, "latency_ms": 60})
    started = time.perf_counter()
    assert erp_client.get(STOCK_URL, auth=ERP_AUTH).status_code == 200
    assert time.perf_counter() - started >= 0.06
    assert erp_client.post("/_sandbox/faults", json={"error_rate": 2}).status_code == 422
    assert erp_client.post("/_sandbox/faults", json={"nonsense": 1}).status_code == 422
    erp_client.post("/_sandbox/reset")
    assert erp_client.get("/_sandbox/faults").json()["latency_ms"] == 0


def test_faults_are_deterministic_for_a_seed() -> None:
    def statuses(seed: int) -> list[int]:
        client = TestClient(clickpost.create_app("oms", "cp-key"))
        client.post("/_sandbox/faults", json={"error_rate": 0.5, "rate_429": 0.2, "seed": seed})
        return [
            client.get("/api/v2/track-order/", params={**CP_AUTH, "waybill": "X"}).status_code
            for _ in range(30)
        ]

    first = statuses(5)
    assert first == statuses(5)
    assert {200, 429, 503} <= set(first)
    assert first != statuses(6)


def test_erp_duplicate_fault_repeats_previous_row(erp_client: TestClient, demo: demo_data.DemoData) -> None:
    erp_client.post("/_sandbox/stock", json=demo.stock_rows[:6])
    erp_client.post("/_sandbox/faults", json={"duplicate_rate": 1.0})
    second = erp_client.get(STOCK_URL, params={"$top": "3", "$skip": "3"}, auth=ERP_AUTH).json()["value"]
    assert second[0] == demo.stock_rows[2] and second[1:] == demo.stock_rows[3:6]


# --- demo data ----------------------------------------------------------------------------------------------------


def test_generator_is_deterministic(demo: demo_data.DemoData) -> None:
    again = demo_data.generate(skus=60, stores_per_country=3, orders=40, seed=11, as_of=AS_OF)
    assert again == demo
    other = demo_data.generate(skus=60, stores_per_country=3, orders=40, seed=12, as_of=AS_OF)
    assert other.orders != demo.orders and other.stock_rows != demo.stock_rows
    assert list(demo.iter_stock_rows()) == demo.stock_rows
    streamed = list(demo_data.iter_stock_rows(skus=60, stores_per_country=3, seed=11, as_of=AS_OF))
    assert streamed == demo.stock_rows
    smaller = demo_data.generate(skus=20, stores_per_country=3, orders=0, seed=11, as_of=AS_OF)
    assert smaller.skus == demo.skus[:20]  # prefix-stable catalogue


def test_generator_locations_skus_and_stock(demo: demo_data.DemoData) -> None:
    countries = {c["country_code"]: c for c in demo.countries}
    assert (countries["AE"]["currency"], countries["AE"]["website_code"], countries["AE"]["stock_id"]) == (
        "AED",
        "ae",
        2,
    )
    assert (countries["QA"]["currency"], countries["QA"]["website_code"], countries["QA"]["stock_id"]) == (
        "QAR",
        "qa",
        3,
    )
    ids = [loc["store_id"] for loc in demo.locations]
    assert ids[:4] == ["AE-WH-01", "AE-ST-01", "AE-ST-02", "AE-ST-03"] and len(ids) == 8
    dubai_mall = demo.locations[1]
    assert dubai_mall["name"] == "Dubai Mall" and dubai_mall["magento_source_code"] == "ae-st-01"
    assert 25 < dubai_mall["latitude"] < 25.3 and dubai_mall["pickup_enabled"] and dubai_mall["active"]
    assert demo.locations[0]["location_type"] == "warehouse" and not demo.locations[0]["pickup_enabled"]
    assert demo.skus[0]["sku"] == "TSHIRT-BLK-XS" and all(s["is_stock_managed"] for s in demo.skus)
    assert {s["category"] for s in demo.skus} == {"apparel", "footwear", "accessories", "beauty"}
    assert len(demo.stock_rows) == len(demo.locations) * len(demo.skus)
    warehouse = [r["inventory"] for r in demo.stock_rows if r["locationCode"].endswith("WH-01")]
    stores = [r["inventory"] for r in demo.stock_rows if "-ST-" in r["locationCode"]]
    assert sum(q == 0 for q in stores) > len(stores) / 3 and sum(warehouse) / len(warehouse) > 5 * sum(
        stores
    ) / len(stores)
    kinds = demo.bad_stock_rows(5)
    assert kinds[0]["inventory"] < 0 and kinds[1]["inventory"] == "abc" and "locationCode" not in kinds[2]
    assert kinds[3]["locationCode"] not in ids and kinds[4]["itemNumber"] not in {s["sku"] for s in demo.skus}
    more = demo_data.generate(
        skus=5, stores_per_country=1, orders=3, countries=("AE", "QA", "KW", "SA", "BH", "OM")
    )
    assert {loc["country_code"] for loc in more.locations} == {"AE", "QA", "KW", "SA", "BH", "OM"}
    with pytest.raises(ValueError):
        demo_data.generate(countries=("XX",))


def test_generator_orders_are_magento_shaped(demo: demo_data.DemoData) -> None:
    sources = {loc["magento_source_code"] for loc in demo.locations}
    states = {o["state"] for o in demo.orders}
    assert "processing" in states and states <= {"processing", "pending_payment", "canceled", "new", "holded"}
    assert sum(o["state"] == "processing" for o in demo.orders) > len(demo.orders) / 2
    assert {o["payment"]["method"] for o in demo.orders} <= {"checkmo", "cashondelivery", "checkout_com"}
    for order in demo.orders:
        assert order["increment_id"][:2] in ("AE", "QA") and len(order["increment_id"]) == 11
        datetime.strptime(order["updated_at"], "%Y-%m-%d %H:%M:%S")
        assert order["created_at"] <= order["updated_at"] <= "2026-01-02 00:00:00"
        d = 2
        assert (
            round(
                order["subtotal"] + order["discount_amount"] + order["tax_amount"] + order["shipping_amount"],
                d,
            )
            == order["grand_total"]
        )
        by_id = {i["item_id"]: i for i in order["items"]}
        for item in order["items"]:
            parent = by_id.get(item.get("parent_item_id"))
            if parent and parent["product_type"] == "configurable":
                assert (
                    item["sku"] == parent["sku"]
                    and item["price"] == 0
                    and item["qty_ordered"] == parent["qty_ordered"]
                )
                assert item["parent_item"]["item_id"] == parent["item_id"]
        assignment = order["extension_attributes"]["shipping_assignments"][0]
        assert assignment["shipping"]["address"]["country_id"] == order["increment_id"][:2]
        pickup = order["extension_attributes"].get("pickup_location_code")
        assert pickup is None or (pickup in sources and assignment["shipping"]["method"] == "instore_pickup")
    types = {i["product_type"] for o in demo.orders for i in o["items"]}
    assert {"configurable", "simple", "bundle"} <= types


# --- server ----------------------------------------------------------------------------------------------------------


def test_credentials_from_arguments_env_and_defaults() -> None:
    creds = resolve_credentials({"magento_token": "given"}, environ={"OMS_CLICKPOST_KEY": "from-env"})
    assert (creds.magento_token, creds.clickpost_key, creds.erp_password) == (
        "given",
        "from-env",
        "erp-sandbox-key",
    )
    with pytest.raises(TypeError):
        resolve_credentials({"nope": 1})


@pytest.mark.integration  # a process of its own, real HTTP on loopback
def test_server_module_serves_three_apps_in_one_process() -> None:
    ports = [free_port() for _ in range(3)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "OMS_MAGENTO_TOKEN": TOKEN}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "omsdev.sandbox.server",
            "--magento-port",
            str(ports[0]),
            "--clickpost-port",
            str(ports[1]),
            "--erp-port",
            str(ports[2]),
            "--demo",
            "--demo-skus",
            "20",
            "--demo-orders",
            "5",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                orders = httpx.get(
                    f"http://127.0.0.1:{ports[0]}/rest/ae/V1/orders",
                    params={"searchCriteria": ""},
                    headers=BEARER,
                    timeout=1,
                )
                break
            except httpx.TransportError:
                assert process.poll() is None and time.monotonic() < deadline, process.stderr.read().decode()
                time.sleep(0.1)
        assert orders.json()["total_count"] == 5
        assert httpx.get(f"http://127.0.0.1:{ports[1]}/_sandbox/faults").status_code == 200
        stock = httpx.get(f"http://127.0.0.1:{ports[2]}{STOCK_URL}", auth=("oms", "erp-sandbox-key"))
        assert len(stock.json()["value"]) == 20 * 10
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
