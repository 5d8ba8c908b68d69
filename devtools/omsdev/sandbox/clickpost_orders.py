"""Validation of Clickpost create-order bodies (v3 India-style nested, v4 international).

Returns a normalised request or the Clickpost error code + message the API would answer
(contracts §2.3 status table). Checks run in the order a caller is most likely to trip on them,
and every missing field is named in one message so a platform bug is obvious from one call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .clickpost_codes import COURIERS

V3_REQUIRED: dict[str, tuple[str, ...]] = {
    "pickup_info": (
        "pickup_name",
        "pickup_phone",
        "pickup_address",
        "pickup_city",
        "pickup_pincode",
        "pickup_country",
    ),
    "drop_info": ("drop_name", "drop_phone", "drop_address", "drop_city", "drop_pincode", "drop_country"),
    "shipment_details": (
        "order_type",
        "invoice_value",
        "reference_number",
        "weight",
        "length",
        "breadth",
        "height",
    ),
}
V4_REQUIRED: dict[str, tuple[str, ...]] = {
    "pickup_info": ("name", "phone", "address", "city", "country_code"),
    "drop_info": ("name", "phone", "address", "city", "country_code"),
    "shipment_details": (
        "order_type",
        "invoice_value",
        "reference_number",
        "weight",
        "length",
        "breadth",
        "height",
        "currency_code",
    ),
}
ORDER_TYPES = frozenset({"COD", "PREPAID", "EXCHANGE"})
DELIVERY_TYPES = frozenset({"FORWARD", "RVP"})


@dataclass(frozen=True)
class CreateOrder:
    version: int
    reference_number: str
    order_type: str
    cod_value: float
    delivery_type: str
    cp_id: int | None
    account_code: str | None
    awb_number: str | None
    wants_label: bool
    run_async: bool
    pickup_postcode: str
    drop_postcode: str
    drop_name: str
    drop_city: str
    drop_country: str
    pickup_name: str
    pickup_city: str
    items: list[dict[str, Any]]


@dataclass(frozen=True)
class Rejection:
    status: int
    message: str
    reference_number: str | None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _additional(body: dict[str, Any]) -> dict[str, Any]:
    additional = body.get("additional")
    return additional if isinstance(additional, dict) else {}


def _flag(additional: dict[str, Any], name: str, default: bool) -> bool:
    # Clickpost's own sample spells the label flag "label " (trailing space): accept both.
    for key in (name, f"{name} "):
        if key in additional:
            return bool(additional[key])
    return default


def validate(body: Any, version: int) -> CreateOrder | Rejection:
    if not isinstance(body, dict):
        return Rejection(400, "Bad request: body must be a JSON object", None)
    required = V3_REQUIRED if version == 3 else V4_REQUIRED
    details = body.get("shipment_details") if isinstance(body.get("shipment_details"), dict) else {}
    reference = details.get("reference_number")
    reference = None if _blank(reference) else str(reference)
    missing = [
        f"{section}.{name}"
        for section, names in required.items()
        for name in names
        if _blank((body.get(section) or {}).get(name) if isinstance(body.get(section), dict) else None)
    ]
    if missing:
        return Rejection(400, "Bad request: missing required field(s): " + ", ".join(missing), reference)
    assert reference is not None  # checked as a required field above
    items = details.get("items")
    if not isinstance(items, list) or not items:
        return Rejection(312, "Items missing", reference)
    if not all(
        isinstance(i, dict) and not _blank(i.get("sku")) and _positive(i.get("quantity")) for i in items
    ):
        return Rejection(313, "Bad items format: every item needs a sku and a quantity > 0", reference)
    order_type = str(details["order_type"]).upper()
    if order_type not in ORDER_TYPES:
        return Rejection(307, f"Invalid order type: {details['order_type']}", reference)
    cod_value = _float(details.get("cod_value"))
    if order_type == "COD" and (cod_value is None or cod_value <= 0):
        return Rejection(315, "Invalid COD value: cod_value must be greater than 0 for COD", reference)
    if order_type == "PREPAID" and cod_value not in (None, 0.0):
        return Rejection(315, "Invalid COD value: cod_value must be 0 for PREPAID", reference)
    additional = _additional(body)
    delivery_type = str(additional.get("delivery_type") or details.get("delivery_type") or "FORWARD").upper()
    if delivery_type not in DELIVERY_TYPES:
        return Rejection(309, f"Invalid delivery type: {delivery_type}", reference)
    if delivery_type == "RVP" and _blank(additional.get("rvp_reason")):
        return Rejection(310, "RVP reason missing", reference)
    cp_id: int | None = None
    if not _blank(details.get("courier_partner")):
        try:
            cp_id = int(details["courier_partner"])
        except (TypeError, ValueError):
            cp_id = -1
        if cp_id not in COURIERS:
            return Rejection(302, f"Invalid cp_id: {details['courier_partner']}", reference)
        if order_type == "COD" and not COURIERS[cp_id].cod:
            return Rejection(
                307, f"Invalid order type: {COURIERS[cp_id].name} does not accept COD", reference
            )
    pickup, drop = body["pickup_info"], body["drop_info"]
    prefix = "drop_" if version == 3 else ""
    drop_postcode = drop.get("drop_pincode") if version == 3 else drop.get("postal_code")
    pickup_postcode = pickup.get("pickup_pincode") if version == 3 else pickup.get("postal_code")
    return CreateOrder(
        version=version,
        reference_number=reference,
        order_type=order_type,
        cod_value=cod_value or 0.0,
        delivery_type=delivery_type,
        cp_id=cp_id,
        account_code=additional.get("account_code") or details.get("account_code"),
        awb_number=None if _blank(additional.get("awb_number")) else str(additional["awb_number"]),
        wants_label=_flag(additional, "label", True) and delivery_type != "RVP",
        run_async=_flag(additional, "async", False),
        pickup_postcode=str(pickup_postcode or ""),
        drop_postcode=str(drop_postcode or ""),
        drop_name=str(drop.get(f"{prefix}name")),
        drop_city=str(drop.get(f"{prefix}city")),
        drop_country=str(drop.get("drop_country") if version == 3 else drop.get("country_code")),
        pickup_name=str(pickup.get("pickup_name") if version == 3 else pickup.get("name")),
        pickup_city=str(pickup.get("pickup_city") if version == 3 else pickup.get("city")),
        items=items,
    )


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _positive(value: Any) -> bool:
    number = _float(value)
    return number is not None and number > 0
