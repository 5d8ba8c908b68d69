"""Incremental builds give the same rows as a full refresh (real Postgres, real dbt).

The dbt project's fixture (tests/test_dbt_project.py) is built whole; then what happens between
two builds happens — new ERP rows and order versions land, a held row is quarantined, a pair's
only row is quarantined, a quarantined row is released, an entry is re-opened — and an
incremental build must leave every model byte-identical to a `--full-refresh` build of the same
data. The look-back is 0 here, so the incremental run really works from its watermark (the
default 15 minutes would recompute everything this test landed seconds ago).
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import psycopg.sql
import pytest

from .test_dbt_project import FIXTURE_SQL, MAGENTO_FIXTURE_SQL

SELECT = ("+fct_atp_store", "+fct_atp_country", "+fct_orders", "+fct_order_lines")
NO_LOOKBACK = ("--vars", "{incremental_lookback_minutes: 0}")
MODELS = ["intermediate.int_stock__latest_snapshot", "staging.base_magento__orders_current",
          "intermediate.int_safety_stock__resolved",
          "intermediate.int_stock__on_hand", "marts.fct_atp_store", "marts.fct_atp_country",
          "marts.fct_orders", "marts.fct_order_lines"]

CHANGES_SQL = """
-- New ERP rows: a newer quantity for a held pair, an older row that must not win, a new pair.
INSERT INTO raw.erp_stock (record_key, store_id, sku, modified_at, payload, batch_id,
                           data_interval_start, data_interval_end)
SELECT k, s, i, t::timestamptz,
       jsonb_build_object('itemNumber', i, 'locationCode', s, 'variantCode', '', 'inventory', q,
                          'unitOfMeasureCode', 'PCS', 'lastModifiedDateTime', t),
       'batch-2', '2026-11-23T00:00:00Z', '2026-11-24T00:00:00Z'
FROM (VALUES
    ('ae-st01-tshirt-new', 'AE-ST-01', 'TSHIRT-BLK-M', '2026-11-23T00:00:00Z', '40'::jsonb),
    ('ae-st02-tshirt-old', 'AE-ST-02', 'TSHIRT-BLK-M', '2026-11-01T00:00:00Z', '99'),
    ('sa-st01-jeans-new',  'SA-ST-01', 'JEANS-BLU-32', '2026-11-23T00:00:00Z', '6')
) AS v (k, s, i, t, q);

-- The held row of (AE-WH-01, TSHIRT) is quarantined: the older row (20) stands again.
-- The only row of (SA-ST-02, SKU-1) is quarantined: the pair leaves the snapshot.
INSERT INTO raw.quarantine (source, record_key, batch_id, reason, detail, payload)
SELECT 'erp_stock', record_key, 'batch-2', 'operator_hold', 'held by a test', payload
FROM raw.erp_stock WHERE record_key IN ('ae-wh01-tshirt', 'sa-st02-sku1');

-- A quarantined row is released (the store is known after all): XX-ST-99's row is accepted.
UPDATE raw.quarantine SET resolved_at = now() WHERE record_key = 'xx-st99-tshirt';

-- A resolved entry is re-opened (validation's ON CONFLICT … SET resolved_at = NULL keeps the old
-- detected_at): (SA-WH-01, TSHIRT)'s held row is quarantined again.
UPDATE raw.quarantine SET resolved_at = NULL WHERE record_key = 'sa-wh01-tshirt';

-- Orders: a new version of order 1 (cancelled) and a new order 3.
INSERT INTO raw.magento_order (record_key, entity_id, updated_at, increment_id, store_id, channel_code, payload,
                               batch_id, data_interval_start, data_interval_end)
SELECT v.entity_id || '@' || v.updated_at, v.entity_id, v.updated_at::timestamptz, v.payload ->> 'increment_id',
       1, 'ae_web', v.payload, 'batch-2', '2026-11-22T00:00:00Z', '2026-11-23T00:00:00Z'
