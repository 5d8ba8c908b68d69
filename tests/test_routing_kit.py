"""Builders shared by the routing tests (no tests here): a small Dubai network, orders, profiles,
and a warehouse holding that network."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from oms import reference
from oms.routing import Candidate, Order, OrderLine, RoutingContext, RoutingProfile
from oms.warehouse import apply_ddl, connect

from .conftest import fresh_database

EXAMPLES = Path(__file__).resolve().parents[1] / "plugins" / "oms" / "routing" / "examples"
NOW = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
CUSTOMER = (25.2048, 55.2708)   # Downtown Dubai

# store_id: (type, lat, lon, city)
SITES = {
    "AE-WH-01": ("warehouse", 25.0037, 55.0876, "Dubai"),        # Jebel Ali, ~29 km
    "AE-ST-01": ("store", 25.1972, 55.2744, "Dubai"),            # Dubai Mall, ~1 km
    "AE-ST-02": ("store", 25.1181, 55.2006, "Dubai"),            # Mall of the Emirates, ~12 km
    "AE-ST-03": ("store", 25.2637, 55.3270, "Dubai"),            # Deira, ~9 km
    "AE-ST-04": ("store", 24.4539, 54.3773, "Abu Dhabi"),        # ~125 km
}

AE_WEB = dict(channel_code="ae_web", country_code="AE", name="AE", currency_code="AED", magento_website_code="ae",
              magento_store_code="ae", magento_stock_id=2)


def dubai_warehouse(pg_cluster, database: str) -> str:
    """A fresh warehouse database whose reference data is the AE web channel and the SITES network
    (every store ships and takes pickups)."""
    dsn = fresh_database(pg_cluster, database)
    apply_ddl(dsn)
    with connect(dsn) as conn:
        reference.upsert_channels(conn, [AE_WEB])
        reference.upsert_locations(conn, [
            dict(store_id=sid, name=sid, country_code="AE", location_type=kind, latitude=lat, longitude=lon, city=city,
                 ship_from_store=kind == "store", pickup_enabled=kind == "store")
            for sid, (kind, lat, lon, city) in SITES.items()])
    return dsn


def cand(store_id: str, atp: dict[str, float] | None = None, **kw) -> Candidate:
    kind, lat, lon, city = SITES.get(store_id, ("store", None, None, None))
    data = dict(store_id=store_id, location_type=kind, country_code="AE", latitude=lat, longitude=lon, city=city,
                ship_from_store=kind == "store", pickup_enabled=kind == "store", atp=atp or {})
    data.update(kw)
    return Candidate(**data)


def network(atp: dict[str, dict[str, float]], **per_store) -> list[Candidate]:
    return [cand(sid, stock, **per_store.get(sid, {})) for sid, stock in atp.items()]


def order(*lines, increment_id: str = "100001", **kw) -> Order:
    """order(("A", 1), ("B", 2, "shoes"), …): lines numbered 1, 2, …"""
    data = dict(increment_id=increment_id, country_code="AE", channel_code="ae_web", shipping_method="flatrate_flatrate",
                order_value=100.0, latitude=CUSTOMER[0], longitude=CUSTOMER[1], city="Dubai", payment_releasable=True,
                created_at=NOW,
                lines=[OrderLine(line_key=str(i), sku=line[0], qty=line[1], category=line[2] if len(line) > 2 else None)
                       for i, line in enumerate(lines, 1)])
    data.update(kw)
    return Order(**data)


def profile(*rules: dict, version: int = 1, name: str = "test") -> RoutingProfile:
    return RoutingProfile.model_validate({"country_code": "AE", "name": name, "rules": list(rules),
                                         "profile_id": version, "version": version})


def example(name: str, version: int = 1) -> RoutingProfile:
    doc = json.loads((EXAMPLES / f"{name}.json").read_text())
    return RoutingProfile.model_validate({**doc, "profile_id": version, "version": version})


def ctx(now: datetime = NOW, rate_cards=()) -> RoutingContext:
    return RoutingContext(now=now, rate_cards=list(rate_cards))


def stores_of(decision) -> list[str]:
    return [s.store_id for s in decision.shipments]


def report(decision, store_id: str):
    return next(c for c in decision.candidates if c.store_id == store_id)


def reason_codes(decision, store_id: str) -> set[str]:
    return {r.code for r in report(decision, store_id).reasons}
