"""The dbt project end to end: load a small fixture, run `dbt build`, check the ATP by hand.

Runs in a database of its own in the project's test cluster (it empties the ref and raw tables
it loads). The project-structure test (dbt-project-evaluator's rules, checked on the parsed
manifest) needs no database.

The fixture, in short (safety rules: tops 2, AE-ST-01 3, (AE-WH-01, JEANS) 0.5, SKU-1 0,
global 1; buffers: ae_web 2, sa_web 0):

    AE  TSHIRT  WH-01 25 (an older row says 20) -2 = 23 | ST-01 12 -3 = 9 | ST-02 10 -2 = 8
                (no ship-from-store: not eligible) | ST-03 inactive      -> 32 - 2 = 30
    AE  JEANS   WH-01 5.5 -0.5 = 5 | ST-01 1 -3 = 0 (a later "abc" row is quarantined)
                                                                         ->  5 - 2 = 3
    SA  SKU-1   Magento's worked example: WH-01 5.5, ST-01 3, ST-02 10 not eligible,
                WH-02 10 inactive                                        ->  8.5
    SA  TSHIRT  WH-01 7 -2 = 5 (its quarantine entry is resolved) | ST-01 4 -2 = 2  ->  7
    SA  JEANS   WH-01 4 -1 (global) = 3 | ST-01 -5 quarantined           ->  3
"""

from __future__ import annotations

import functools
import os
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

REPO = Path(__file__).resolve().parents[1]
DBT_DIR = REPO / "dbt"