FROM (VALUES
    (1, '2026-11-22T10:00:00Z', jsonb_build_object('entity_id', 1, 'increment_id', 'AE1', 'state', 'canceled',
        'created_at', '2026-11-21 08:00:00', 'updated_at', '2026-11-22 10:00:00', 'items', jsonb_build_array(
            jsonb_build_object('item_id', 1, 'sku', 'TSHIRT-BLK-M', 'product_type', 'simple', 'qty_ordered', 2,
                               'qty_canceled', 2)))),
    (3, '2026-11-22T11:00:00Z', jsonb_build_object('entity_id', 3, 'increment_id', 'AE3', 'state', 'new',
        'created_at', '2026-11-22 11:00:00', 'updated_at', '2026-11-22 11:00:00', 'items', jsonb_build_array(
            jsonb_build_object('item_id', 31, 'sku', 'SKU-1', 'product_type', 'simple', 'qty_ordered', 1))))
) AS v (entity_id, updated_at, payload);
"""

# The second order change: order 1's newest version is quarantined, so its previous one stands.
ORDER_HOLD_SQL = """
INSERT INTO raw.quarantine (source, record_key, batch_id, reason, detail, payload)
SELECT 'magento_order', record_key, 'batch-3', 'operator_hold', 'held by a test', payload
FROM raw.magento_order WHERE entity_id = 1 AND updated_at = '2026-11-22T10:00:00Z';
"""


def _digests(conn) -> dict[str, tuple[int, str]]:
    out = {}
    for model in MODELS:
        row = conn.execute(f"SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) "
                           f"FROM {model} t").fetchone()
        out[model] = (row[0], row[1])
    return out


def _run(dsn: str, *args: str):
    from oms.transform import run_dbt

    return run_dbt(dsn, "run", "--select", *SELECT, *NO_LOOKBACK, *args,
                   target_path=Path(os.environ["OMS_STATE_DIR"]) / "dbt-target-incremental")


@pytest.fixture(scope="module")
def dsn(pg_cluster):
    from oms.warehouse import apply_ddl

    from .conftest import fresh_database

    database_dsn = fresh_database(pg_cluster, "oms_test_incremental")
    apply_ddl(database_dsn)
    with psycopg.connect(database_dsn, autocommit=True) as conn, conn.transaction():
        conn.execute(FIXTURE_SQL)
        conn.execute(MAGENTO_FIXTURE_SQL)
    return database_dsn


def test_incremental_builds_equal_a_full_refresh(dsn):
    _run(dsn, "--full-refresh")
    with psycopg.connect(dsn, autocommit=True) as conn:
        first = _digests(conn)
        conn.execute(CHANGES_SQL)

    outcome = _run(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        incremental = _digests(conn)
        held = {(r[0], r[1]): (r[2], str(r[3])) for r in conn.execute(
            "SELECT store_id, sku, record_key, on_hand_qty FROM intermediate.int_stock__latest_snapshot")}
    # Only the changed slice was written: 6 pairs of 14 (3 landed, 1 released, 2 quarantined
    # held rows, one of which has no row left) and 2 orders of 2.
    rows = {m["model"]: m["rows"] for m in outcome.models()}
    assert rows["int_stock__latest_snapshot"] == 5
    assert rows["base_magento__orders_current"] == 2
    assert rows["fct_orders"] == 2
    assert held[("AE-WH-01", "TSHIRT-BLK-M")] == ("ae-wh01-tshirt-old", "20")
    assert held[("AE-ST-01", "TSHIRT-BLK-M")] == ("ae-st01-tshirt-new", "40")
    assert held[("AE-ST-02", "TSHIRT-BLK-M")][0] == "ae-st02-tshirt"
    assert held[("XX-ST-99", "TSHIRT-BLK-M")][0] == "xx-st99-tshirt"
    assert ("SA-ST-02", "SKU-1") not in held and ("SA-WH-01", "TSHIRT-BLK-M") not in held
    assert incremental != first

    _run(dsn, "--full-refresh")
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert _digests(conn) == incremental
        conn.execute(ORDER_HOLD_SQL)

    _run(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        after_hold = _digests(conn)
        state = conn.execute("SELECT updated_at FROM staging.base_magento__orders_current WHERE entity_id = 1"
                             ).fetchone()[0]
    assert str(state.date()) == "2026-11-21"
    _run(dsn, "--full-refresh")
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert _digests(conn) == after_hold
        # Reference data: the UAE channel is switched off, so its orders lose channel and country.
        conn.execute("UPDATE ref.channel SET active = false WHERE channel_code = 'ae_web'")

    _run(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        after_channel = _digests(conn)
        channels = {r[0] for r in conn.execute("SELECT channel_code FROM marts.fct_orders")}
    assert channels == {None}
    _run(dsn, "--full-refresh")
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert _digests(conn) == after_channel


# Rows the gate should have stopped (the staging tests warn about them): an order in a state Magento
# does not have and an ERP row without a SKU, landed a day before the rows the fixture landed, and
# the same again landed now.
BAD_ROWS_SQL = """
INSERT INTO raw.magento_order (record_key, entity_id, updated_at, increment_id, store_id, channel_code, payload,
                               batch_id, data_interval_start, data_interval_end, loaded_at)
