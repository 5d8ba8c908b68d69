"""Stock out to Magento: delta publishing against the ledger, through real HTTP to the Magento
sandbox, with faults; Magento's salable quantity ends equal to the platform's channel ATP."""

from __future__ import annotations

import httpx
import pytest

from oms.integrations.magento import MagentoClient
from oms.publishing.publisher import PublishIncomplete, compute_delta, publish
from oms.warehouse import apply_ddl, connect
from omsdev import demo_data
from omsdev.demo import load_reference

from .conftest import fresh_database
from .stock_scenario import WINDOW, land_and_build

STAMP = "2026-04-01T00:30:00Z"


@pytest.fixture(scope="module")
def scenario(pg_cluster, sandboxes):
    dsn = fresh_database(pg_cluster, "oms_test_publish")
    apply_ddl(dsn)
    data = demo_data.generate(skus=40, stores_per_country=3, orders=0, seed=5, as_of=WINDOW[0].replace(minute=30))
    load_reference(dsn, data)
    land_and_build(dsn, data.stock_rows)
    magento = pg_cluster.magento_url
    httpx.post(f"{magento}/_sandbox/reset", json={}).raise_for_status()
    httpx.post(f"{magento}/_sandbox/sources", json=data.magento_sources()).raise_for_status()
    httpx.post(f"{magento}/_sandbox/stocks", json=data.magento_stocks()).raise_for_status()
    return dsn, data


@pytest.fixture()
def client(settings):
    with MagentoClient(settings.magento_url, settings.magento_token, attempts=8) as msi:
        yield msi


def magento_items(settings) -> dict[tuple[str, str], tuple[float, int]]:
    rows = httpx.get(f"{settings.magento_url}/_sandbox/source-items", timeout=30).json()
    return {(r["sku"], r["source_code"]): (float(r["quantity"]), int(r["status"])) for r in rows}


def ledger(dsn) -> dict[tuple[str, str], tuple[float, int]]:
    with connect(dsn) as conn:
        rows = conn.execute("SELECT sku, source_code, quantity, status FROM oms.publish_ledger").fetchall()
    return {(r["sku"], r["source_code"]): (float(r["quantity"]), int(r["status"])) for r in rows}


def set_faults(settings, **faults):
    httpx.post(f"{settings.magento_url}/_sandbox/faults", json=faults, timeout=10).raise_for_status()


def test_publish_then_nothing_to_send(settings, scenario, client):
    dsn, data = scenario
    report = publish(dsn, client, chunk_size=50, run_id="first")
    assert report.changed == report.accepted == len(data.stock_rows)
    assert magento_items(settings) == ledger(dsn)
    assert all(qty >= 0 and status == (1 if qty > 0 else 0) for qty, status in ledger(dsn).values())
    again = publish(dsn, client, chunk_size=50, run_id="second")
    assert again.changed == 0 and again.sent == 0


def test_magento_salable_equals_channel_atp(settings, scenario, client):
    dsn, data = scenario
    publish(dsn, client, chunk_size=50)
    stocks = {c["country_code"]: c["stock_id"] for c in data.countries}
    with connect(dsn) as conn:
        expected = conn.execute("SELECT country_code, sku, atp_qty FROM marts.fct_atp_country ORDER BY sku LIMIT 12").fetchall()
    for row in expected:
        assert client.salable_quantity(row["sku"], stocks[row["country_code"]]) == pytest.approx(float(row["atp_qty"]))