FIXTURE_SQL = """
TRUNCATE ref.safety_stock_rule, ref.location, ref.sku, ref.channel, raw.erp_stock, raw.quarantine,
    raw.magento_order RESTART IDENTITY;

INSERT INTO ref.channel (channel_code, country_code, name, currency_code, magento_website_code,
                         magento_store_code, magento_stock_id, magento_store_id, buffer_qty) VALUES
    ('ae_web', 'AE', 'UAE web', 'AED', 'ae', 'ae_en', 2, 1, 2),
    ('sa_web', 'SA', 'KSA web', 'SAR', 'sa', 'sa_en', 3, 2, 0);

INSERT INTO ref.location (store_id, name, country_code, location_type, ship_from_store,
                          pickup_enabled, magento_source_code, active) VALUES
    ('AE-WH-01', 'Dubai DC',         'AE', 'warehouse', false, false, 'AE-WH-01', true),
    ('AE-ST-01', 'Dubai Mall',       'AE', 'store',     true,  true,  'AE-ST-01', true),
    ('AE-ST-02', 'Mall of Emirates', 'AE', 'store',     false, true,  'AE-ST-02', true),
    ('AE-ST-03', 'Closed store',     'AE', 'store',     true,  true,  'AE-ST-03', false),
    ('SA-WH-01', 'Riyadh DC',        'SA', 'warehouse', false, false, 'SA-WH-01', true),
    ('SA-ST-01', 'Riyadh Park',      'SA', 'store',     true,  true,  'SA-ST-01', true),
    ('SA-ST-02', 'Jeddah Corniche',  'SA', 'store',     false, true,  'SA-ST-02', true),
    ('SA-WH-02', 'Dammam DC (off)',  'SA', 'warehouse', false, false, 'SA-WH-02', false);

INSERT INTO ref.sku (sku, name, category, is_stock_managed, active) VALUES
    ('TSHIRT-BLK-M', 'T-shirt black M', 'tops',        true,  true),
    ('JEANS-BLU-32', 'Jeans blue 32',   'bottoms',     true,  true),
    ('SKU-1',        'Magento SKU-1',   'accessories', true,  true),
    ('GIFTCARD-100', 'Gift card 100',   null,          false, true),
    ('OLD-SKU',      'Discontinued',    'tops',        true,  false);

INSERT INTO ref.safety_stock_rule (store_id, sku, category, safety_qty) VALUES
    (null,       null,           null,   1),
    (null,       null,           'tops', 2),
    ('AE-ST-01', null,           null,   3),
    ('AE-WH-01', 'JEANS-BLU-32', null,   0.5),
    (null,       'SKU-1',        null,   0);

INSERT INTO raw.erp_stock (record_key, store_id, sku, modified_at, payload, batch_id,
                           data_interval_start, data_interval_end)
SELECT k, s, i, t::timestamptz,
       jsonb_build_object('itemNumber', i, 'locationCode', s, 'variantCode', '', 'inventory', q,
                          'unitOfMeasureCode', 'PCS', 'lastModifiedDateTime', t),
       'batch-1', '2026-11-19T00:00:00Z', '2026-11-23T00:00:00Z'
FROM (VALUES
    ('ae-wh01-tshirt-old', 'AE-WH-01', 'TSHIRT-BLK-M', '2026-11-20T00:00:00Z', '20'::jsonb),
    ('ae-wh01-tshirt',     'AE-WH-01', 'TSHIRT-BLK-M', '2026-11-21T00:00:00Z', '25'),
    ('ae-st01-tshirt',     'AE-ST-01', 'TSHIRT-BLK-M', '2026-11-21T00:00:00Z', '12'),
    ('ae-st02-tshirt',     'AE-ST-02', 'TSHIRT-BLK-M', '2026-11-21T00:00:00Z', '10'),
    ('ae-st03-tshirt',     'AE-ST-03', 'TSHIRT-BLK-M', '2026-11-21T00:00:00Z', '10'),
    ('ae-wh01-jeans',      'AE-WH-01', 'JEANS-BLU-32', '2026-11-21T00:00:00Z', '5.5'),
    ('ae-st01-jeans',      'AE-ST-01', 'JEANS-BLU-32', '2026-11-21T00:00:00Z', '1'),
    ('ae-st01-jeans-bad',  'AE-ST-01', 'JEANS-BLU-32', '2026-11-22T00:00:00Z', '"abc"'),
    ('ae-wh01-giftcard',   'AE-WH-01', 'GIFTCARD-100', '2026-11-21T00:00:00Z', '50'),
    ('xx-st99-tshirt',     'XX-ST-99', 'TSHIRT-BLK-M', '2026-11-21T00:00:00Z', '3'),
    ('sa-wh01-sku1',       'SA-WH-01', 'SKU-1',        '2026-11-21T00:00:00Z', '5.5'),
    ('sa-st01-sku1',       'SA-ST-01', 'SKU-1',        '2026-11-21T00:00:00Z', '3'),
    ('sa-st02-sku1',       'SA-ST-02', 'SKU-1',        '2026-11-21T00:00:00Z', '10'),
    ('sa-wh02-sku1',       'SA-WH-02', 'SKU-1',        '2026-11-21T00:00:00Z', '10'),
    ('sa-wh01-tshirt',     'SA-WH-01', 'TSHIRT-BLK-M', '2026-11-21T00:00:00Z', '7'),
    ('sa-st01-tshirt',     'SA-ST-01', 'TSHIRT-BLK-M', '2026-11-21T00:00:00Z', '4'),
    ('sa-wh01-jeans',      'SA-WH-01', 'JEANS-BLU-32', '2026-11-21T00:00:00Z', '4'),
    ('sa-st01-jeans-neg',  'SA-ST-01', 'JEANS-BLU-32', '2026-11-22T00:00:00Z', '-5')
) AS v (k, s, i, t, q);

-- A row with a key the loader could not extract (quarantined: it must not reach staging).
INSERT INTO raw.erp_stock (record_key, store_id, sku, modified_at, payload, batch_id,
                           data_interval_start, data_interval_end)
VALUES ('no-keys', null, null, null, '{"inventory": "n/a"}', 'batch-1',
        '2026-11-19T00:00:00Z', '2026-11-23T00:00:00Z');

INSERT INTO raw.quarantine (source, record_key, batch_id, reason, detail, payload, resolved_at)
SELECT q.source, q.record_key, 'batch-1', q.reason, q.detail, r.payload, q.resolved_at::timestamptz
FROM (VALUES
    ('erp_stock',      'ae-st01-jeans-bad', 'quantity_not_numeric', 'inventory=''abc''', null),
    ('erp_stock',      'xx-st99-tshirt',    'unknown_store',        'store_id=''XX-ST-99''', null),
    ('erp_stock',      'sa-st01-jeans-neg', 'negative_quantity',    'quantity=-5', null),
    ('erp_stock',      'no-keys',           'missing_store_id',     'store_id=None', null),
    ('erp_stock',      'no-keys',           'missing_sku',          'sku=None', null),
    ('erp_stock',      'no-keys',           'quantity_not_numeric', 'inventory=''n/a''', null),
    ('erp_stock',      'sa-wh01-tshirt',    'unknown_sku',          'fixed since', '2026-11-21T06:00:00Z'),
    ('magento_orders', 'ae-wh01-tshirt',    'other_feed',           'same key, other feed', null)
) AS q (source, record_key, reason, detail, resolved_at)
JOIN raw.erp_stock r USING (record_key);
"""