SELECT '{id}@2026-11-22T12:00:00Z', {id}, '2026-11-22T12:00:00Z', 'AE{id}', 1, 'ae_web',
       jsonb_build_object('entity_id', {id}, 'increment_id', 'AE{id}', 'state', 'bogus', 'created_at', '2026-11-22 12:00:00', 'items', '[]'::jsonb),
       'batch-bad', '2026-11-22T00:00:00Z', '2026-11-23T00:00:00Z', now() + %(offset)s::interval;
INSERT INTO raw.erp_stock (record_key, store_id, sku, modified_at, payload, batch_id,
                           data_interval_start, data_interval_end, loaded_at)
SELECT 'bad-null-sku-{id}', 'AE-ST-01', NULL, '2026-11-23T00:00:00Z',
       jsonb_build_object('locationCode', 'AE-ST-01', 'inventory', 1, 'lastModifiedDateTime', '2026-11-23T00:00:00Z'),
       'batch-bad', '2026-11-23T00:00:00Z', '2026-11-24T00:00:00Z', now() + %(offset)s::interval;
"""
SLICED_TESTS = ("test.oms.accepted_values_stg_magento__orders_state", "test.oms.not_null_stg_erp__stock_sku")


def _sliced_test_statuses(dsn: str, *args: str, env: dict[str, str] | None = None) -> dict[str, str]:
    from oms.transform import run_dbt

    outcome = run_dbt(dsn, "build", "--select", "stg_magento__orders", "stg_erp__stock", *NO_LOOKBACK, *args,
                      env=env, target_path=Path(os.environ["OMS_STATE_DIR"]) / "dbt-target-incremental")
    return {prefix: next(status for node, status in outcome.nodes.items() if node.startswith(prefix))
            for prefix in SLICED_TESTS}


def test_data_tests_on_landed_history_read_the_changed_slice(dsn):
    """On an incremental build the order staging and ERP stock tests read what the incremental
    models recompute (rows landed after their watermark); a full refresh reads every row."""
    from oms.tasks.atp_build import data_test_slice_env

    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in filter(str.strip, BAD_ROWS_SQL.format(id=4).split(";\n")):
            conn.execute(statement, {"offset": "-1 day"})
    _run(dsn, "--full-refresh")
    env = data_test_slice_env(dsn)
    assert set(env) == {"OMS_DBT_TEST_SINCE_ORDERS", "OMS_DBT_TEST_SINCE_STOCK"}

    every_row = {prefix: "warn" for prefix in SLICED_TESTS}
    assert _sliced_test_statuses(dsn) == every_row
    assert _sliced_test_statuses(dsn, env=env) == {prefix: "pass" for prefix in SLICED_TESTS}
    assert _sliced_test_statuses(dsn, "--full-refresh", env=env) == every_row

    # The same mistake landed after the watermark is in the slice.
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in filter(str.strip, BAD_ROWS_SQL.format(id=5).split(";\n")):
            conn.execute(statement, {"offset": "0 seconds"})
    _run(dsn)
    assert _sliced_test_statuses(dsn, env=env) == every_row


# A landing after the statistics were taken: 200 rows stamped with one new loaded_at, as a landing
# transaction stamps its rows.
LATE_LANDING_SQL = """
INSERT INTO raw.erp_stock (record_key, store_id, sku, modified_at, payload, batch_id,
                           data_interval_start, data_interval_end, loaded_at)
