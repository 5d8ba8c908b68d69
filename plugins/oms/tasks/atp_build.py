"""The atp_build DAG's task: the ATP (and order) marts rebuilt with dbt and the snapshot the API answers
from recorded. Reservations are not synced here: orders reserve as they land (oms.inventory.order_demand)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from oms.integrations.connections import warehouse_dsn
from oms.inventory import order_demand
from oms.transform import dbt_project_digest, run_dbt
from oms.warehouse import connect

# The ATP and order marts' selections (dbt/selectors.yml): `atp_build` is every model and data test
# of the ATP path; `atp_build_changed` leaves out the views and the data tests that read reference
# data only. Which one a build runs: full_build_due.
FULL_SELECTOR = "atp_build"
CHANGED_SELECTOR = "atp_build_changed"
# dbt unit tests check the SQL, not the data: they run in the test suite (tests/test_dbt_project.py)
# and CI, not on every build, where they cost a fixed ~20 s (docs/benchmarks.md).
SKIP_UNIT_TESTS = ("--exclude-resource-type", "unit_test")
# The models that read the reservation ledger on the way to the ATP marts.
HOLD_MARTS = "int_inventory__store_holds int_inventory__unallocated_reservations fct_atp_store fct_atp_country"

# Movements the new marts' ERP snapshot already counts (posted at or before the (store, SKU)'s
# snapshot time) leave the small set the live ATP path scans (a partial index). The mark only
# keeps that set small: the live functions compare posted_at with the snapshot time themselves,
# so a movement not marked yet is still counted exactly once (docs/inventory-ledger.md).
ABSORB_SQL = """
UPDATE oms.erp_movement m SET absorbed_at = now()
FROM marts.fct_atp_store s
WHERE m.absorbed_at IS NULL
  AND s.store_id = m.store_id AND s.sku = m.sku
  AND m.posted_at <= s.snapshot_as_of