# Magento orders: order 1 in two versions (the later one wins), a configurable pair and a simple
# row; order 2's only version is quarantined, so it is in no mart.
MAGENTO_FIXTURE_SQL = """
INSERT INTO raw.magento_order (record_key, entity_id, updated_at, increment_id, store_id, channel_code, payload,
                               batch_id, data_interval_start, data_interval_end)
SELECT v.entity_id || '@' || to_char(v.updated_at::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
       v.entity_id, v.updated_at::timestamptz, v.payload ->> 'increment_id', v.store_id, 'ae_web', v.payload,
       'batch-1', '2026-11-21T00:00:00Z', '2026-11-22T00:00:00Z'
FROM (VALUES
    (1, '2026-11-21T08:00:00Z', 1, jsonb_build_object('entity_id', 1, 'increment_id', 'AE1', 'state', 'new',
        'created_at', '2026-11-21 08:00:00', 'updated_at', '2026-11-21 08:00:00', 'items', jsonb_build_array(
            jsonb_build_object('item_id', 1, 'sku', 'TSHIRT-BLK-M', 'product_type', 'simple', 'qty_ordered', 2)))),
    (1, '2026-11-21T09:00:00Z', 1, jsonb_build_object('entity_id', 1, 'increment_id', 'AE1', 'state', 'processing',
        'created_at', '2026-11-21 08:00:00', 'updated_at', '2026-11-21 09:00:00',
        'payment', jsonb_build_object('method', 'cashondelivery'), 'items', jsonb_build_array(
            jsonb_build_object('item_id', 1, 'sku', 'TSHIRT-BLK-M', 'product_type', 'configurable',
                               'qty_ordered', 2, 'qty_shipped', 1, 'price', 50, 'row_total', 100),
            jsonb_build_object('item_id', 2, 'parent_item_id', 1, 'sku', 'TSHIRT-BLK-M', 'product_type', 'simple',
                               'qty_ordered', 2, 'qty_shipped', 1, 'price', 0, 'row_total', 0),
            jsonb_build_object('item_id', 3, 'sku', 'SKU-1', 'product_type', 'simple', 'qty_ordered', 3,
                               'qty_canceled', 1, 'price', 7.5, 'row_total', 22.5)))),
    (2, '2026-11-21T09:00:00Z', 2, jsonb_build_object('entity_id', 2, 'increment_id', 'SA2', 'state', 'new',
        'created_at', 'soon', 'updated_at', '2026-11-21 09:00:00', 'items', jsonb_build_array(
            jsonb_build_object('item_id', 9, 'sku', 'SKU-1', 'qty_ordered', 1))))
) AS v (entity_id, updated_at, store_id, payload);

INSERT INTO raw.quarantine (source, record_key, batch_id, reason, detail, payload)
SELECT 'magento_order', record_key, 'batch-1', 'missing_or_bad_created_at', 'created_at=soon', payload
FROM raw.magento_order WHERE entity_id = 2;
"""