SELECT 'late-landing-' || n, 'AE-ST-01', 'TSHIRT-BLK-M', '2026-11-23T00:00:00Z',
       jsonb_build_object('itemNumber', 'TSHIRT-BLK-M', 'locationCode', 'AE-ST-01', 'inventory', n),
       'batch-late', '2026-11-23T00:00:00Z', '2026-11-24T00:00:00Z', %(at)s
FROM generate_series(1, 200) AS n
"""


def _estimated_rows(conn: psycopg.Connection, since: datetime) -> int:
    literal = psycopg.sql.Literal(since).as_string(conn)
    plan = conn.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM raw.erp_stock WHERE loaded_at > {literal}").fetchone()[0]
    return plan[0]["Plan"]["Plan Rows"]


def test_an_incremental_build_sizes_the_stock_slice_before_it_tests_it(dsn):
    """Rows landed since the last ANALYZE carry a loaded_at its statistics do not hold: unrefreshed,
    the planner puts the sliced tests' `loaded_at > …` at 1 row (and at M chose a nested loop over
    every SKU for each row). The build's slice set-up refreshes those statistics."""
    from oms.tasks.atp_build import data_test_slice_env

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ANALYZE raw.erp_stock")
        since = conn.execute("SELECT max(loaded_at) FROM raw.erp_stock").fetchone()[0]
        conn.execute(LATE_LANDING_SQL, {"at": since + timedelta(minutes=15)})
        try:
            assert _estimated_rows(conn, since) <= 10   # what the planner saw before the refresh
            data_test_slice_env(dsn)
            assert _estimated_rows(conn, since) >= 100
        finally:
            conn.execute("DELETE FROM raw.erp_stock WHERE batch_id = 'batch-late'")
            conn.execute("ANALYZE raw.erp_stock")


# The store ATP row's snapshot rule; nothing else reads snapshot_atp_qty in a build of the store and
# country marts' tests, so a row planted against it fails this test alone.
SNAPSHOT_RULE_TEST = "expression_is_true_fct_atp_store_snapshot_atp_qty_greatest_snapshot_on_hand_qty_safety_stock_qty_0_"
MOVED_PAIR = ("AE-ST-01", "TSHIRT-BLK-M")
PLANT_SQL = "UPDATE marts.fct_atp_store SET snapshot_atp_qty = snapshot_atp_qty + 1000 WHERE (store_id, sku) = (%s, %s)"


def _dbt(dsn: str, *args: str, env: dict[str, str] | None = None) -> dict[str, str]:
    from oms.transform import run_dbt

    return run_dbt(dsn, *args, *NO_LOOKBACK, env=env,
                   target_path=Path(os.environ["OMS_STATE_DIR"]) / "dbt-target-incremental").nodes


