"""Rebuilding the ATP (and order) marts with dbt and recording the snapshot the API answers from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from oms.transform import run_dbt
from oms.warehouse import connect

# The order marts are built with the ATP marts: reservations (issue 3) make ATP depend on them.
ATP_SELECTOR = "+fct_atp_store+ +fct_atp_country+ +fct_orders+ +fct_order_lines+"


def build(dsn: str, dag_run_id: str | None, data_interval_end: datetime | None) -> dict[str, Any]:
    outcome = run_dbt(dsn, "build", "--select", *ATP_SELECTOR.split())
    with connect(dsn) as conn:
        row = conn.execute(
            """
            INSERT INTO oms.atp_snapshot (dag_run_id, data_interval_end, stock_as_of, store_rows, country_rows)
            SELECT %s, %s,
                   (SELECT max(stock_as_of) FROM marts.fct_atp_store),
                   (SELECT count(*) FROM marts.fct_atp_store),
                   (SELECT count(*) FROM marts.fct_atp_country)
            RETURNING snapshot_id, store_rows, country_rows
            """,
            (dag_run_id, data_interval_end),
        ).fetchone()
    return {"dbt_passed": outcome.passed, "dbt_failed": outcome.failed, **row}
