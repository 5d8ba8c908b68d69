"""Shipping settings, from OMS_* environment variables with local defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from oms.settings import SANDBOX_SECRETS

GCC = "AE,SA,QA,KW,BH,OM"


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _set(name: str, default: str) -> frozenset[str]:
    return frozenset(x.strip().upper() for x in _env(name, default).split(",") if x.strip())


@dataclass(frozen=True)
class ShippingSettings:
    # Countries whose shipments use Clickpost's international create-order body (v4); others use v3.
    v4_countries: frozenset[str] = field(default_factory=lambda: _set("OMS_CLICKPOST_V4_COUNTRIES", GCC))
    # The shared value Clickpost sends in the `webhook_key` (or `Authorization`) header.
    webhook_key: str = field(default_factory=lambda: _env(
        "OMS_CLICKPOST_WEBHOOK_KEY", SANDBOX_SECRETS["OMS_CLICKPOST_WEBHOOK_KEY"]))
    # ref.sku has weight_g but no dimensions: one box size per shipment, and a weight for unknown SKUs.
    default_item_weight_g: int = field(default_factory=lambda: int(_env("OMS_SHIP_DEFAULT_WEIGHT_G", "500")))
    box_cm: tuple[int, int, int] = field(default_factory=lambda: tuple(
        int(x) for x in _env("OMS_SHIP_BOX_CM", "30,20,10").split(",")))  # length, breadth, height
    # Cash-on-delivery orders are invoiced when the cash is collected (at delivery), so waiting for
    # their invoice would never ship them: they ship once routed, like Magento merchants do.
    ship_cod_before_invoice: bool = field(
        default_factory=lambda: _env("OMS_SHIP_COD_BEFORE_INVOICE", "1") not in {"0", "false", "no"})
    carrier_code: str = field(default_factory=lambda: _env("OMS_MAGENTO_CARRIER_CODE", "clickpost"))
    # Magento status labels set with the delivery / return comments (custom statuses on the store).
    delivered_status: str = field(default_factory=lambda: _env("OMS_MAGENTO_DELIVERED_STATUS", "delivered"))
    rto_status: str = field(default_factory=lambda: _env("OMS_MAGENTO_RTO_STATUS", "rto"))
    # The customer's tracking link in notifications: the retailer's Clickpost branded tracking
    # page (or its own), with {awb} and {order} filled in.
    tracking_url_template: str = field(default_factory=lambda: _env(
        "OMS_TRACKING_URL_TEMPLATE", "https://track.example.com/{awb}?order={order}"))
    default_phone: str = field(default_factory=lambda: _env("OMS_SHIP_DEFAULT_PHONE", "0000000000"))


def get_shipping_settings() -> ShippingSettings:
    return ShippingSettings()