def test_store_atp_tests_read_the_keys_the_build_rewrote(dsn):
    """On an incremental build the tests of the on-hand and store ATP rows read the (store, SKU)
    keys the build rewrote: a bad row elsewhere (which no build writes: planted here) is for the
    day's full build to find; a bad row among the rewritten keys fails the incremental build."""
    from oms.tasks.atp_build import data_test_slice_env
    from oms.transform import DbtBuildFailed

    _run(dsn, "--full-refresh")
    select = ("build", "--select", "int_stock__on_hand", "fct_atp_store", "fct_atp_country")
    _dbt(dsn, *select, env=data_test_slice_env(dsn))   # nothing changed: what every build rewrites
    with psycopg.connect(dsn, autocommit=True) as conn:
        planted = conn.execute(
            "SELECT store_id, sku FROM marts.fct_atp_store WHERE (store_id, sku) <> (%s, %s)"
            " AND (store_id, sku) NOT IN (SELECT store_id, sku FROM oms.atp_store_written) ORDER BY 1, 2 LIMIT 1",
            MOVED_PAIR).fetchone()
        conn.execute(PLANT_SQL, planted)
        conn.execute("INSERT INTO oms.erp_movement (document_id, line_no, movement_type, store_id, sku, qty_delta,"
                     " posted_at, batch_id, payload) VALUES ('DOC-SLICE', 1, 'receipt', %s, %s, 2, now(), 'mv-s', '{}')",
                     MOVED_PAIR)
    env = data_test_slice_env(dsn)
    try:
        nodes = _dbt(dsn, *select, env=env)
        assert next(s for n, s in nodes.items() if SNAPSHOT_RULE_TEST in n) == "pass"
        with psycopg.connect(dsn, autocommit=True) as conn:
            written = set(conn.execute("SELECT store_id, sku FROM oms.atp_store_written").fetchall())
            assert MOVED_PAIR in written and tuple(planted) not in written
            with pytest.raises(DbtBuildFailed, match=SNAPSHOT_RULE_TEST):   # every row: the planted one too
                _dbt(dsn, "test", "--select", "fct_atp_store")
            conn.execute(PLANT_SQL, MOVED_PAIR)
            with pytest.raises(DbtBuildFailed, match=SNAPSHOT_RULE_TEST):
                _dbt(dsn, "test", "--select", "fct_atp_store", env=env)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("DELETE FROM oms.erp_movement WHERE document_id = 'DOC-SLICE'")
        _run(dsn, "--full-refresh")


# Between builds, one kind of change at a time: each incremental build must equal a full refresh.
# The ERP pushes movements (one for a held pair posted after its snapshot, one for a pair with no
# snapshot row, one posted before the snapshot, which changes nothing but its watermark) and the
# ledger holds units (a store reservation and a country-level one).
LEDGER_SQL = """
INSERT INTO oms.erp_movement (document_id, line_no, movement_type, store_id, sku, qty_delta, posted_at,
                              batch_id, payload)
VALUES ('DOC-1', 1, 'adjustment', 'AE-ST-01', 'TSHIRT-BLK-M', -3, now(), 'mv-1', '{}'),
       ('DOC-1', 2, 'receipt', 'AE-ST-02', 'JEANS-BLU-32', 4, now(), 'mv-1', '{}'),
       ('DOC-1', 3, 'adjustment', 'AE-WH-01', 'JEANS-BLU-32', 5, '2020-01-01T00:00:00Z', 'mv-1', '{}');
INSERT INTO oms.reservation (order_increment_id, line_key, country_code, store_id, sku, qty, status, reason)
VALUES ('AE9', '9-1', 'AE', 'AE-ST-01', 'TSHIRT-BLK-M', 1, 'active', 'test'),
       ('SA9', '9-2', 'SA', null, 'JEANS-BLU-32', 2, 'active', 'test');
"""
# Reference data: SKU-1 stops being stock-managed (its order lines say so, its ATP rows go) and the
# global safety stock rule changes.
REFERENCE_SQL = """
UPDATE ref.sku SET is_stock_managed = false, updated_at = now() WHERE sku = 'SKU-1';
UPDATE ref.safety_stock_rule SET safety_qty = 4 WHERE store_id IS NULL AND sku IS NULL AND category IS NULL;
"""
# A new version of order 1 with one of its two stock lines dropped, and a movement received for a
# pair whose only ERP row is quarantined (the pair stays, on movements alone).
ORDER_SQL = """
INSERT INTO raw.magento_order (record_key, entity_id, updated_at, increment_id, store_id, channel_code, payload,
                               batch_id, data_interval_start, data_interval_end)
SELECT '1@2026-11-23T12:00:00Z', 1, '2026-11-23T12:00:00Z', 'AE1', 1, 'ae_web',
       jsonb_build_object('entity_id', 1, 'increment_id', 'AE1', 'state', 'processing',
           'created_at', '2026-11-21 08:00:00', 'updated_at', '2026-11-23 12:00:00', 'items', jsonb_build_array(
               jsonb_build_object('item_id', 3, 'sku', 'SKU-1', 'product_type', 'simple', 'qty_ordered', 3,
                                  'qty_canceled', 1, 'price', 7.5, 'row_total', 22.5))),
       'batch-4', '2026-11-23T00:00:00Z', '2026-11-24T00:00:00Z';
"""


