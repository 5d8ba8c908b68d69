"""Builders for the shipping tests (no tests here): an AE network, Magento orders loaded into the
sandbox and landed, routing decisions made with the routing service, and the shipping clients."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx

from oms import reference
from oms.integrations.clickpost import ClickpostClient
from oms.integrations.magento import MagentoClient
from oms.magento.landing import land_orders
from oms.routing import Order, OrderLine, profiles, service
from oms.warehouse import apply_ddl, connect

from .test_routing_kit import EXAMPLES

NOW = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
CUSTOMER = (25.2048, 55.2708)
LOCATIONS = [
    dict(store_id="AE-WH-01", name="Jebel Ali DC", country_code="AE", location_type="warehouse",
         address_line="Plot S10101, Jebel Ali Free Zone", city="Dubai", postcode="00000", latitude=25.0037,
         longitude=55.0876, phone="041234567", email="dc@example.com"),
    dict(store_id="AE-ST-01", name="Dubai Mall", country_code="AE", location_type="store",
         address_line="Dubai Mall, Financial Centre Rd", city="Dubai", postcode="00972", latitude=25.1972,
         longitude=55.2744, phone="047654321", email="dm@example.com", ship_from_store=True, pickup_enabled=True),
]
SKUS = [dict(sku="SH-A", name="Shirt A", weight_g=300), dict(sku="SH-B", name="Scarf B", weight_g=150),
        dict(sku="SH-C", name="Cap C")]
MAGENTO_TOKEN_HEADER = "Authorization"


def fresh_world(sandboxes, pg_cluster, database: str) -> tuple:
    """A new warehouse with the shipping reference data, and empty Magento and Clickpost sandboxes
    whose webhooks go nowhere (the tests post them to the API themselves)."""
    from .conftest import fresh_database

    dsn = fresh_database(pg_cluster, database)
    apply_ddl(dsn)
    for url in (sandboxes.magento_url, sandboxes.clickpost_url):
        httpx.post(f"{url}/_sandbox/reset", json={}, timeout=30).raise_for_status()
    httpx.post(f"{sandboxes.clickpost_url}/_sandbox/webhook-url", json={"url": None, "key": None}, timeout=30)
    setup_reference(dsn)
    setup_magento(sandboxes)
    return sandboxes, dsn


def setup_reference(dsn: str) -> None:
    with connect(dsn) as conn:
        reference.upsert_channels(conn, [dict(channel_code="ae_web", country_code="AE", name="UAE", currency_code="AED",
                                              magento_website_code="ae", magento_store_code="ae", magento_stock_id=2,
                                              magento_store_id=1)])
        reference.upsert_locations(conn, LOCATIONS)
        reference.upsert_skus(conn, SKUS)
        if profiles.get_active(conn, "AE") is None:
            doc = json.loads((EXAMPLES / "warehouse_first.json").read_text())
            profiles.create_version(conn, doc, "test", activate=True)


def setup_magento(settings, stock_per_source: float = 1000) -> None:
    magento = settings.magento_url
    httpx.post(f"{magento}/_sandbox/sources", json=[{"source_code": loc["store_id"].lower(), "name": loc["name"]}
                                                     for loc in LOCATIONS], timeout=30).raise_for_status()
    items = [{"sku": s["sku"], "source_code": loc["store_id"].lower(), "quantity": stock_per_source, "status": 1}
             for s in SKUS for loc in LOCATIONS]
    httpx.post(f"{magento}/rest/V1/inventory/source-items", json={"sourceItems": items},
               headers={"Authorization": f"Bearer {settings.magento_token}"}, timeout=30).raise_for_status()


def magento_order(entity_id: int, lines: list[tuple[str, float, float]], *, method: str = "checkmo",
                  invoiced: bool = True, state: str = "processing", postcode: str = "00000") -> dict:
    """lines: (sku, qty, unit price). Item ids are entity_id * 10 + n."""
    items, subtotal = [], 0.0
    for n, (sku, qty, price) in enumerate(lines, 1):
        row_total = qty * price
        subtotal += row_total
        items.append({"item_id": entity_id * 10 + n, "sku": sku, "name": sku, "product_type": "simple",
                      "qty_ordered": qty, "qty_invoiced": qty if invoiced else 0, "price": price,
                      "row_total": row_total, "tax_amount": round(row_total * 0.05, 2), "discount_amount": 0,
                      "weight": 0.2})
    tax = round(subtotal * 0.05, 2)
    grand = subtotal + tax + 10
    address = {"address_type": "shipping", "firstname": "Amal", "lastname": "Khan", "street": ["Villa 12", "Al Wasl Rd"],
               "city": "Dubai", "region": "Dubai", "postcode": postcode, "country_id": "AE",
               "telephone": "+971501234567", "email": "amal@example.com"}
    order = {
        "entity_id": entity_id, "increment_id": f"{entity_id:09d}", "state": state,
        "status": "pending" if state == "new" else state, "store_id": 1, "created_at": "2026-10-01 08:00:00",
        "updated_at": "2026-10-01 08:30:00", "order_currency_code": "AED", "base_currency_code": "AED",
        "customer_email": "amal@example.com", "grand_total": grand, "subtotal": subtotal, "tax_amount": tax,
        "shipping_amount": 10, "discount_amount": 0, "payment": {"method": method},
        "billing_address": {**address, "address_type": "billing"}, "items": items,
        "extension_attributes": {"shipping_assignments": [
            {"shipping": {"address": address, "method": "flatrate_flatrate"}, "items": [], "stock_id": 2}]},
    }
    if invoiced:
        order.update(total_invoiced=grand, base_total_invoiced=grand, total_paid=grand, base_total_paid=grand)
    return order


def load_and_land(settings, dsn: str, orders: list[dict]) -> list[dict]:
    """Load into the Magento sandbox, read them back as Magento serves them, land them raw."""
    httpx.post(f"{settings.magento_url}/_sandbox/orders", json=orders, timeout=30).raise_for_status()
    headers = {"Authorization": f"Bearer {settings.magento_token}"}
    served = [httpx.get(f"{settings.magento_url}/rest/V1/orders/{o['entity_id']}", headers=headers, timeout=30).json()
              for o in orders]
    with connect(dsn) as conn:
        land_orders(conn, served, "test-batch", NOW, NOW, "ae_web")
    return served


def route(dsn: str, order: dict, stock: dict[tuple[str, str], float]) -> service.Routed:
    lines = [OrderLine(line_key=f"{order['entity_id']}-{i['item_id']}", sku=i["sku"], qty=i["qty_ordered"])
             for i in order["items"]]
    routed_order = Order(increment_id=order["increment_id"], country_code="AE", channel_code="ae_web",
                         shipping_method="flatrate_flatrate", order_value=order["grand_total"], latitude=CUSTOMER[0],
                         longitude=CUSTOMER[1], city="Dubai", payment_releasable=True, created_at=NOW, lines=lines)
    with connect(dsn) as conn:
        return service.route_order(conn, routed_order, NOW, atp=lambda _conn, _skus: stock)


def clickpost(settings) -> ClickpostClient:
    return ClickpostClient(settings.clickpost_url, settings.clickpost_username, settings.clickpost_key, attempts=2)


def magento(settings) -> MagentoClient:
    return MagentoClient(settings.magento_url, settings.magento_token, attempts=2)


def clickpost_shipments(settings) -> list[dict]:
    return httpx.get(f"{settings.clickpost_url}/_sandbox/shipments", timeout=30).json()


def magento_shipments(settings, entity_id: int) -> list[dict]:
    with magento(settings) as client:
        return client.shipments_of_order(entity_id)
