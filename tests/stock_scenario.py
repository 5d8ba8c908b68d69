"""Building the stock marts for a generated scenario without Airflow (for tests of what sits on
top of them; the DAG path itself is covered by test_e2e_stock_slice)."""

from __future__ import annotations

from datetime import UTC, datetime

from oms.erp.landing import land_stock_rows
from oms.tasks.atp_build import build as build_atp
from oms.validation.erp_stock import validate_window
from oms.warehouse import connect

WINDOW = (datetime(2026, 4, 1, 0, 0, tzinfo=UTC), datetime(2026, 4, 1, 1, 0, tzinfo=UTC))


def land_and_build(dsn: str, rows: list[dict], window=WINDOW, batch: str = "scenario") -> dict:
    """Land rows for a window, validate them, and rebuild the ATP marts with dbt."""
    start, end = window
    with connect(dsn) as conn:
        land_stock_rows(conn, rows, f"{batch}/{start:%Y%m%dT%H%M}", start, end)
        validate_window(conn, f"{batch}/{start:%Y%m%dT%H%M}", start, end)
    return build_atp(dsn, dag_run_id=batch, data_interval_end=end)
