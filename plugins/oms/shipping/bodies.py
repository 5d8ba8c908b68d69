"""Clickpost create-order bodies from a landed Magento order, a routing shipment and its location.

v3 (India-style nested, contracts §2.3) or v4 (international: MENA/EU/US/SEA) per country
(ShippingSettings.v4_countries). Pure functions: oms.shipment stores the body it built and re-sends
exactly that body on a retry, so a retry is answered 323 with the first AWB.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from oms.shipping.config import ShippingSettings

PHONE_CODES = {"AE": "+971", "SA": "+966", "QA": "+974", "KW": "+965", "BH": "+973", "OM": "+968",
               "IN": "+91", "EG": "+20", "JO": "+962"}
CODE39 = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-. $/+%")


def postcode(value: Any, version: int) -> str:
    """The postcode to send. UAE and Qatar have no postcodes and Magento makes shoppers type a
    placeholder ("00000"): in the international (v4) body, where postal_code is optional, a
    placeholder of zeros is sent as no postcode rather than as an address couriers cannot serve."""
    text = str(value or "").strip()
    return "" if version == 4 and set(text) <= {"0"} else text


def _f(value: Any) -> float:
    try:
        return float(value or 0)
    except (TypeError, ValueError):
        return 0.0


def reference_number(increment_id: str, store_id: str, shipment_no: int) -> str:
    """Unique and deterministic per shipment: order + location + sequence, in Code 39's alphabet."""
    raw = f"{increment_id}-{store_id}-{shipment_no}".upper()
    return "".join(ch if ch in CODE39 else "-" for ch in raw)


@dataclass(frozen=True)
class Line:
    order_item_id: int
    sku: str
    name: str
    qty: float
    unit_value: float      # incl. tax, less discount, in the order currency
    weight_g: float


def _money(value: Any) -> float:
    return float(value) if value is not None else 0.0


def order_lines(increment_id: str, stock_lines: dict[int, dict[str, Any]], line_qty: dict[int, float],
                weights: dict[str, int | None], settings: ShippingSettings) -> list[Line]:
    """The shipment's stock rows with their money. `stock_lines` are the order version's rows of the
    view raw.magento_order_line (sql/015) by item_id: the view gives a configurable child the
    money of its parent row."""
    lines = []
    for item_id, qty in sorted(line_qty.items()):
        line = stock_lines.get(item_id)
        if line is None:
            raise ValueError(f"order {increment_id}: no item {item_id} in the landed order")
        ordered = _money(line["qty_ordered"]) or 1.0
        unit = (_money(line["row_total"]) + _money(line["tax_amount"]) - _money(line["discount_amount"])) / ordered
        weight = weights.get(line["sku"]) or (_money(line["weight"]) * 1000) or settings.default_item_weight_g
        lines.append(Line(item_id, line["sku"], str(line["product_name"] or line["sku"]), qty, round(unit, 3),
                          float(weight)))
    return lines


def shipping_address(payload: dict[str, Any]) -> dict[str, Any]:
    for assignment in (payload.get("extension_attributes") or {}).get("shipping_assignments") or []:
        address = ((assignment or {}).get("shipping") or {}).get("address")
        if isinstance(address, dict):
            return address
    if isinstance(payload.get("billing_address"), dict):
        return payload["billing_address"]
    raise ValueError(f"order {payload.get('increment_id')} has no shipping address")


def store_address(location: dict[str, Any], default_phone: str) -> dict[str, Any]:
    """A location as a Magento-shaped address: the drop of a transfer to a pickup store."""
    return {"firstname": str(location["name"]), "lastname": "", "telephone": location.get("phone") or default_phone,
            "street": [location.get("address_line") or location["name"]], "city": location.get("city") or "",
            "region": location.get("city") or "", "postcode": location.get("postcode") or "",
            "country_id": str(location["country_code"]).strip(), "email": location.get("email") or ""}


def _street(address: dict[str, Any]) -> str:
    street = address.get("street")
    return ", ".join(str(s) for s in street if s) if isinstance(street, list) else str(street or "")