def test_converges_under_5xx_and_429(settings, scenario):
    dsn, data = scenario
    # Two attempts per request: some chunks exhaust their retries, so the run-level recovery
    # (ledger true to what was accepted, next run sends the rest) is exercised, not just retries.
    client = MagentoClient(settings.magento_url, settings.magento_token, attempts=2)
    changed = [dict(r, inventory=r["inventory"] + 3, lastModifiedDateTime=STAMP.replace("00:30", "00:40"))
               for r in data.stock_rows[:120]]
    land_and_build(dsn, changed, batch="changed")
    with connect(dsn) as conn:
        pending = len(compute_delta(conn))
    assert pending > 0
    set_faults(settings, error_rate=0.3, rate_429=0.1, seed=3)
    try:
        runs = 0
        while True:
            runs += 1
            try:
                publish(dsn, client, chunk_size=7, run_id=f"faulty-{runs}")
                break
            except PublishIncomplete:
                # the ledger holds exactly what Magento accepted so far
                items = magento_items(settings)
                assert all(items.get(key) == value for key, value in ledger(dsn).items())
                assert runs < 10
    finally:
        httpx.delete(f"{settings.magento_url}/_sandbox/faults", timeout=10)
        client.close()
    assert runs > 1, "the fault rate should have defeated at least one chunk's retries"
    assert magento_items(settings) == ledger(dsn)
    with connect(dsn) as conn:
        assert compute_delta(conn) == []
        failed = conn.execute("SELECT count(*) AS n FROM oms.publish_attempt WHERE NOT accepted").fetchone()["n"]
    assert failed > 0


def test_async_bulk_publishes_only_the_change(settings, scenario, client):
    dsn, data = scenario
    publish(dsn, client, chunk_size=50)
    changed = [dict(r, inventory=0, lastModifiedDateTime=STAMP.replace("00:30", "00:50")) for r in data.stock_rows[:9]]
    land_and_build(dsn, changed, batch="zeroed")
    report = publish(dsn, client, mode="async_bulk", chunk_size=4, run_id="bulk")
    assert 0 < report.changed <= 9
    assert report.accepted == report.changed and report.chunks == -(-report.changed // 4)
    items = magento_items(settings)
    assert items == ledger(dsn)
    for row in changed:
        source = row["locationCode"].lower()
        assert items[(row["itemNumber"], source)] == (0.0, 0)


def test_reconciliation_finds_and_repairs_drift(settings, scenario, client):
    from oms.publishing.reconcile import reconcile

    dsn, data = scenario
    publish(dsn, client, chunk_size=50)
    assert reconcile(dsn, client, run_id="clean").drifting == 0
    # someone edits stock in Magento's admin behind the platform's back
    victim = data.stock_rows[0]
    source = victim["locationCode"].lower()
    httpx.post(f"{settings.magento_url}/rest/V1/inventory/source-items", timeout=10,
               headers={"Authorization": f"Bearer {settings.magento_token}"},
               json={"sourceItems": [{"sku": victim["itemNumber"], "source_code": source, "quantity": 999,
                                      "status": 1}]}).raise_for_status()
    report = reconcile(dsn, client, run_id="drift")
    assert report.drifting == 1
    with connect(dsn) as conn:
        drift = conn.execute("SELECT sku, drift FROM oms.stock_drift WHERE run_id = 'drift'").fetchone()
    assert drift["sku"] == victim["itemNumber"] and float(drift["drift"]) > 0
    repaired = publish(dsn, client, chunk_size=50, run_id="repair")
    assert repaired.changed >= 1
    assert magento_items(settings) == ledger(dsn)
    assert reconcile(dsn, client, run_id="after").drifting == 0


def test_an_erp_movement_is_published_without_waiting_for_dbt(settings, scenario, client):
    from datetime import UTC, datetime

    from oms.inventory.movements import record_movements

    dsn, data = scenario
    publish(dsn, client, chunk_size=50)
    # a warehouse row the other tests leave alone (the async-bulk test zeroes the first nine)
    row = next(r for r in data.stock_rows[120:] if r["locationCode"].endswith("WH-01") and r["inventory"] > 5)
    key = (row["itemNumber"], row["locationCode"].lower())
    before = magento_items(settings)[key][0]
    with connect(dsn) as conn:
        answer = record_movements(conn, [{"document_id": "ADJ-PUB-1", "line_no": 1, "movement_type": "adjustment",
                                          "store_id": row["locationCode"], "sku": row["itemNumber"], "qty": -4,
                                          "posted_at": "2026-11-01T00:00:00Z"}], now=datetime.now(UTC))
    assert answer["accepted"] == 1, answer
    report = publish(dsn, client, chunk_size=50, run_id="after-movement")
    assert report.changed == 1
    assert magento_items(settings)[key][0] == pytest.approx(before - 4)
