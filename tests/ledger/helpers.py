"""Constants and helpers of the inventory-ledger tests (fixtures are in conftest.py).

Stock in the fixture's ERP snapshot (taken at SNAPSHOT_AT), per SKU, is in STOCK:

    AE-WH-01  warehouse, eligible              AE-ST-01  store, ship-from-store + pickup (eligible)
    AE-ST-02  store, pickup only (not eligible) QA-WH-01  warehouse (QA)
    AE buffer 1, QA buffer 0; safety stock 1 at AE-ST-02, and per SKU in SAFETY_RULES.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from oms.warehouse import connect

DBT_TARGET = Path(os.environ["OMS_STATE_DIR"]) / "dbt-target-ledger"
NOW = datetime.now(UTC).replace(microsecond=0)
SNAPSHOT_AT = NOW - timedelta(days=1)
BEFORE_SNAPSHOT = SNAPSHOT_AT - timedelta(hours=1)
AFTER_SNAPSHOT = NOW - timedelta(hours=1)

CHANNELS = [
    dict(channel_code="ae_web", country_code="AE", name="UAE", currency_code="AED", magento_website_code="ae",
         magento_store_code="ae_en", magento_stock_id=2, magento_store_id=1, buffer_qty=1),
    dict(channel_code="qa_web", country_code="QA", name="Qatar", currency_code="QAR", magento_website_code="qa",
         magento_store_code="qa_en", magento_stock_id=3, magento_store_id=3, buffer_qty=0),
]
LOCATIONS = [
    dict(store_id="AE-WH-01", name="Jebel Ali DC", country_code="AE", location_type="warehouse", city="Dubai"),
    dict(store_id="AE-ST-01", name="Dubai Mall", country_code="AE", location_type="store", ship_from_store=True,
         pickup_enabled=True, city="Dubai"),
    dict(store_id="AE-ST-02", name="Mall of the Emirates", country_code="AE", location_type="store",
         pickup_enabled=True),
    dict(store_id="QA-WH-01", name="Doha DC", country_code="QA", location_type="warehouse"),
]
# sku -> {store: on hand in the snapshot}
STOCK = {
    "MV-TEE": {"AE-WH-01": 10, "AE-ST-01": 4, "AE-ST-02": 6},
    "MV-CAP": {"AE-WH-01": 3},
    "REC-JEANS": {"AE-WH-01": 5, "AE-ST-01": 2},
    "RET-DRESS": {"AE-ST-01": 1},
    "RACE-SNEAKER": {"AE-ST-01": 7},
    "RACE-MIX": {"AE-ST-01": 6},
    "SYNC-SHIRT": {"AE-WH-01": 8, "AE-ST-01": 3, "AE-ST-02": 5, "QA-WH-01": 4},
    "RES-BAG": {"AE-WH-01": 4, "AE-ST-01": 2},
    "BATCH-1": {"AE-WH-01": 2, "QA-WH-01": 9},
    "BATCH-2": {"AE-ST-01": 5},
    "POST-SOCKS": {"AE-ST-01": 9},
    # orders landing (tests/ledger/test_order_landing.py)
    "PUSH-TEE": {"AE-WH-01": 6, "AE-ST-01": 2},
    "PUSH-CAP": {"AE-WH-01": 4},
    "PUSH-BAG": {"AE-WH-01": 5, "AE-ST-01": 2},
    "PUSH-SOCK": {"AE-WH-01": 5},
    "BACK-CAP": {"AE-WH-01": 3},
    # shipments post sales (tests/ledger/test_shipment_postings.py)
    "SHIP-POLO": {"AE-WH-01": 5, "AE-ST-01": 3},
    "LIFE-PHYSICAL": {"AE-WH-01": 5, "AE-ST-01": 3},
    "LIFE-SELLABLE": {"AE-WH-01": 5, "AE-ST-01": 3},
    # transfers to a pickup store (tests/ledger/test_transfers.py)
    "TRF-PHYSICAL": {"AE-WH-01": 5, "AE-ST-01": 0},
    "TRF-SELLABLE": {"AE-WH-01": 5, "AE-ST-01": 0},
    # click & collect at a pickup-only store (tests/ledger/test_pickup_only_store.py)
    "PICK-PHYSICAL": {"AE-WH-01": 4, "AE-ST-02": 5},
    "PICK-SELLABLE": {"AE-WH-01": 4, "AE-ST-02": 5},
    "PICK-RACE": {"AE-WH-01": 4, "AE-ST-02": 5},
    "PICK-FAST-2": {"AE-WH-01": 4, "AE-ST-02": 5},
    "PICK-FAST-1": {"AE-WH-01": 4, "AE-ST-01": 5},
    "PICK-SAFETY": {"AE-WH-01": 4, "AE-ST-01": 4},   # safety stock 2 at AE-ST-01 (SAFETY_RULES)
    "PICK-READY": {"AE-WH-01": 4, "AE-ST-01": 5},
    "PICK-SHORT": {"AE-WH-01": 4},
}
# (safety qty, store, sku) rules beside the store-wide one at AE-ST-02
SAFETY_RULES = [(2, "AE-ST-01", "PICK-SAFETY")]
EXTRA_SKUS = ["NEW-NOSTOCK"]  # known, no stock anywhere
GIFT = "GIFT-CARD"           # known, not stock-managed


def rebuild_marts(dsn: str) -> dict:
    from oms.tasks import atp_build as atp

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMS_DBT_TARGET_PATH", str(DBT_TARGET))
        return atp.build(dsn, "ledger-rebuild", None)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def store_live(dsn: str, sku: str) -> dict[str, dict]:
    with connect(dsn) as conn:
        return {r["store_id"]: r for r in conn.execute("SELECT * FROM oms.atp_store_live(ARRAY[%s])", (sku,))}


def country_live(dsn: str, sku: str) -> dict[str, dict]:
    with connect(dsn) as conn:
        return {r["country_code"]: r for r in conn.execute("SELECT * FROM oms.atp_country_live(ARRAY[%s])", (sku,))}


def cache_caught_up(client) -> None:
    """Wait until the app's ATP cache has heard every change committed so far (its barrier): the
    tests write the ledger from their own connections, whose changes reach the cache by NOTIFY."""
    client.portal.call(client.app.state.atp_cache.barrier)


def atp_via_api(client, token: str, sku: str, catch_up: bool = True) -> tuple[dict[str, Decimal], dict[str, Decimal], dict]:
    """(country -> atp, store -> atp, body) from GET /v1/atp/{sku}, once the cache has caught up
    with the test's own writes (catch_up=False: at once, as after a write through the API)."""
    if catch_up:
        cache_caught_up(client)
    response = client.get(f"/v1/atp/{sku}", headers=auth(token))
    assert response.status_code == 200, response.text
    body = response.json()
    countries = {c["country_code"]: Decimal(str(c["atp_qty"])) for c in body["countries"]}
    stores = {s["store_id"]: Decimal(str(s["atp_qty"])) for c in body["countries"] for s in c["stores"]}
    return countries, stores, body