def build_body(*, payload: dict[str, Any], location: dict[str, Any], lines: list[Line], reference: str,
               shipment_value: float, is_cod: bool, version: int, courier: dict[str, Any] | None, now: datetime,
               settings: ShippingSettings, drop: dict[str, Any] | None = None) -> dict[str, Any]:
    """`drop`: where the parcel goes when it is not the order's shipping address (a transfer's
    pickup store, store_address)."""
    address = drop or shipping_address(payload)
    length, breadth, height = settings.box_cm
    weight = int(round(sum(line.weight_g * line.qty for line in lines)))
    order_type = "COD" if is_cod else "PREPAID"
    value = round(shipment_value, 3)
    name = " ".join(str(x) for x in (address.get("firstname"), address.get("lastname")) if x) or "Customer"
    country = str(address.get("country_id") or location["country_code"]).strip()
    pickup_country = str(location["country_code"]).strip()
    invoice_date = str(payload.get("created_at") or now.isoformat())[:10]
    items = [{"sku": line.sku, "description": line.name[:100], "quantity": line.qty, "price": line.unit_value,
              "weight": line.weight_g,
              "additional": {"weight": line.weight_g, "length": length, "breadth": breadth, "height": height}}
             for line in lines]
    details: dict[str, Any] = {
        "items": items, "order_type": order_type, "cod_value": value if is_cod else 0, "invoice_value": value,
        "invoice_number": str(payload.get("increment_id"))[:50], "invoice_date": invoice_date,
        "reference_number": reference, "length": length, "breadth": breadth, "height": height, "weight": weight,
        "delivery_type": "FORWARD", "order_id": str(payload.get("increment_id")),
    }
    additional: dict[str, Any] = {"label": True, "async": False, "delivery_type": "FORWARD",
                                  "order_id": str(payload.get("increment_id")), "channel_name": "magento",
                                  "order_date": invoice_date}
    if courier:
        details["courier_partner"] = courier["cp_id"]
        additional["account_code"] = courier["account_code"]
    phone = str(location.get("phone") or settings.default_phone)
    if version == 3:
        return {
            "pickup_info": {
                "pickup_name": str(location["name"])[:100], "pickup_phone": phone,
                "pickup_address": str(location.get("address_line") or location["name"])[:500],
                "pickup_city": location.get("city") or "", "pickup_state": location.get("city") or "",
                "pickup_country": pickup_country, "pickup_pincode": str(location.get("postcode") or ""),
                "pickup_time": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "email": location.get("email") or "",
            },
            "drop_info": {
                "drop_name": name, "drop_phone": str(address.get("telephone") or ""),
                "drop_address": _street(address), "drop_city": address.get("city") or "",
                "drop_state": address.get("region") or address.get("city") or "", "drop_country": country,
                "drop_pincode": str(address.get("postcode") or ""),
                "drop_email": address.get("email") or payload.get("customer_email") or "",
            },
            "shipment_details": details,
            "additional": additional,
        }
    details["currency_code"] = payload.get("order_currency_code") or payload.get("base_currency_code")
    additional["duty_fee_paid_by"] = "S"
    return {
        "pickup_info": {
            "name": str(location["name"])[:100], "phone_code": PHONE_CODES.get(pickup_country, ""), "phone": phone,
            "address": str(location.get("address_line") or location["name"]),
            "postal_code": postcode(location.get("postcode"), 4),
            "city": location.get("city") or "", "state": location.get("city") or "", "country_code": pickup_country,
            "email": location.get("email") or "", "time": now.strftime("%Y-%m-%dT%H:%M:%S"),
            "lat": location.get("latitude"), "long": location.get("longitude"),
        },
        "drop_info": {
            "name": name, "phone_code": PHONE_CODES.get(country, ""), "phone": str(address.get("telephone") or ""),
            "address": _street(address), "postal_code": postcode(address.get("postcode"), 4),
            "city": address.get("city") or "", "state": address.get("region") or "", "country_code": country,
            "email": address.get("email") or payload.get("customer_email") or "",
        },
        "shipment_details": details,
        "additional": additional,
    }
