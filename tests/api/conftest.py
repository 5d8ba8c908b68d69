"""Fixtures of the API contract tests and the fuzzer: one warehouse of their own in the test
cluster, built as the pipeline builds it (generated reference data, ERP stock, Magento orders,
dbt's ATP, order and KPI marts), and tokens for every scope."""

from __future__ import annotations

import pytest

from oms import tokens
from oms.warehouse import connect

from ..stock_scenario import demo_world


@pytest.fixture(scope="session")
def api_world(pg_cluster) -> str:
    return demo_world(pg_cluster, "oms_test_api_contract", "api-tests", skus=20, stores_per_country=2, orders=30,
                      seed=5)


@pytest.fixture(scope="session")
def api_tokens(api_world) -> dict[str, str]:
    with connect(api_world) as conn:
        stores = [r["store_id"] for r in conn.execute("SELECT store_id FROM ref.location ORDER BY store_id")]
        # a store token acts for the stores it names: here every store of the test world
        return {scope: tokens.create_token(conn, f"api-tests-{scope}", [scope],
                                           stores=stores if scope == "store" else None)
                for scope in tokens.SCOPES}
