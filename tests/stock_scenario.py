"""Building the stock marts for a generated scenario without Airflow (for tests of what sits on
top of them; the DAG path itself is covered by test_e2e_stock_slice), and a whole generated demo
world built the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from oms.erp.landing import land_stock_rows
from oms.magento.landing import land_orders
from oms.tasks import kpi_build
from oms.tasks.atp_build import build as build_atp
from oms.validation import magento_orders
from oms.validation.erp_stock import validate_window
from oms.warehouse import apply_ddl, connect
from omsdev import demo_data
from omsdev.demo import load_reference

from .conftest import fresh_database

WINDOW = (datetime(2026, 4, 1, 0, 0, tzinfo=UTC), datetime(2026, 4, 1, 1, 0, tzinfo=UTC))


def land_and_build(dsn: str, rows: list[dict], window=WINDOW, batch: str = "scenario") -> dict:
    """Land rows for a window, validate them, and rebuild the ATP marts with dbt."""
    start, end = window
    with connect(dsn) as conn:
        land_stock_rows(conn, rows, f"{batch}/{start:%Y%m%dT%H%M}", start, end)
        validate_window(conn, f"{batch}/{start:%Y%m%dT%H%M}", start, end)
    return build_atp(dsn, dag_run_id=batch, data_interval_end=end)


def demo_world(pg_cluster, database: str, batch: str, **generate) -> str:
    """A fresh warehouse built as the pipeline builds it from generated demo data
    (demo_data.generate(**generate) as of WINDOW's end): reference data, ERP stock and the ATP
    marts, the 15 days of Magento orders landed and validated, then dbt's ATP, order and KPI marts."""
    dsn = fresh_database(pg_cluster, database)
    apply_ddl(dsn)
    as_of = WINDOW[1]
    data = demo_data.generate(as_of=as_of, **generate)
    load_reference(dsn, data)
    land_and_build(dsn, data.stock_rows)
    start, end = as_of - timedelta(days=15), as_of
    with connect(dsn) as conn:
        land_orders(conn, data.orders, batch, start, end, None)
        magento_orders.validate_window(conn, batch, start, end, start, timedelta(hours=2))
    build_atp(dsn, dag_run_id=batch, data_interval_end=end)
    kpi_build.build(dsn)
    return dsn
