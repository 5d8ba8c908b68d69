"""The erp_reconciliation DAG's task: read the ERP's whole stock and reconcile it with the
platform's (oms.erp.reconciliation)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from oms.erp import reconciliation
from oms.integrations.connections import erp_client, warehouse_dsn
from oms.tasks import wait_for_atp_build


def reconcile_day(logical_date: datetime | None, run_id: str | None) -> dict[str, Any]:
    """One day's reconciliation (the run's logical date; now when triggered without one)."""
    now = datetime.now(UTC)
    dsn = warehouse_dsn()
    wait_for_atp_build(dsn)  # our side of the comparison is live ATP, which rests on the ATP marts
    with erp_client() as erp:
        return reconciliation.run(dsn, erp, (logical_date or now).date(), now, run_id=run_id)