"""


# The data tests of the order staging views and the ERP stock rows read, on an incremental build,
# only what the incremental models recompute: rows landed after the newest loaded_at these hold
# (less the look-back; dbt/macros/test_slice.sql). A build that runs the whole selection
# (full_build_due: a full refresh, the first build, the day's first) tests every row.
TEST_SLICE_WATERMARKS = {"OMS_DBT_TEST_SINCE_ORDERS": "staging.base_magento__orders_current",
                         "OMS_DBT_TEST_SINCE_STOCK": "intermediate.int_stock__latest_snapshot"}


# The landed tables' columns a sliced data test filters on with a constant (`loaded_at > '…'`).
# A landing stamps its rows with one loaded_at (its transaction's), so ANALYZE finds a handful of
# values, every one "most common", and no histogram: rows landed since it ran carry a value the
# statistics do not hold, and the planner puts the slice at 1 row. On the stock slice that chose a
# nested-loop anti join against every SKU (the relationships test: 373 s for a 50,000-row slice at
# M, 7.5 s over all 5M rows; docs/benchmarks.md). Autovacuum re-analyses only after a tenth of the
# table changed; one column's ANALYZE samples at most 30,000 rows whatever the table's size.
SLICED_COLUMNS = ("raw.erp_stock (loaded_at)",)


def data_test_slice_env(dsn: str) -> dict[str, str]:
    """The incremental models' watermarks before a build, as dbt/macros/test_slice.sql reads them;
    none for a model not built yet or empty (its tests then read every row). The statistics of the
    columns the slices filter on are refreshed first, so the planner sizes the slice it reads."""
    env: dict[str, str] = {}
    with connect(dsn) as conn:
        for columns in SLICED_COLUMNS:
            conn.execute(f"ANALYZE {columns}")
        for name, relation in TEST_SLICE_WATERMARKS.items():
            if conn.execute("SELECT to_regclass(%s) IS NOT NULL AS built", (relation,)).fetchone()["built"]:
                newest = conn.execute(f"SELECT max(loaded_at) AS t FROM {relation}").fetchone()["t"]
                if newest is not None:
                    env[name] = newest.isoformat()
    return env


def full_build_due(dsn: str, data_interval_end: datetime | None, full_refresh: bool, project_digest: str) -> bool:
    """Whether this build runs the whole `atp_build` selection (every view re-created, every data
    test over every row) rather than `atp_build_changed`: on a full refresh, on the first build of
    the warehouse, on the first build of a UTC day (the day of the run's data interval end, else
    today) and on the first build after the dbt project changed (a changed view is created then).
    Decided from the builds recorded in oms.atp_snapshot, so a backfill's runs, taken in their
    order, make the same choice whenever they run."""
    if full_refresh:
        return True
    day = (data_interval_end or datetime.now(UTC)).astimezone(UTC).date()
    with connect(dsn) as conn:
        done = conn.execute(
            """
            SELECT EXISTS (SELECT 1 FROM oms.atp_snapshot
                           WHERE dbt_selector = %s AND dbt_project_digest = %s
                             AND (coalesce(data_interval_end, built_at) AT TIME ZONE 'UTC')::date = %s) AS done
            """,
            (FULL_SELECTOR, project_digest, day),
        ).fetchone()["done"]
    return not done


def build(dsn: str, dag_run_id: str | None, data_interval_end: datetime | None,
          full_refresh: bool = False) -> dict[str, Any]:
    """One dbt build of the ATP and order marts. The incremental models (docs/adr/0012) recompute
    what changed since their last build; the data tests on landed history read that slice, and
    the views and the reference data's tests wait for the day's full build (full_build_due);
    `full_refresh` rebuilds the incremental models whole (same rows) and tests every row."""
    digest = dbt_project_digest()
    full = full_build_due(dsn, data_interval_end, full_refresh, digest)
    selector = FULL_SELECTOR if full else CHANGED_SELECTOR
    with connect(dsn) as conn:
        first_build = conn.execute("SELECT NOT EXISTS (SELECT 1 FROM oms.atp_snapshot) AS first").fetchone()["first"]
    slice_env = None if full else data_test_slice_env(dsn)
    outcome = run_dbt(dsn, "build", "--selector", selector, *SKIP_UNIT_TESTS,
                      *(("--full-refresh",) if full_refresh else ()), env=slice_env)
    with connect(dsn) as conn:
        # Orders that landed before the ATP marts existed had nothing to reserve against; the first
        # build reserves them, once, so a warehouse built in another order of runs (an outage and
        # its backfill) holds the same as a clean run. Later orders reserve as they land.
        landed = [r["entity_id"] for r in conn.execute("SELECT entity_id FROM raw.magento_order_current")] \
            if first_build else []
    caught_up = order_demand.reserve_in_batches(dsn, landed)
    # The new snapshot may bring stock that backordered lines wait for: they take it first.
    with connect(dsn) as conn:
        short = order_demand.short_orders(conn)
    refilled = order_demand.reserve_in_batches(dsn, short)
    moved = sum(r.changed for r in (*caught_up, *refilled))
    # The ATP marts show the holds as of their build: when this build's own reserving moved
    # holds, the two marts that read them are built again, so the marts say what the ledger
    # holds after the build whichever order the orders and the stock came in.
    holds = run_dbt(dsn, "build", "--select", *HOLD_MARTS.split(), *SKIP_UNIT_TESTS, env=slice_env) if moved else None
    with connect(dsn) as conn:
        row = conn.execute(
            """
            INSERT INTO oms.atp_snapshot (dag_run_id, data_interval_end, stock_as_of, store_rows, country_rows,
                                          dbt_selector, dbt_project_digest)
            SELECT %s, %s,
                   (SELECT max(stock_as_of) FROM marts.fct_atp_store),
                   (SELECT count(*) FROM marts.fct_atp_store),
                   (SELECT count(*) FROM marts.fct_atp_country),
                   %s, %s
            RETURNING snapshot_id, store_rows, country_rows, dbt_selector
            """,
            (dag_run_id, data_interval_end, selector, digest),
        ).fetchone()
        absorbed = conn.execute(ABSORB_SQL).rowcount
    return {"dbt_passed": outcome.passed + (holds.passed if holds else 0),
            "dbt_failed": outcome.failed + (holds.failed if holds else 0), **row, "movements_absorbed": absorbed,
            "full_refresh": full_refresh, "models": outcome.models() + (holds.models() if holds else []),
            "orders_reserved_at_first_build": len(caught_up), "shortfalls_refilled": order_demand.summary(refilled),
            "hold_lines_moved": moved}


def dbt_build_atp(run_id: str | None, data_interval_end: datetime | None, full_refresh: bool = False) -> dict[str, Any]:
    return build(warehouse_dsn(), run_id, data_interval_end, full_refresh=full_refresh)