def magento(settings, method: str, path: str, **kwargs):
    """One call to the Magento sandbox as the platform makes it (bearer token), answered JSON."""
    response = httpx.request(method, f"{settings.magento_url}{path}", timeout=30,
                             headers={"Authorization": f"Bearer {settings.magento_token}"}, **kwargs)
    response.raise_for_status()
    return response.json()


def magento_under_contract(settings, dsn: str, contract: str, truncate: str = "oms.publish_ledger") -> None:
    """An empty Magento sandbox with the demo's sources and stocks, the AE channel publishing
    under `contract` (physical: Magento reserves too; sellable: Magento's reservations off), and
    the platform's tables in `truncate` (its publish ledger at least: the sandbox was emptied) cleared."""
    magento(settings, "POST", "/_sandbox/reset", json={})
    magento(settings, "POST", "/_sandbox/sources", json=[
        {"source_code": code, "name": code, "enabled": True} for code in ("ae-wh-01", "ae-st-01", "ae-st-02",
                                                                          "qa-wh-01")])
    magento(settings, "POST", "/_sandbox/stocks", json=[
        {"stock_id": 2, "name": "AE", "website_code": "ae", "source_codes": ["ae-wh-01", "ae-st-01", "ae-st-02"],
         "store_ids": [1]},
        {"stock_id": 3, "name": "QA", "website_code": "qa", "source_codes": ["qa-wh-01"], "store_ids": [3]}])
    with connect(dsn) as conn:
        conn.execute(f"TRUNCATE {truncate}")
        conn.execute("UPDATE ref.channel SET publish_mode = %s WHERE country_code = 'AE'", (contract,))
    if contract == "sellable":
        magento(settings, "POST", "/_sandbox/stocks/2/reservations", json={"enabled": False})