# (store_id, sku) -> (on_hand_qty, safety_stock_qty, atp_qty, is_in_stock, is_channel_eligible)
EXPECTED_STORE = {
    ("AE-WH-01", "TSHIRT-BLK-M"): ("25", "2", "23", True, True),
    ("AE-ST-01", "TSHIRT-BLK-M"): ("12", "3", "9", True, True),
    ("AE-ST-02", "TSHIRT-BLK-M"): ("10", "2", "8", True, False),
    ("AE-WH-01", "JEANS-BLU-32"): ("5.5", "0.5", "5", True, True),
    ("AE-ST-01", "JEANS-BLU-32"): ("1", "3", "0", False, True),
    ("SA-WH-01", "SKU-1"): ("5.5", "0", "5.5", True, True),
    ("SA-ST-01", "SKU-1"): ("3", "0", "3", True, True),
    ("SA-ST-02", "SKU-1"): ("10", "0", "10", True, False),
    ("SA-WH-01", "TSHIRT-BLK-M"): ("7", "2", "5", True, True),
    ("SA-ST-01", "TSHIRT-BLK-M"): ("4", "2", "2", True, True),
    ("SA-WH-01", "JEANS-BLU-32"): ("4", "1", "3", True, True),
}

# (country_code, sku) -> (channel_code, eligible_location_count, on_hand_qty, atp_before_buffer,
#                         buffer_qty, atp_qty, is_in_stock)
EXPECTED_COUNTRY = {
    ("AE", "TSHIRT-BLK-M"): ("ae_web", 2, "37", "32", "2", "30", True),
    ("AE", "JEANS-BLU-32"): ("ae_web", 2, "6.5", "5", "2", "3", True),
    ("SA", "SKU-1"): ("sa_web", 2, "8.5", "8.5", "0", "8.5", True),
    ("SA", "TSHIRT-BLK-M"): ("sa_web", 2, "11", "7", "0", "7", True),
    ("SA", "JEANS-BLU-32"): ("sa_web", 1, "4", "3", "0", "3", True),
}


def _dbt(*args: str):
    from dbt.cli.main import dbtRunner

    target = Path(os.environ["OMS_STATE_DIR"]) / "dbt-target-project-test"
    return dbtRunner().invoke([*args, "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR),
                               "--target-path", str(target), "--log-path", str(target / "logs")])


def _q(value) -> Decimal:
    return Decimal(value)


@pytest.fixture(scope="module")
def dsn(pg_cluster):
    """A database of this module's own: the fixture below empties the tables it loads."""
    from oms.warehouse import apply_ddl

    from .conftest import fresh_database

    database_dsn = fresh_database(pg_cluster, "oms_test_dbt_project")
    apply_ddl(database_dsn)
    return database_dsn


