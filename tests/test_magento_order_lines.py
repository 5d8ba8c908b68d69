"""raw.magento_order_line and raw.magento_order_item (sql/015): the one reading of a Magento order's
items[], shared by dbt (stg_magento__order_lines), the order gate's exception checks, the shipment
body builder and the landing's order demand. Its rule is tested here on real Postgres: which rows
are stock lines, which row carries a line's money, which lines need fulfilment, how values that are
not numbers read, and that each version has its own lines."""

from __future__ import annotations

from decimal import Decimal

import pytest
from psycopg.types.json import Jsonb

from oms.warehouse import apply_ddl, connect

from .conftest import fresh_database


def item(item_id, sku, product_type="simple", **fields):
    return {"item_id": item_id, "sku": sku, "product_type": product_type, "qty_ordered": 1, **fields}


VERSIONS = {  # record_key -> (entity_id, items)
    "7@v1": (7, [  # a configurable: the child row is the line, the parent row carries the money
        item(1, "TS-BLK-M", "configurable", qty_ordered=2, qty_invoiced=2, qty_shipped=1, price=50, row_total=100,
             tax_amount=5),
        item(2, "TS-BLK-M", parent_item_id=1, qty_ordered=2, qty_invoiced=2, qty_shipped=1, price=0, row_total=0,
             tax_amount=0, weight="0.4"),
    ]),
    "8@v1": (8, [  # a bundle: each component is a line with its own quantities and money
        item(3, "GIFTSET-A-B", "bundle", price=30, row_total=30, tax_amount=1.5),
        item(4, "A", parent_item_id=3, price=10, row_total=10, tax_amount=0.5),
        item(5, "B", parent_item_id=3, qty_ordered=2, price=10, row_total=20, tax_amount=1),
    ]),
    "9@v1": (9, [  # virtual (by flag or by type) and downloadable rows need no fulfilment
        item(7, "GIFTWRAP-STD", "virtual", qty_invoiced=1, price=15, row_total=15),
        item(8, "LOOKBOOK-DIGITAL", "downloadable", price=19, row_total=19),
        item(9, "E-CARD", is_virtual="1", price=5, row_total=5),
    ]),
    "10@v1": (10, [  # absent type is simple; absent quantities are 0; text that is no number is null
        {"item_id": "11", "sku": " CAP ", "qty_ordered": "3", "qty_canceled": "one", "price": "1e3"},
    ]),
    "10@v2": (10, [item(11, "CAP", qty_ordered=4), item(12, "BELT")]),   # a later version, its own lines
}


@pytest.fixture(scope="module")
def dsn(pg_cluster):
    dsn = fresh_database(pg_cluster, "oms_test_order_lines")
    apply_ddl(dsn)
    with connect(dsn) as conn:
        for n, (record_key, (entity_id, items)) in enumerate(VERSIONS.items()):
            conn.execute(
                "INSERT INTO raw.magento_order (record_key, entity_id, updated_at, increment_id, store_id, payload,"
                " batch_id, data_interval_start, data_interval_end)"
                " VALUES (%s, %s, now() + make_interval(secs => %s), %s, 1, %s, 'b', now(), now())",
                (record_key, entity_id, n, f"AE{entity_id}",
                 Jsonb({"entity_id": entity_id, "items": items})))
    return dsn


def lines(dsn: str, record_key: str) -> list[dict]:
    with connect(dsn) as conn:
        return conn.execute("SELECT * FROM raw.magento_order_line WHERE record_key = %s ORDER BY item_id",
                            (record_key,)).fetchall()


def test_a_configurable_is_one_line_with_the_childs_quantities_and_the_parents_money(dsn):
    [line] = lines(dsn, "7@v1")
    assert {k: line[k] for k in ("line_key", "entity_id", "increment_id", "item_id", "parent_item_id", "sku",
                                 "product_type", "parent_product_type", "qty_ordered", "qty_shipped",
                                 "unit_price", "row_total", "tax_amount", "weight", "requires_fulfilment")} == {
        "line_key": "7-2", "entity_id": 7, "increment_id": "AE7", "item_id": 2, "parent_item_id": 1,
        "sku": "TS-BLK-M", "product_type": "simple", "parent_product_type": "configurable",
        "qty_ordered": 2, "qty_shipped": 1, "unit_price": 50, "row_total": 100, "tax_amount": 5,
        "weight": Decimal("0.4"), "requires_fulfilment": True}


def test_a_bundles_components_are_lines_with_their_own_money_and_the_parent_is_none(dsn):
    assert [(r["line_key"], r["sku"], r["parent_product_type"], r["qty_ordered"], r["unit_price"], r["row_total"],
             r["tax_amount"]) for r in lines(dsn, "8@v1")] == [
        ("8-4", "A", "bundle", 1, 10, 10, Decimal("0.5")),
        ("8-5", "B", "bundle", 2, 10, 20, 1)]


def test_virtual_and_downloadable_lines_need_no_fulfilment(dsn):
    assert [(r["sku"], r["requires_fulfilment"]) for r in lines(dsn, "9@v1")] == [
        ("GIFTWRAP-STD", False), ("LOOKBOOK-DIGITAL", False), ("E-CARD", False)]


def test_values_read_as_dbts_safe_casts_read_them(dsn):
    [line] = lines(dsn, "10@v1")
    assert (line["line_key"], line["item_id"], line["sku"], line["product_type"], line["qty_ordered"],
            line["qty_shipped"], line["qty_canceled"], line["unit_price"], line["discount_amount"]) == (
        "10-11", 11, "CAP", "simple", 3, 0, 0, None, 0)


def test_each_version_has_its_own_lines(dsn):
    assert [(r["line_key"], r["qty_ordered"]) for r in lines(dsn, "10@v2")] == [("10-11", 4), ("10-12", 1)]


def test_the_item_view_keeps_parents_in_their_place(dsn):
    with connect(dsn) as conn:
        rows = conn.execute("SELECT order_item_key, item_position, product_type FROM raw.magento_order_item"
                            " WHERE record_key = '8@v1' ORDER BY item_position").fetchall()
    assert [(r["order_item_key"], r["item_position"], r["product_type"]) for r in rows] == [
        ("8-3", 1, "bundle"), ("8-4", 2, "simple"), ("8-5", 3, "simple")]
