"""A short simulated trading period through the real platform (sandboxes over HTTP, the API process,
the DAGs by dag.test(), dbt) keeps its invariants: the simulator's own books balance, every placed
order reaches the order marts, and every unit the ERP holds in its book is on a shelf — nothing
created or lost between the shops, the platform's ledger and the ERP.

The month and its figures are a benchmark (`make simulate`), not a test: no figure is asserted here
beyond these invariants.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from oms.warehouse import apply_ddl
from omsdev.stack import control, processes
from omsdev.stack.airflow_config import connection_env
from tests.conftest import fresh_database
from tests.net import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.long]


@pytest.fixture
def sim_settings(pg_cluster, airflow_env, monkeypatch):
    """A warehouse and ports of the simulation's own: the session's sandboxes and data stay as they are."""
    dsn = fresh_database(pg_cluster, "oms_test_sim")
    apply_ddl(dsn)
    settings = dataclasses.replace(
        pg_cluster, warehouse_db="oms_test_sim", api_port=free_port(), magento_port=free_port(),
        clickpost_port=free_port(), erp_port=free_port())
    for key, value in connection_env(settings).items():
        monkeypatch.setenv(key, value)
    api = dataclasses.replace(control.api_service(settings), name="api-sim")
    control.start_service(settings, api, timeout=120)
    yield settings
    processes.stop(settings.state_dir, "api-sim")


def test_a_short_simulation_keeps_the_books(sim_settings):
    from oms.shipping.config import get_shipping_settings
    from omsdev.simulate.run import Simulation

    sim = Simulation(sim_settings, days=3, seed=11, scale="XS", tick_hours=24,
                     start=datetime(2026, 10, 5, tzinfo=UTC))
    sim.setup(get_shipping_settings().webhook_key)
    result = sim.run()

    assert result["orders"]["placed"] > 0
    assert all(run["state"] == "success" for run in sim.dags.runs
               if not any(system in run["dag_id"] for system in ("magento", "erp", "clickpost"))), sim.dags.runs
    # the simulator's shelves: opening + units in − units out = on the shelf, for every store and SKU
    assert result["ledger_check"]["world_conservation_errors"] == []
    # every order placed in Magento reached the order marts, once
    assert result["kpi_check"]["orders_in_marts"] == result["kpi_check"]["orders_placed_simulator"]
    # every unit in the ERP's book is on a shelf, and the reverse: what left (till sales, shipments,
    # collections) was posted, what came in (receipts, transfers, returns) was posted, what was lost
    # was found by a count (the last tick counts every store)
    assert result["ledger_check"]["erp_book_vs_shelf_differences"] == 0, result["ledger_check"]["examples"]
