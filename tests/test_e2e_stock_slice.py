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

from oms import demo, demo_data, reference, tokens
from oms.erp.landing import record_key
from oms.pipelines.erp_stock import batch_id_for
from oms.stack import control, processes
from oms.warehouse import connect

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
    with connect(warehouse_dsn) as conn:
        reference.upsert_channels(conn, demo.channel_rows(data))
        reference.upsert_locations(conn, data.locations)
        reference.upsert_skus(conn, data.skus)
        for location in data.locations:
            if location["location_type"] == "store":
                reference.upsert_safety_rule(conn, STORE_SAFETY, store_id=location["store_id"])
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
