"""The kpi_build DAG's task: the fulfilment KPI marts (dbt/models/marts/kpis) after the order and ATP marts.

Only the KPI branch is selected: the order marts it reads were just rebuilt by atp_build (whose
asset event triggers this), so building them again would double the cost of every order run.
"""

from __future__ import annotations

from typing import Any

from oms.integrations.connections import warehouse_dsn
from oms.tasks import wait_for_atp_build
from oms.tasks.atp_build import SKIP_UNIT_TESTS
from oms.transform import run_dbt

KPI_SELECTOR = ("path:models/staging/oms_fulfilment path:models/intermediate/fulfilment path:models/marts/kpis "
                "stg_oms_inventory__erp_reconciliation "
                "dim_locations")


def build(dsn: str) -> dict[str, Any]:
    outcome = run_dbt(dsn, "build", "--select", *KPI_SELECTOR.split(), *SKIP_UNIT_TESTS)
    return {"passed": outcome.passed, "failed": outcome.failed, "skipped": outcome.skipped}


def dbt_build_kpis() -> dict[str, Any]:
    dsn = warehouse_dsn()
    wait_for_atp_build(dsn)  # the KPI branch reads the order marts and their staging models, not selected here
    return build(dsn)
