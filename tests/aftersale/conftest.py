"""Fixtures of the after-sale tests: a warehouse of their own in the test cluster with reference
data, an ERP snapshot and landed Magento orders built into the marts by the real ATP build (dbt),
the same orders in the Magento sandbox, tokens, the API app, and a real SMTP server (aiosmtpd).
DAGs run with `dag.test()` against this warehouse (its Airflow connection is pointed here)."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import psycopg
import pytest

from oms import reference, tokens
from oms.magento.landing import land_orders
from oms.warehouse import apply_ddl, connect

from .data import CHANNELS, DBT_TARGET, LOCATIONS, ORDERS, SKUS, SNAPSHOT_AT, STOCK


@pytest.fixture(scope="session")
def aftersale_dsn(pg_cluster):
    from oms.tasks import atp_build as atp

    from ..conftest import fresh_database

    dsn = fresh_database(pg_cluster, "oms_test_aftersale")
    apply_ddl(dsn)
    with connect(dsn) as conn:
        reference.upsert_channels(conn, CHANNELS)
        reference.upsert_locations(conn, LOCATIONS)
        reference.upsert_skus(conn, [dict(sku=s, name=s, category="apparel") for s in SKUS])
        with conn.cursor().copy("COPY raw.erp_stock (record_key, store_id, sku, modified_at, payload, batch_id,"
                                " data_interval_start, data_interval_end) FROM STDIN") as copy:
            for (store, sku), qty in STOCK.items():
                payload = {"itemNumber": sku, "locationCode": store, "variantCode": "", "inventory": qty,
                           "unitOfMeasureCode": "PCS", "lastModifiedDateTime": SNAPSHOT_AT.isoformat()}
                copy.write_row((f"{store}/{sku}", store, sku, SNAPSHOT_AT, psycopg.types.json.Jsonb(payload),
                                "aftersale-fixture", SNAPSHOT_AT - timedelta(minutes=15), SNAPSHOT_AT))
        land_orders(conn, ORDERS, "aftersale-orders", SNAPSHOT_AT - timedelta(hours=1), SNAPSHOT_AT, "ae_web")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMS_DBT_TARGET_PATH", str(DBT_TARGET))
        result = atp.build(dsn, "aftersale-fixture", SNAPSHOT_AT)
    assert result["dbt_failed"] == 0
    return dsn


@pytest.fixture(scope="session")
def aftersale_tokens(aftersale_dsn) -> dict[str, str]:
    with connect(aftersale_dsn) as conn:
        every_store = [r["store_id"] for r in conn.execute("SELECT store_id FROM ref.location").fetchall()]
        return {scope: tokens.create_token(conn, f"aftersale-{scope}", [scope],
                                           every_store if scope == "store" else None)
                for scope in ("stock:read", "erp:write", "store", "orders:read")}


@pytest.fixture(scope="session")
def api(aftersale_dsn):
    from fastapi.testclient import TestClient

    from api.app import create_app

    with TestClient(create_app(aftersale_dsn)) as client:
        yield client


@pytest.fixture(scope="session")
def magento(sandboxes, aftersale_dsn):
    """The Magento sandbox holding the same orders as the warehouse."""
    url = sandboxes.magento_url
    httpx.post(f"{url}/_sandbox/reset", json={}, timeout=30).raise_for_status()
    httpx.post(f"{url}/_sandbox/orders", json=ORDERS, timeout=30).raise_for_status()
    return url


@pytest.fixture(scope="module")
def dagbag(airflow_env):
    from airflow.dag_processing.dagbag import DagBag

    from ..conftest import REPO

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.import_errors == {}
    return bag


@pytest.fixture()
def airflow_on_aftersale(aftersale_dsn, settings, magento, monkeypatch):
    """DAG tasks read the warehouse from the oms_warehouse connection: point it at this database
    (and the Magento sandbox holds the orders the outbox refers to)."""
    monkeypatch.setenv("AIRFLOW_CONN_OMS_WAREHOUSE", json.dumps(
        {"conn_type": "postgres", "host": settings.pg_host, "port": settings.pg_port, "login": settings.pg_user,
         "password": settings.pg_password, "schema": "oms_test_aftersale"}))
    return aftersale_dsn


class SmtpSink:
    """A real SMTP server on loopback (aiosmtpd) that keeps every message it accepted."""

    def __init__(self, port: int):
        from aiosmtpd.controller import Controller

        self.messages: list = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
                import email
                from email import policy

                sink.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
                return "250 Message accepted for delivery"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=port)

    def __enter__(self) -> SmtpSink:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


@pytest.fixture(scope="session")
def smtp(settings):
    with SmtpSink(settings.smtp_port) as sink:
        yield sink


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


