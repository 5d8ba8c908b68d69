"""End to end through every layer: ERP sandbox (real HTTP) → erp_stock_ingest (dag.test) →
raw + quarantine → atp_build (dag.test, real dbt) → marts → API (uvicorn process, real HTTP).

Expected ATP is computed here from the generated data, independently of the SQL under test.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from oms import tokens
from oms.erp.landing import record_key
from oms.tasks.erp_stock_ingest import batch_id_for
from oms.warehouse import connect
from omsdev import demo, demo_data
from omsdev.stack import control, processes

pytestmark = pytest.mark.e2e

# dag.test(logical_date=END) runs the */15 interval that ends there: [10:00, 10:15)
WINDOW_START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
WINDOW_END = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)
STAMP = datetime(2026, 3, 2, 10, 5, tzinfo=UTC)
STORE_SAFETY = 2
DAGS = Path(__file__).resolve().parents[1] / "dags"


@pytest.fixture(scope="module")
def dagbag(airflow_env):
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS))


@pytest.fixture(scope="module")
def scenario(settings, warehouse_dsn, sandboxes):
    data = demo_data.generate(skus=25, stores_per_country=3, orders=0, seed=11, as_of=STAMP)
    bad = data.bad_stock_rows(5)
    demo.load_reference(warehouse_dsn, data, store_safety=STORE_SAFETY)
    httpx.post(f"{settings.erp_url}/_sandbox/reset", json={}, timeout=30).raise_for_status()
    httpx.post(f"{settings.erp_url}/_sandbox/stock", json=data.stock_rows + bad, timeout=60).raise_for_status()
    return data, bad


def served_rows(data, bad) -> list[dict]:
    """What the ERP page serves: its current row per (location, item, variant) — a bad row posted
    for an existing key replaces the good one, as a bad value in the ERP would."""
    current = {}
    for row in data.stock_rows + bad:
        current[(row.get("locationCode"), row.get("itemNumber"), row.get("variantCode"))] = row
    return list(current.values())


def expected_atp(data, rows) -> tuple[dict, dict]:
    locations = {loc["store_id"]: loc for loc in data.locations}
    known_skus = {s["sku"] for s in data.skus}
    buffers = {c["country_code"]: 0.0 for c in data.countries}  # demo channels hold no buffer
    store_atp: dict[tuple[str, str], float] = {}
    country_atp: dict[tuple[str, str], float] = defaultdict(float)
    for row in rows:
        loc = locations.get(row.get("locationCode"))
        if loc is None or row["itemNumber"] not in known_skus or not isinstance(row["inventory"], int | float) \
                or row["inventory"] < 0:
            continue  # quarantined
        safety = STORE_SAFETY if loc["location_type"] == "store" else 0
        atp = max(float(row["inventory"]) - safety, 0.0)
        store_atp[(loc["store_id"], row["itemNumber"])] = atp
        if loc["location_type"] == "warehouse" or loc["ship_from_store"]:
            country_atp[(loc["country_code"], row["itemNumber"])] += atp
    return store_atp, {k: max(v - buffers[k[0]], 0.0) for k, v in country_atp.items()}


def marts_hash(dsn: str) -> str:
    with connect(dsn) as conn:
        return conn.execute(
            "SELECT md5(coalesce((SELECT string_agg(t::text, '|' ORDER BY store_id, sku) FROM marts.fct_atp_store t), '')"
            " || coalesce((SELECT string_agg(t::text, '|' ORDER BY country_code, sku) FROM marts.fct_atp_country t), ''))"
            " AS h"
        ).fetchone()["h"]


def test_stock_slice_end_to_end(settings, warehouse_dsn, dagbag, scenario):
    data, bad = scenario
    ingest = dagbag.get_dag("erp_stock_ingest").test(logical_date=WINDOW_END)
    assert ingest.state == "success"
    build = dagbag.get_dag("atp_build").test(logical_date=WINDOW_END)
    assert build.state == "success"

    # bad rows were quarantined with their payload, good rows were not
    with connect(warehouse_dsn) as conn:
        quarantined = {r["record_key"] for r in conn.execute(
            "SELECT DISTINCT record_key FROM raw.quarantine WHERE source = 'erp_stock' AND resolved_at IS NULL")}
        landed = conn.execute("SELECT count(*) AS n FROM raw.erp_stock WHERE batch_id = %s",
                              (batch_id_for(WINDOW_START, WINDOW_END),)).fetchone()["n"]
    assert {record_key(r) for r in bad} <= quarantined
    served = served_rows(data, bad)
    assert not quarantined & {record_key(r) for r in served if r not in bad}
    assert landed == len(served)

    # the API, as a real uvicorn process over HTTP, answers what we computed independently
    store_expected, country_expected = expected_atp(data, served)
    with connect(warehouse_dsn) as conn:
        token = tokens.create_token(conn, "e2e", ["stock:read"])
    api = control.api_service(settings)
    control.start_service(settings, api, timeout=60)
    try:
        headers = {"Authorization": f"Bearer {token}"}
        skus = sorted({sku for _, sku in store_expected})[:6]
        for sku in skus:
            body = httpx.get(f"{settings.api_url}/v1/atp/{sku}", headers=headers, timeout=10).json()
            assert body["snapshot"]["snapshot_id"] >= 1
            countries = {c["country_code"]: c for c in body["countries"]}
            for (country, expected_sku), qty in country_expected.items():
                if expected_sku == sku:
                    assert float(countries[country]["atp_qty"]) == pytest.approx(qty), (sku, country)
            for country in countries.values():
                assert {s["store_id"] for s in country["stores"]} == {
                    store for (store, s_sku) in store_expected
                    if s_sku == sku and store.startswith(country["country_code"])}
                for store in country["stores"]:
                    assert float(store["atp_qty"]) == pytest.approx(store_expected[(store["store_id"], sku)])
        # a store filter narrows the breakdown; unknown SKU is a clear 404; no token is 401
        some_store = data.locations[1]["store_id"]
        narrowed = httpx.get(f"{settings.api_url}/v1/atp/{skus[0]}", params={"store_id": some_store},
                             headers=headers, timeout=10).json()
        assert [s["store_id"] for c in narrowed["countries"] for s in c["stores"]] == [some_store]
        assert httpx.get(f"{settings.api_url}/v1/atp/NO-SUCH-SKU", headers=headers, timeout=10).status_code == 404
        assert httpx.get(f"{settings.api_url}/v1/atp/{skus[0]}", timeout=10).status_code == 401
    finally:
        processes.stop(settings.state_dir, api.name)

    # re-running the same window changes nothing in raw, quarantine or the marts
    before = marts_hash(warehouse_dsn)
    with connect(warehouse_dsn) as conn:
        counts_before = conn.execute(
            "SELECT (SELECT count(*) FROM raw.erp_stock) AS raw, (SELECT count(*) FROM raw.quarantine) AS q").fetchone()
    assert dagbag.get_dag("erp_stock_ingest").test(logical_date=WINDOW_END).state == "success"
    assert dagbag.get_dag("atp_build").test(logical_date=WINDOW_END).state == "success"
    with connect(warehouse_dsn) as conn:
        counts_after = conn.execute(
            "SELECT (SELECT count(*) FROM raw.erp_stock) AS raw, (SELECT count(*) FROM raw.quarantine) AS q").fetchone()
    assert counts_after == counts_before
    assert marts_hash(warehouse_dsn) == before


# --- a Magento order through the DAGs, the order API, live ATP, and Magento ------------
ORDER_WINDOW_END = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)  # magento_orders_ingest */10: [10:20, 10:30)
ORDER_TIME = datetime(2026, 3, 2, 10, 22, tzinfo=UTC)


def _live(client, headers, sku, country="AE"):
    client.portal.call(client.app.state.atp_cache.barrier)  # the DAGs' commits have reached the API's cache
    body = client.get(f"/v1/atp/{sku}", params={"country": country}, headers=headers).json()
    (only,) = body["countries"]
    return float(only["atp_qty"]), {s["store_id"]: float(s["atp_qty"]) for s in only["stores"]}


def test_an_order_moves_atp_by_its_stock_lines_and_magento_subtracts_it_once(settings, warehouse_dsn, dagbag,
                                                                               scenario):
    """Runs after test_stock_slice_end_to_end (same module): the stock marts are built."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    from .magento_shapes import MIXED_ORDER_LINES, address, item, mixed_order, order

    data, _ = scenario
    store = next(loc for loc in data.locations if loc["country_code"] == "AE" and loc["pickup_enabled"]
                 and loc["ship_from_store"])
    with connect(warehouse_dsn) as conn:
        # jeans (click & collect) needs units at the pickup store; every SKU some depth in AE
        rows = conn.execute(
            """SELECT c.sku, coalesce(s.atp_qty, 0) >= 2 AS at_store FROM marts.fct_atp_country c
               LEFT JOIN marts.fct_atp_store s ON s.sku = c.sku AND s.store_id = %s
               WHERE c.country_code = 'AE' AND c.atp_qty >= 6 ORDER BY c.sku""", (store["store_id"],)).fetchall()
        token = tokens.create_token(conn, "e2e-orders", ["stock:read", "orders:read"])
    jeans_sku = next(r["sku"] for r in rows if r["at_store"])
    others = [r["sku"] for r in rows if r["sku"] != jeans_sku][:3]
    skus = dict(zip(("tshirt", "comp_a", "comp_b", "jeans"), [*others, jeans_sku], strict=True))
    headers = {"Authorization": f"Bearer {token}"}
    mixed = mixed_order(900, ORDER_TIME, skus)
    jeans = skus["jeans"]
    collect = order(901, [item(90101, jeans, qty=1, price=40.0)], ORDER_TIME,
                    shipping_method="instore_pickup", pickup_location_code=store["magento_source_code"],
                    shipping=address("shipping", "AE", street=[store["address_line"]]))
    magento = settings.magento_url
    httpx.post(f"{magento}/_sandbox/reset", json={}, timeout=30).raise_for_status()
    httpx.post(f"{magento}/_sandbox/sources", json=data.magento_sources(), timeout=30).raise_for_status()
    httpx.post(f"{magento}/_sandbox/stocks", json=data.magento_stocks(), timeout=30).raise_for_status()

    with TestClient(create_app(warehouse_dsn)) as api:
        before = {key: _live(api, headers, sku) for key, sku in skus.items()}
        httpx.post(f"{magento}/_sandbox/orders", json=[mixed, collect], timeout=30).raise_for_status()
        assert dagbag.get_dag("magento_orders_ingest").test(logical_date=ORDER_WINDOW_END).state == "success"
        assert dagbag.get_dag("atp_build").test(logical_date=ORDER_WINDOW_END).state == "success"

        # the order API: exactly the stock lines of Magento's configurable/bundle/simple/virtual rows
        body = api.get(f"/v1/orders/{mixed['increment_id']}", headers=headers).json()
        expected_lines = [(skus.get(key, key), ordered, open_qty)
                          for key, _, ordered, _, _, open_qty, _, _, _ in MIXED_ORDER_LINES]
        assert [(line["sku"], float(line["qty_ordered"]), float(line["qty_open"])) for line in body["lines"]] == \
            [(sku, float(o), float(q)) for sku, o, q in expected_lines]

        # ATP moved by exactly the open stock quantities: country-level for the shipped order,
        # at the pickup store for click & collect (and so the country too: the store is eligible)
        open_qty = {key: float(q) for key, _, _, _, _, q, _, _, physical in MIXED_ORDER_LINES if physical}
        for key, sku in skus.items():
            country_after, stores_after = _live(api, headers, sku)
            country_before, stores_before = before[key]
            drop = open_qty[key] + (1 if key == "jeans" else 0)
            assert country_after == pytest.approx(country_before - drop), key
            store_drop = 1 if key == "jeans" else 0
            assert stores_after[store["store_id"]] == pytest.approx(stores_before[store["store_id"]] - store_drop), key

        # Magento: with either publishing contract its salable quantity equals our channel ATP,
        # i.e. each open order is subtracted exactly once
        stock_id = next(c["stock_id"] for c in data.countries if c["country_code"] == "AE")
        headers_magento = {"Authorization": f"Bearer {settings.magento_token}"}

        def salable(sku):
            return float(httpx.get(f"{magento}/rest/V1/inventory/get-product-salable-quantity/{sku}/{stock_id}",
                                   headers=headers_magento, timeout=10).json())

        with connect(warehouse_dsn) as conn:
            conn.execute("TRUNCATE oms.publish_ledger")  # the Magento sandbox was reset above
        assert dagbag.get_dag("magento_stock_publish").test(logical_date=ORDER_WINDOW_END).state == "success"
        for key, sku in skus.items():
            assert salable(sku) == pytest.approx(_live(api, headers, sku)[0]), ("physical", key)

        with connect(warehouse_dsn) as conn:
            conn.execute("UPDATE ref.channel SET publish_mode = 'sellable' WHERE country_code = 'AE'")
        httpx.post(f"{magento}/_sandbox/stocks/{stock_id}/reservations", json={"enabled": False},
                   timeout=10).raise_for_status()
        try:
            assert dagbag.get_dag("atp_build").test(logical_date=ORDER_WINDOW_END).state == "success"
            assert dagbag.get_dag("magento_stock_publish").test(logical_date=ORDER_WINDOW_END).state == "success"
            for key, sku in skus.items():
                assert salable(sku) == pytest.approx(_live(api, headers, sku)[0]), ("sellable", key)
        finally:
            with connect(warehouse_dsn) as conn:
                conn.execute("UPDATE ref.channel SET publish_mode = 'physical' WHERE country_code = 'AE'")
