"""Fixtures of the inventory-ledger tests: a warehouse of their own in the test cluster,
reference data, an ERP snapshot built into the marts by the real ATP build (dbt), tokens, and
the API app. Each test then works on the live ledger (movements, reservations, postings) of its
own SKUs; `clean_ledger` empties the ledger tables so tests do not see each other's holds.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from oms import reference, tokens
from oms.warehouse import apply_ddl, connect

from .helpers import CHANNELS, DBT_TARGET, EXTRA_SKUS, GIFT, LOCATIONS, SAFETY_RULES, SNAPSHOT_AT, STOCK


@pytest.fixture(scope="session")
def ledger_dsn(pg_cluster):
    from oms.tasks import atp_build as atp

    from ..conftest import fresh_database

    dsn = fresh_database(pg_cluster, "oms_test_ledger")
    apply_ddl(dsn)
    with connect(dsn) as conn:
        reference.upsert_channels(conn, CHANNELS)
        reference.upsert_locations(conn, LOCATIONS)
        reference.upsert_skus(conn, [dict(sku=s, name=s, category="apparel") for s in [*STOCK, *EXTRA_SKUS]]
                              + [dict(sku=GIFT, name="Gift card", is_stock_managed=False)])
        reference.upsert_safety_rule(conn, 1, store_id="AE-ST-02")
        for qty, store_id, sku in SAFETY_RULES:
            reference.upsert_safety_rule(conn, qty, store_id=store_id, sku=sku)
        with conn.cursor().copy("COPY raw.erp_stock (record_key, store_id, sku, modified_at, payload, batch_id,"
                                " data_interval_start, data_interval_end) FROM STDIN") as copy:
            for sku, stores in STOCK.items():
                for store, qty in stores.items():
                    payload = {"itemNumber": sku, "locationCode": store, "variantCode": "", "inventory": qty,
                               "unitOfMeasureCode": "PCS", "lastModifiedDateTime": SNAPSHOT_AT.isoformat()}
                    copy.write_row((f"{store}/{sku}", store, sku, SNAPSHOT_AT, psycopg.types.json.Jsonb(payload),
                                    "ledger-fixture", SNAPSHOT_AT - timedelta(minutes=15), SNAPSHOT_AT))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMS_DBT_TARGET_PATH", str(DBT_TARGET))
        result = atp.build(dsn, "ledger-fixture", SNAPSHOT_AT)
    assert result["dbt_failed"] == 0
    return dsn


@pytest.fixture()
def clean_ledger(ledger_dsn):
    """An empty ledger on top of the fixture's snapshot (marts stay as built)."""
    with connect(ledger_dsn) as conn:
        conn.execute("TRUNCATE oms.erp_movement, oms.reservation, oms.reservation_shortfall, oms.sales_posting, raw.quarantine, oms.shipment,"
                     " oms.shipment_event, oms.shipment_magento_push RESTART IDENTITY")
    return ledger_dsn


@pytest.fixture(scope="session")
def ledger_tokens(ledger_dsn) -> dict[str, str]:
    with connect(ledger_dsn) as conn:
        return {scope: tokens.create_token(conn, f"ledger-{scope}", [scope]) for scope in ("stock:read", "erp:write")}


@pytest.fixture(scope="session")
def api_client(ledger_dsn):
    """The FastAPI app in process (lifespan included: the psycopg pool opens and closes)."""
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(ledger_dsn)) as client:
        yield client


