"""The operator CLI: help everywhere, tokens that the API accepts, clear errors on bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from oms.cli import app
from oms.tokens import hash_token
from oms.warehouse import connect

runner = CliRunner()


@pytest.mark.parametrize("args", [[], ["pipeline"], ["sandbox"], ["token"], ["channel"], ["store"], ["db"]])
def test_help_everywhere(args):
    result = runner.invoke(app, [*args, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output


def test_token_create_prints_a_token_stored_only_as_hash(warehouse_dsn):
    result = runner.invoke(app, ["token", "create", "--scope", "stock:read", "--scope", "orders:read", "--name", "cli-test"])
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("oms_")
    with connect(warehouse_dsn) as conn:
        row = conn.execute("SELECT scopes, token_sha256 FROM oms.api_token WHERE name = 'cli-test'").fetchone()
    assert row["token_sha256"] == hash_token(token)
    assert sorted(row["scopes"]) == ["orders:read", "stock:read"]
    assert token not in json.dumps(row)


def test_token_create_rejects_unknown_scope(warehouse_dsn):
    result = runner.invoke(app, ["token", "create", "--scope", "stock:write"])
    assert result.exit_code == 2
    assert "unknown scope" in result.output


def test_store_add_validates_and_upserts(warehouse_dsn):
    with connect(warehouse_dsn) as conn:
        conn.execute("INSERT INTO ref.channel (channel_code, country_code, name, currency_code, magento_website_code,"
                     " magento_store_code, magento_stock_id) VALUES ('kw_web', 'KW', 'Kuwait', 'KWD', 'kw', 'kw', 5)"
                     " ON CONFLICT DO NOTHING")
    ok = runner.invoke(app, ["store", "add", "--store-id", "KW-ST-01", "--name", "The Avenues", "--country", "kw",
                             "--lat", "29.30", "--lon", "47.93"])
    assert ok.exit_code == 0, ok.output
    again = runner.invoke(app, ["store", "add", "--store-id", "KW-ST-01", "--name", "The Avenues Mall", "--country", "KW"])
    assert again.exit_code == 0
    with connect(warehouse_dsn) as conn:
        rows = conn.execute("SELECT name, magento_source_code FROM ref.location WHERE store_id = 'KW-ST-01'").fetchall()
    assert rows == [{"name": "The Avenues Mall", "magento_source_code": "kw-st-01"}]
    bad = runner.invoke(app, ["store", "add", "--store-id", "KW-ST-02", "--name", "X", "--country", "KW", "--lat", "123"])
    assert bad.exit_code == 2
    assert "latitude" in bad.output


def test_load_orders_rejects_a_file_that_is_not_an_order(tmp_path):
    path = tmp_path / "not-an-order.json"
    path.write_text(json.dumps({"hello": "world"}))
    result = runner.invoke(app, ["sandbox", "load-orders", str(path)])
    assert result.exit_code == 1
    assert "expected a Magento order" in " ".join(result.output.split())


@pytest.mark.parametrize("shape", ["one order", "a list", "a search result"])
def test_load_orders_takes_one_order_a_list_or_a_search_result(shape, sandboxes, tmp_path):
    # One order in the GET /V1/orders/{id} shape has `items` of its own (its lines): it is one order,
    # not a search result whose `items` are orders.
    from omsdev import demo_data

    orders = demo_data.generate(skus=5, stores_per_country=1, orders=2, seed=31, with_stock_rows=False).orders
    for offset, order in enumerate(orders):  # ids of their own: other tests' orders stay as they are
        order["entity_id"] = 990001 + offset
        order["increment_id"] = f"CLI{990001 + offset}"
    body = {"one order": orders[0], "a list": orders,
            "a search result": {"items": orders, "search_criteria": {}, "total_count": len(orders)}}[shape]
    path = tmp_path / "orders.json"
    path.write_text(json.dumps(body))
    result = runner.invoke(app, ["sandbox", "load-orders", str(path)])
    assert result.exit_code == 0, result.output
    expected = 1 if shape == "one order" else 2
    assert f"loaded {expected} order(s)" in result.output