@pytest.fixture(scope="module")
def warehouse(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        with conn.transaction():
            conn.execute(FIXTURE_SQL)
            conn.execute(MAGENTO_FIXTURE_SQL)
        yield conn


@pytest.fixture(scope="module")
def built(warehouse, dsn):
    from oms.transform import profile_env

    with pytest.MonkeyPatch.context() as mp:
        for name, value in profile_env(dsn).items():
            mp.setenv(name, value)
        build = _dbt("build")
        freshness = _dbt("source", "freshness")
    return build, freshness


def test_dbt_build_succeeds(built):
    build, _ = built
    assert build.success, f"dbt build failed: {build.exception or build.result}"
    failures = [
        r.node.name for r in build.result.results if str(r.status) not in ("success", "pass", "no-op")
    ]
    assert failures == []


def test_source_freshness_passes(built):
    _, freshness = built
    assert freshness.success, f"dbt source freshness failed: {freshness.exception or freshness.result}"


def test_staging_excludes_open_quarantine(built, warehouse):
    keys = {row[0] for row in warehouse.execute("select record_key from staging.stg_erp__stock")}
    assert not keys & {"ae-st01-jeans-bad", "xx-st99-tshirt", "sa-st01-jeans-neg", "no-keys"}
    # resolved entries and entries of another feed do not exclude
    assert {"sa-wh01-tshirt", "ae-wh01-tshirt"} <= keys
    assert len(keys) == 19 - 4


def test_fct_atp_store_numbers(built, warehouse):
    rows = warehouse.execute(
        """
        select store_id, sku, on_hand_qty, safety_stock_qty, atp_qty, is_in_stock, is_channel_eligible,
               country_code, channel_code, magento_source_code, stock_as_of, store_sku_key
        from marts.fct_atp_store
        """
    ).fetchall()
    actual = {(r[0], r[1]): (r[2], r[3], r[4], r[5], r[6]) for r in rows}
    expected = {
        key: (_q(on_hand), _q(safety), _q(atp), in_stock, eligible)
        for key, (on_hand, safety, atp, in_stock, eligible) in EXPECTED_STORE.items()
    }
    assert actual == expected
    by_key = {(r[0], r[1]): r for r in rows}
    wh = by_key[("AE-WH-01", "TSHIRT-BLK-M")]
    assert (wh[7], wh[8], wh[9]) == ("AE", "ae_web", "AE-WH-01")
    # the latest ERP row wins (25 from 2026-11-21, not 20 from 2026-11-20)
    assert wh[10] == datetime(2026, 11, 21, tzinfo=UTC)
    assert len({r[11] for r in rows}) == len(rows)


def test_fct_atp_country_numbers(built, warehouse):
    rows = warehouse.execute(
        """
        select country_code, sku, channel_code, eligible_location_count, on_hand_qty, atp_before_buffer,
               buffer_qty, atp_qty, is_in_stock
        from marts.fct_atp_country
        """
    ).fetchall()
    actual = {(r[0], r[1]): tuple(r[2:]) for r in rows}
    expected = {
        key: (channel, count, _q(on_hand), _q(before), _q(buffer), _q(atp), in_stock)
        for key, (channel, count, on_hand, before, buffer, atp, in_stock) in EXPECTED_COUNTRY.items()
    }
    assert actual == expected


def test_magento_worked_example(built, warehouse):
    """Magento's GetProductSalableQuantityTest: 5.5 + 3, not the 10 out of stock, not the 10 disabled."""
    atp = warehouse.execute(
        "select atp_qty from marts.fct_atp_country where country_code = 'SA' and sku = 'SKU-1'"
    ).fetchone()[0]
    assert atp == Decimal("8.5")


def test_order_marts_numbers(built, warehouse):
    """The latest valid version of each order; configurable qty from the child, money from the parent."""
    orders = warehouse.execute(
        "select entity_id, state, fulfilment_status, channel_code, country_code, is_cod from marts.fct_orders"
    ).fetchall()
    assert orders == [(1, "processing", "ready_to_fulfil", "ae_web", "AE", True)]
    lines = warehouse.execute(
        "select line_key, sku, qty_ordered, qty_open, unit_price, row_total from marts.fct_order_lines order by 1"
    ).fetchall()
    assert lines == [("1-2", "TSHIRT-BLK-M", _q("2"), _q("1"), _q("50"), _q("100")),
                     ("1-3", "SKU-1", _q("3"), _q("2"), _q("7.5"), _q("22.5"))]


def test_every_built_column_is_documented(built, warehouse):
    """Each column of each model's relation has a description in the model's yml."""
    manifest = _parse_manifest()
    missing = []
    for node in manifest.nodes.values():
        if node.resource_type != "model":
            continue
        columns = warehouse.execute(
            "select column_name from information_schema.columns where table_schema = %s and table_name = %s",
            (node.schema, node.alias),
        ).fetchall()
        assert columns, f"{node.name} was not built in {node.schema}"
        for (column,) in columns:
            info = node.columns.get(column)
            if info is None or not info.description.strip():
                missing.append(f"{node.name}.{column}")
    assert missing == []


# ---------------------------------------------------------------------------------------------
# dbt-project-evaluator's rules, checked by hand on the parsed manifest (no packages, no DB).

MODEL_PREFIXES = {"staging": ("stg_", "base_"), "intermediate": ("int_",), "marts": ("fct_", "dim_")}


@functools.cache  # one parse for the module's two readers: the project's files do not change in between
def _parse_manifest():
    pytest.importorskip("dbt.cli.main")
    result = _dbt("parse")
    assert result.success, result.exception
    return result.result


@pytest.mark.integration  # a dbt parse of the project
def test_project_follows_evaluator_rules():
    manifest = _parse_manifest()
    models = {uid: n for uid, n in manifest.nodes.items() if n.resource_type == "model"}
    tests = [n for n in manifest.nodes.values() if n.resource_type == "test"]
    children: dict[str, set[str]] = {uid: set() for uid in [*models, *manifest.sources]}
    for uid, node in models.items():
        for parent in node.depends_on.nodes:
            children.setdefault(parent, set()).add(uid)
    problems: list[str] = []

    for uid, node in models.items():
        path = Path(node.original_file_path)
        layer = path.parts[1]
        sources = [p for p in node.depends_on.nodes if p.startswith("source.")]
        refs = [p for p in node.depends_on.nodes if p.startswith("model.")]
        # naming and directories
        if not node.name.startswith(MODEL_PREFIXES.get(layer, ("?",))):
            problems.append(f"naming: {node.name} in {layer}/")
        if node.name.startswith("base_") and path.parent.name != "base":
            problems.append(f"directory: base model {node.name} outside a base/ folder")
        # sources only in staging, one per model, never mixed with refs; directory = source name
        if sources and layer != "staging":
            problems.append(f"source outside staging: {node.name}")
        if len(sources) > 1:
            problems.append(f"multiple sources joined: {node.name}")
        if sources and refs:
            problems.append(f"direct join to source: {node.name}")
        for source in sources:
            if manifest.sources[source].source_name not in path.parts:
                problems.append(
                    f"directory: {node.name} not under staging/{manifest.sources[source].source_name}/"
                )
        # staging never depends on staging or downstream models
        if node.name.startswith("stg_"):
            for parent in refs:
                if not models[parent].name.startswith("base_"):
                    problems.append(f"staging depends on {models[parent].name}: {node.name}")
        # documented, and the yml sits next to the model
        if not node.description.strip():
            problems.append(f"undocumented model: {node.name}")
        if node.patch_path and Path(node.patch_path.split("://", 1)[1]).parent != path.parent:
            problems.append(f"test directory: {node.name} documented/tested outside {path.parent}")
        # a primary-key test: unique + not_null on a column, or a compound uniqueness test
        attached = [
            t for t in tests if getattr(t, "attached_node", None) == uid and getattr(t, "test_metadata", None)
        ]
        by_column: dict[str, set[str]] = {}
        for t in attached:
            by_column.setdefault(t.column_name or "", set()).add(t.test_metadata.name)
        has_pk = any({"unique", "not_null"} <= names for column, names in by_column.items() if column) or any(
            t.test_metadata.name == "unique_combination_of_columns" for t in attached
        )
        if not has_pk:
            problems.append(f"missing primary key test: {node.name}")
        # rejoining of upstream concepts: parent -> a -> b and parent -> b, where a feeds only b
        for parent in node.depends_on.nodes:
            for sibling in children.get(parent, set()):
                if sibling != uid and children.get(sibling) == {uid}:
                    problems.append(f"rejoin: {parent} -> {models[sibling].name} -> {node.name}")

    for uid, source in manifest.sources.items():
        if not (source.description.strip() and source.source_description.strip()):
            problems.append(f"undocumented source: {uid}")
        if not children.get(uid):
            problems.append(f"unused source: {uid}")

    for exposure in manifest.exposures.values():
        for parent in exposure.depends_on.nodes:
            if models[parent].config.materialized not in ("table", "incremental"):
                problems.append(f"exposure parent not a table: {models[parent].name}")

    assert problems == []
