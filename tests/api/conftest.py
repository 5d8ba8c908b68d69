"""Fixtures of the API contract tests and the fuzzer: one warehouse of their own in the test
cluster, built as the pipeline builds it (generated reference data, ERP stock, Magento orders,
dbt's ATP, order and KPI marts), and tokens for every scope."""

from __future__ import annotations

from datetime import timedelta

import pytest

from oms import tokens
from oms.magento.landing import land_orders
from oms.tasks import kpi_build as kpi_pipeline
from oms.tasks.atp_build import build as build_atp
from oms.validation.magento_orders import validate_window
from oms.warehouse import apply_ddl, connect
from omsdev import demo_data
from omsdev.demo import load_reference

from ..conftest import fresh_database
from ..stock_scenario import WINDOW, land_and_build


@pytest.fixture(scope="session")
def api_world(pg_cluster) -> str:
    dsn = fresh_database(pg_cluster, "oms_test_api_contract")
    apply_ddl(dsn)
    as_of = WINDOW[1]
    data = demo_data.generate(skus=20, stores_per_country=2, orders=30, seed=5, as_of=as_of)
    load_reference(dsn, data)
    land_and_build(dsn, data.stock_rows)
    start, end = as_of - timedelta(days=15), as_of
    with connect(dsn) as conn:
        land_orders(conn, data.orders, "api-tests", start, end, None)
        validate_window(conn, "api-tests", start, end, start, timedelta(hours=2))
    build_atp(dsn, dag_run_id="api-tests", data_interval_end=end)
    kpi_pipeline.build(dsn)
    return dsn


@pytest.fixture(scope="session")
def api_tokens(api_world) -> dict[str, str]:
    with connect(api_world) as conn:
        stores = [r["store_id"] for r in conn.execute("SELECT store_id FROM ref.location ORDER BY store_id")]
        # a store token acts for the stores it names: here every store of the test world
        return {scope: tokens.create_token(conn, f"api-tests-{scope}", [scope],
                                           stores=stores if scope == "store" else None)
                for scope in tokens.SCOPES}
