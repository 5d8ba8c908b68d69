"""Magento orders built by hand in the `GET /V1/orders/{id}` shape (as demo_data builds them), for
tests that need exact lines: configurable pairs, bundles, virtual and downloadable rows."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any


def magento_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def item(item_id: int, sku: str, product_type: str = "simple", qty: float = 1, price: float = 0.0,
         parent: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """One items[] row; quantities other than qty_ordered default to 0 (pass qty_shipped=… etc.)."""
    row_total = round(price * qty, 2)
    row: dict[str, Any] = {
        "item_id": item_id,
        "sku": sku,
        "name": sku.title(),
        "product_type": product_type,
        "product_id": 1000 + item_id,
        "qty_ordered": qty,
        "qty_invoiced": 0,
        "qty_shipped": 0,
        "qty_canceled": 0,
        "qty_refunded": 0,
        "price": price,
        "base_price": price,
        "original_price": price,
        "row_total": row_total,
        "base_row_total": row_total,
        "discount_amount": 0,
        "tax_amount": round(row_total * 0.05, 2),
        "is_virtual": 1 if product_type in ("virtual", "downloadable") else 0,
        "weight": 0 if product_type in ("virtual", "downloadable") else 0.3,
    }
    if parent is not None:
        row["parent_item_id"] = parent["item_id"]
    row.update(extra)
    return row


def address(address_type: str, country: str = "AE", **overrides: Any) -> dict[str, Any]:
    base = {
        "address_type": address_type,
        "firstname": "Layla",
        "lastname": "Haddad",
        "street": ["Villa 12", "Al Wasl Road"],
        "city": "Dubai",
        "region": "Dubai",
        "region_code": None,
        "postcode": "00000",
        "country_id": country,
        "telephone": "+971501234567",
        "email": "layla@example.com",
    }
    base.update(overrides)
    return base


def order(entity_id: int, items: list[dict[str, Any]], updated_at: datetime, *, store_id: int = 1,
          state: str = "processing", payment_method: str = "checkmo", currency: str = "AED",
          increment_id: str | None = None, shipping: dict[str, Any] | None | str = "default",
          shipping_method: str = "flatrate_flatrate", pickup_location_code: str | None = None,
          created_at: datetime | None = None) -> dict[str, Any]:
    """An order; `shipping=None` leaves the shipping address out, a dict replaces it."""
    money = [i for i in items if i.get("parent_item_id") is None]
    subtotal = round(sum(i["row_total"] for i in money), 2)
    tax = round(sum(i["tax_amount"] for i in money), 2)
    grand_total = round(subtotal + tax + 10, 2)
    by_id = {i["item_id"]: i for i in items}
    for row in items:  # children carry a copy of their parent, as Magento returns them
        if row.get("parent_item_id") in by_id:
            row["parent_item"] = {k: v for k, v in by_id[row["parent_item_id"]].items() if k != "parent_item"}
    ship_to = address("shipping") if shipping == "default" else shipping
    shipping_block: dict[str, Any] = {"method": shipping_method, "total": {"shipping_amount": 10}}
    if ship_to is not None:
        shipping_block["address"] = ship_to
    extension: dict[str, Any] = {
        "shipping_assignments": [{"shipping": shipping_block, "items": copy.deepcopy(items), "stock_id": 2}],
    }
    if pickup_location_code is not None:
        extension["pickup_location_code"] = pickup_location_code
    return {
        "entity_id": entity_id,
        "increment_id": increment_id or f"AE{entity_id:09d}",
        "state": state,
        "status": {"new": "pending"}.get(state, state),
        "store_id": store_id,
        "created_at": magento_time(created_at or updated_at),
        "updated_at": magento_time(updated_at),
        "customer_email": "layla@example.com",
        "customer_firstname": "Layla",
        "customer_lastname": "Haddad",
        "customer_id": 10_001,
        "customer_is_guest": 0,
        "order_currency_code": currency,
        "base_currency_code": currency,
        "subtotal": subtotal,
        "tax_amount": tax,
        "shipping_amount": 10,
        "discount_amount": 0,
        "grand_total": grand_total,
        "base_grand_total": grand_total,
        "total_paid": grand_total if state in ("processing", "complete") else 0,
        "total_due": 0 if state in ("processing", "complete") else grand_total,
        "billing_address": address("billing"),
        "payment": {"method": payment_method, "amount_ordered": grand_total,
                    "amount_paid": grand_total if state in ("processing", "complete") else 0,
                    "additional_information": [payment_method]},
        "items": items,
        "extension_attributes": extension,
        "status_histories": [],
    }


def mixed_order(entity_id: int, updated_at: datetime, skus: dict[str, str], **kwargs: Any) -> dict[str, Any]:
    """Configurable + bundle + simple + virtual + downloadable, partly shipped and cancelled.

    `skus` names the catalogue SKUs to use: tshirt (the configurable's variant), comp_a and comp_b
    (bundle components) and jeans (a plain simple product). Item ids are entity_id*100 + n.
    """
    n = entity_id * 100
    tshirt_parent = item(n + 1, skus["tshirt"], "configurable", qty=2, price=50.0, qty_shipped=1, qty_invoiced=2)
    tshirt_child = item(n + 2, skus["tshirt"], "simple", qty=2, price=0.0, parent=tshirt_parent, qty_shipped=1,
                        qty_invoiced=2)
    bundle = item(n + 3, f"GIFTSET-{skus['comp_a']}-{skus['comp_b']}", "bundle", qty=1, price=30.0)
    comp_a = item(n + 4, skus["comp_a"], "simple", qty=1, price=10.0, parent=bundle)
    comp_b = item(n + 5, skus["comp_b"], "simple", qty=2, price=10.0, parent=bundle)
    jeans = item(n + 6, skus["jeans"], "simple", qty=3, price=40.0, qty_canceled=1)
    giftwrap = item(n + 7, "GIFTWRAP-STD", "virtual", qty=1, price=15.0, qty_invoiced=1)
    lookbook = item(n + 8, "LOOKBOOK-DIGITAL", "downloadable", qty=1, price=19.0,
                    product_option={"extension_attributes": {"downloadable_option": {"downloadable_links": [1]}}})
    rows = [tshirt_parent, tshirt_child, bundle, comp_a, comp_b, jeans, giftwrap, lookbook]
    return order(entity_id, rows, updated_at, **kwargs)


# (sku key, product_type, qty_ordered, qty_shipped, qty_canceled, qty_open, unit_price, row_total,
#  requires_fulfilment) for each stock line of mixed_order, in item order.
MIXED_ORDER_LINES = [
    ("tshirt", "simple", 2, 1, 0, 1, 50.0, 100.0, True),    # configurable: qty from the child, money from the parent
    ("comp_a", "simple", 1, 0, 0, 1, 10.0, 10.0, True),     # bundle components carry stock; the parent does not
    ("comp_b", "simple", 2, 0, 0, 2, 10.0, 20.0, True),
    ("jeans", "simple", 3, 0, 1, 2, 40.0, 120.0, True),
    ("GIFTWRAP-STD", "virtual", 1, 0, 0, 0, 15.0, 15.0, False),  # invoiced: nothing left to do
    ("LOOKBOOK-DIGITAL", "downloadable", 1, 0, 0, 1, 19.0, 19.0, False),
]