# Store eligibility: AE-ST-02 starts shipping from store (its rows become channel-eligible, the UAE
# country rows count it).
LOCATION_SQL = "UPDATE ref.location SET ship_from_store = true, updated_at = now() WHERE store_id = 'AE-ST-02'"
# A channel's buffer: the KSA web channel holds 3 units back.
CHANNEL_SQL = "UPDATE ref.channel SET buffer_qty = 3, updated_at = now() WHERE channel_code = 'sa_web'"
# The ledger lets go: the store reservation is released, the country-level one grows.
RELEASE_SQL = """
UPDATE oms.reservation SET qty = 0, status = 'released', reason = 'test', updated_at = now() WHERE order_increment_id = 'AE9';
UPDATE oms.reservation SET qty = 5, reason = 'test', updated_at = now() WHERE order_increment_id = 'SA9';
"""


def _incremental_equals_full_refresh(dsn: str, change_sql: str) -> dict[str, tuple[int, str]]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        before = _digests(conn)
        conn.execute(change_sql)
    _run(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        incremental = _digests(conn)
    _run(dsn, "--full-refresh")
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert _digests(conn) == incremental
    assert incremental != before
    return incremental


def test_ledger_reference_and_order_changes_equal_a_full_refresh(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE ref.channel SET active = true")  # the first test switched one off
    _run(dsn, "--full-refresh")

    _incremental_equals_full_refresh(dsn, LEDGER_SQL)
    with psycopg.connect(dsn, autocommit=True) as conn:
        on_hand = {(r[0], r[1]): (str(r[2]), r[3]) for r in conn.execute(
            "SELECT store_id, sku, movement_qty, movement_count FROM intermediate.int_stock__on_hand")}
        reserved = conn.execute("SELECT reserved_qty FROM marts.fct_atp_store "
                                "WHERE store_id = 'AE-ST-01' AND sku = 'TSHIRT-BLK-M'").fetchone()[0]
    assert on_hand[("AE-ST-01", "TSHIRT-BLK-M")] == ("-3.0000", 1)
    assert on_hand[("AE-ST-02", "JEANS-BLU-32")] == ("4.0000", 1)
    assert on_hand[("AE-WH-01", "JEANS-BLU-32")] == ("0", 0)
    assert str(reserved) == "1.0000"

    _incremental_equals_full_refresh(dsn, REFERENCE_SQL)
    with psycopg.connect(dsn, autocommit=True) as conn:
        managed = {r[0] for r in conn.execute("SELECT DISTINCT is_stock_managed FROM marts.fct_order_lines "
                                              "WHERE sku = 'SKU-1'")}
        atp_skus = {r[0] for r in conn.execute("SELECT DISTINCT sku FROM marts.fct_atp_store")}
    assert managed == {False} and "SKU-1" not in atp_skus

    _incremental_equals_full_refresh(dsn, ORDER_SQL)
    with psycopg.connect(dsn, autocommit=True) as conn:
        lines = [r[0] for r in conn.execute("SELECT line_key FROM marts.fct_order_lines WHERE entity_id = 1")]
    assert lines == ["1-3"]

    _incremental_equals_full_refresh(dsn, LOCATION_SQL)
    with psycopg.connect(dsn, autocommit=True) as conn:
        eligible = {r[0] for r in conn.execute("SELECT DISTINCT is_channel_eligible FROM marts.fct_atp_store "
                                               "WHERE store_id = 'AE-ST-02'")}
    assert eligible == {True}

    _incremental_equals_full_refresh(dsn, CHANNEL_SQL)
    with psycopg.connect(dsn, autocommit=True) as conn:
        buffers = {str(r[0]) for r in conn.execute("SELECT DISTINCT buffer_qty FROM marts.fct_atp_country "
                                                    "WHERE country_code = 'SA'")}
    assert buffers == {"3.0000"}

    _incremental_equals_full_refresh(dsn, RELEASE_SQL)
    with psycopg.connect(dsn, autocommit=True) as conn:
        reserved = conn.execute("SELECT reserved_qty FROM marts.fct_atp_store "
                                "WHERE store_id = 'AE-ST-01' AND sku = 'TSHIRT-BLK-M'").fetchone()[0]
        unallocated = conn.execute("SELECT unallocated_reserved_qty FROM marts.fct_atp_country "
                                   "WHERE country_code = 'SA' AND sku = 'JEANS-BLU-32'").fetchone()[0]
    assert (str(reserved), str(unallocated)) == ("0.0000", "5.0000")


def test_atp_build_runs_every_data_test_on_the_days_first_build_and_the_changed_ones_after(dsn, monkeypatch):
    """atp_build's first build of a UTC day (and a full refresh) runs every view and data test of the
    ATP path over every row; the day's later builds leave out the views and the tests that read
    reference data only (dbt/selectors.yml), and keep the tests of what they rebuilt."""
    from oms.tasks import atp_build
    from oms.transform import run_dbt

    runs: list[dict[str, str]] = []

    def recorded(*args, **kwargs):
        outcome = run_dbt(*args, **kwargs)
        runs.append(outcome.nodes)
        return outcome

    monkeypatch.setattr(atp_build, "run_dbt", recorded)

    def ran(data_interval_end: datetime, **kwargs) -> tuple[str, set[str]]:
        del runs[:]
        result = atp_build.build(dsn, f"test-{data_interval_end:%d%H}", data_interval_end, **kwargs)
        assert result["dbt_failed"] == 0
        return result["dbt_selector"], set(runs[0])  # the ATP build, not the holds' rebuild after it

    morning = datetime(2026, 11, 25, 1, tzinfo=UTC)
    selector, day_first = ran(morning)
    assert selector == "atp_build"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(LEDGER_SQL.replace("DOC-1", "DOC-2").replace("'AE9'", "'AE8'").replace("'SA9'", "'SA8'"))
    selector, later = ran(morning + timedelta(hours=1))
    assert selector == "atp_build_changed"
    selector, next_day = ran(morning + timedelta(days=1))
    assert selector == "atp_build"
    selector, refresh = ran(morning + timedelta(days=1, hours=1), full_refresh=True)
    assert selector == "atp_build"

    tests = {node for node in day_first if node.startswith("test.")}
    assert {node for node in next_day | refresh if node.startswith("test.")} == tests
    later_tests = {node for node in later if node.startswith("test.")}
    reference = {node for node in tests if REFERENCE_TEST.match(node)}
    assert len(reference) > 40
    assert later_tests == tests - reference, "the later build runs every data test but the reference data's"
    # Kept: the incremental marts' keys, the sliced staging tests, a rebuilt mart's relationship to a
    # reference model.
    for prefix in ("test.oms.unique_fct_orders_entity_id.", "test.oms.accepted_values_stg_magento__orders_state_",
                   "test.oms.not_null_stg_erp__stock_sku.", "test.oms.relationships_fct_atp_store_store_id__"):
        assert any(node.startswith(prefix) for node in later_tests), prefix
    # Views: every one on the day's first build, none later; every table and incremental model both times.
    models = {node for node in day_first if node.startswith("model.")}
    views = {node for node in models if VIEW.match(node)}
    assert {"model.oms.stg_ref__skus", "model.oms.stg_magento__orders", "model.oms.base_erp__stock"} <= views
    assert {node for node in later if node.startswith("model.")} == models - views
    assert {node for node in next_day if node.startswith("model.")} == models


# Data tests on models built from reference data only (tagged `reference`), and the views (every
# staging model but the incremental base_magento__orders_current).
REFERENCE_TEST = re.compile(r"test\.oms\.(unique|not_null|accepted_values|relationships|expression_is_true"
                            r"|unique_combination_of_columns)_(stg_ref__|dim_locations_|dim_skus_"
                            r"|int_safety_stock__resolved_)")
VIEW = re.compile(r"model\.oms\.(stg_|base_(?!magento__orders_current$))")
