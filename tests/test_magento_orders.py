"""Magento orders in, through every layer: the client against the Magento sandbox (a real process,
real HTTP, its fault switches), landing and the validation gate on the real Postgres, the DAG
through dag.test(), dbt to marts.fct_orders / marts.fct_order_lines.

Runs in a warehouse database of its own (the tests empty the raw tables between scenarios);
dag.test() reaches it through the oms_warehouse connection, pointed there for this module.
Expected lines are computed here from the orders, independently of the SQL under test.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from oms import reference
from oms.integrations.magento import MagentoApiError, MagentoClient, magento_timestamp
from oms.magento.landing import land_orders
from oms.tasks import atp_build as atp
from oms.tasks.magento_orders_ingest import batch_id_for
from oms.validation.magento_orders import validate_window
from oms.warehouse import connect
from omsdev import demo, demo_data

from .magento_shapes import MIXED_ORDER_LINES, address, item, magento_time, mixed_order, order

DAGS = Path(__file__).resolve().parents[1] / "dags"
DAY = datetime(2026, 3, 2, tzinfo=UTC)
TEN = timedelta(minutes=10)


def window(n: int) -> tuple[datetime, datetime]:
    """The n-th */10 data interval of the day from 10:00: window(0) = [10:00, 10:10)."""
    start = DAY + timedelta(hours=10) + n * TEN
    return start, start + TEN


# --- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dsn(pg_cluster):
    from oms.warehouse import apply_ddl

    from .conftest import fresh_database

    database_dsn = fresh_database(pg_cluster, "oms_test_magento")
    apply_ddl(database_dsn)
    return database_dsn


@pytest.fixture(scope="module")
def catalogue(dsn):
    """Reference data: demo channels (AE = Magento store 1, QA = store 2), locations, SKUs."""
    data = demo_data.generate(skus=16, stores_per_country=2, orders=12, seed=3, as_of=DAY)
    with connect(dsn) as conn:
        reference.upsert_channels(conn, demo.channel_rows(data))
        reference.upsert_locations(conn, data.locations)
        reference.upsert_skus(conn, data.skus)
    return data


@pytest.fixture(scope="module")
def skus(catalogue) -> dict[str, str]:
    codes = [s["sku"] for s in catalogue.skus]
    return {"tshirt": codes[0], "comp_a": codes[1], "comp_b": codes[2], "jeans": codes[3]}


@pytest.fixture
def magento(settings, sandboxes) -> str:
    """The Magento sandbox, emptied: no orders, no faults, an empty request log."""
    httpx.post(f"{settings.magento_url}/_sandbox/reset", json={}, timeout=30).raise_for_status()
    return settings.magento_url


@pytest.fixture
def warehouse(dsn, catalogue):
    """The module's warehouse with no orders landed, no quarantine, no exceptions, no watermark."""
    with connect(dsn) as conn:
        conn.execute("TRUNCATE raw.magento_order, raw.quarantine, oms.order_exception, oms.ingest_watermark")
    return dsn


def load(url: str, orders: list[dict]) -> None:
    httpx.post(f"{url}/_sandbox/orders", json=orders, timeout=30).raise_for_status()


def client(settings, **kwargs) -> MagentoClient:
    return MagentoClient(settings.magento_url, settings.magento_token, **kwargs)


def order_requests(url: str) -> list[dict]:
    return [r for r in httpx.get(f"{url}/_sandbox/requests", timeout=10).json() if r["path"].endswith("/V1/orders")]


def simple_order(entity_id: int, updated_at: datetime, sku: str, **kwargs) -> dict:
    return order(entity_id, [item(entity_id * 100 + 1, sku, qty=1, price=20.0)], updated_at, **kwargs)


# --- the client against the sandbox ------------------------------------------------------------------


def test_client_pages_by_total_count_not_until_an_empty_page(settings, magento, skus):
    start, end = window(0)
    stamps = [start, start, start + timedelta(seconds=40), start + timedelta(minutes=3),
              start + timedelta(minutes=5), start + timedelta(minutes=9, seconds=59), start + timedelta(minutes=7)]
    inside = [simple_order(10 + i, stamp, skus["jeans"], store_id=2 if i in (2, 5) else 1)
              for i, stamp in enumerate(stamps)]
    outside = [simple_order(1, start - timedelta(seconds=1), skus["jeans"]),
               simple_order(2, end, skus["jeans"])]
    load(magento, outside + inside[::-1])

    with client(settings) as magento_client:
        got = list(magento_client.iter_orders_updated(start, end, page_size=3))
    expected = sorted(inside, key=lambda o: (o["updated_at"], o["entity_id"]))
    assert [o["entity_id"] for o in got] == [o["entity_id"] for o in expected]

    # 7 orders, pages of 3: exactly pages 1..3, although the sandbox repeats page 3 past the end
    requests = order_requests(magento)
    assert [r["query"]["searchCriteria[currentPage]"] for r in requests] == ["1", "2", "3"]
    query = requests[0]["query"]
    assert query["searchCriteria[filter_groups][0][filters][0][field]"] == "updated_at"
    assert query["searchCriteria[filter_groups][0][filters][0][condition_type]"] == "gteq"
    assert query["searchCriteria[filter_groups][0][filters][0][value]"] == "2026-03-02 10:00:00"
    assert query["searchCriteria[filter_groups][1][filters][0][condition_type]"] == "lt"
    assert query["searchCriteria[filter_groups][1][filters][0][value]"] == "2026-03-02 10:10:00"
    assert [query[f"searchCriteria[sortOrders][{i}][field]"] for i in (0, 1)] == ["updated_at", "entity_id"]
    assert requests[0]["headers"]["authorization"] == f"Bearer {settings.magento_token}"

    # one channel's store, every other store; the store code goes into the path
    with client(settings, store_code="ae") as magento_client:
        store_2 = [o["entity_id"] for o in magento_client.iter_orders_updated(start, end, store_ids=[2])]
        not_1 = [o["entity_id"] for o in magento_client.iter_orders_updated(start, end, exclude_store_ids=[1])]
    assert store_2 == not_1 == [12, 15]
    assert order_requests(magento)[-1]["path"] == "/rest/ae/V1/orders"


def test_client_retries_5xx_and_429_and_names_auth_errors(settings, magento, skus):
    start, end = window(0)
    orders = [simple_order(20 + i, start + timedelta(seconds=30 * i), skus["jeans"]) for i in range(7)]
    load(magento, orders)
    httpx.post(f"{magento}/_sandbox/faults", json={"error_rate": 0.5, "rate_429": 0.25, "seed": 17},
               timeout=10).raise_for_status()
    with client(settings) as magento_client:
        got = list(magento_client.iter_orders_updated(start, end, page_size=3))
    assert sorted(o["entity_id"] for o in got) == [o["entity_id"] for o in orders]
    faults = [r["status"] for r in order_requests(magento) if r["fault"]]
    assert 429 in faults and any(status >= 500 for status in faults)

    httpx.delete(f"{magento}/_sandbox/faults", timeout=10).raise_for_status()
    httpx.delete(f"{magento}/_sandbox/requests", timeout=10).raise_for_status()
    with MagentoClient(settings.magento_url, "wrong-token") as wrong, pytest.raises(MagentoApiError) as error:
        list(wrong.iter_orders_updated(start, end))
    assert "401" in str(error.value) and "Magento_Sales::actions_view" in str(error.value)
    assert len(order_requests(magento)) == 1  # a 401 is not retried
    with pytest.raises(ValueError, match="timezone"):
        magento_timestamp(datetime(2026, 3, 2, 10, 0))


# --- landing and the validation gate -----------------------------------------------------------------


def test_landing_is_keyed_on_order_version(warehouse, skus):
    start, end = window(0)
    first = simple_order(30, start + timedelta(minutes=1), skus["jeans"])
    second = simple_order(31, start + timedelta(minutes=2), skus["jeans"], store_id=2)
    unkeyed = {"increment_id": "AE-NO-ID", "items": []}
    batch = batch_id_for(start, end)
    with connect(warehouse) as conn:
        landed = land_orders(conn, [first, second, unkeyed], batch, start, end, "ae_web")
        again = land_orders(conn, [second, first, unkeyed], batch, start, end, "ae_web")
        # the same version changed within its second: the later pull is the newer state
        changed = {**first, "status": "picking"}
        replaced = land_orders(conn, [first, changed], batch, start, end, "ae_web")
        rows = conn.execute("SELECT * FROM raw.magento_order ORDER BY record_key").fetchall()
    assert (landed.received, landed.inserted, landed.replaced) == (3, 3, 0)
    assert (again.received, again.inserted, again.replaced) == (3, 0, 0)
    assert (replaced.inserted, replaced.replaced) == (0, 1)
    by_key = {r["record_key"]: r for r in rows}
    row = by_key["30@2026-03-02T10:01:00Z"]
    assert (row["entity_id"], row["increment_id"], row["store_id"], row["channel_code"], row["batch_id"]) == (
        30, "AE000000030", 1, "ae_web", batch)
    assert row["updated_at"] == start + timedelta(minutes=1)
    assert row["payload"]["status"] == "picking"
    assert by_key["31@2026-03-02T10:02:00Z"]["store_id"] == 2
    [unkeyed_row] = [r for key, r in by_key.items() if key.startswith("sha1:")]
    assert unkeyed_row["entity_id"] is None and unkeyed_row["payload"] == unkeyed


def _open_exceptions(conn) -> set[tuple[int, str]]:
    return {(r["entity_id"], r["reason"]) for r in conn.execute(
        "SELECT entity_id, reason FROM oms.order_exception WHERE resolved_at IS NULL")}


def test_gate_quarantines_malformed_orders_and_queues_exceptions(warehouse, catalogue, skus):
    start, end = window(0)
    t = start + timedelta(minutes=1)
    sku = skus["jeans"]
    pickup = next(loc for loc in catalogue.locations if loc["pickup_enabled"] and loc["country_code"] == "AE")
    warehouse_site = next(loc for loc in catalogue.locations if loc["location_type"] == "warehouse")
    no_id = simple_order(0, t, sku)
    del no_id["entity_id"]
    bad_dates = {**simple_order(41, t, sku), "increment_id": " ", "created_at": "soon"}
    no_items = {**simple_order(42, t, sku), "items": []}
    bad_items = order(43, [item(4301, sku), item(4302, sku)], t)
    bad_items["items"][0]["qty_ordered"] = "two"
    del bad_items["items"][1]["sku"]
    bad_updated = {**simple_order(44, t, sku), "updated_at": "yesterday"}
    malformed = [no_id, bad_dates, no_items, bad_items, bad_updated, "not an order"]
    digital_only = order(55, [item(5501, "LOOKBOOK-DIGITAL", "downloadable", qty=1, price=9)], t, shipping=None)
    exceptions = [
        simple_order(50, t, sku, store_id=9),                                              # unknown channel
        order(51, [item(5101, "NO-SUCH-SKU", qty=1, price=5), item(5102, sku, qty=1, price=5)], t),
        simple_order(52, t, sku, shipping_method="instore_pickup", pickup_location_code="XX-ST-99"),
        simple_order(53, t, sku, shipping_method="instore_pickup",
                     pickup_location_code=warehouse_site["magento_source_code"]),
        simple_order(54, t, sku, shipping=None),                                           # nowhere to ship
        {**simple_order(60, t, sku), "extension_attributes": {}},                          # no assignment
        order(56, [item(5601, sku, qty=0, price=5)], t),                                   # non-positive qty
        simple_order(57, t, sku, state="pending_payment"),                                 # stale by 10:05
        simple_order(58, start + timedelta(minutes=8), sku, state="payment_review"),       # not yet
    ]
    fine = [mixed_order(40, t, skus), digital_only,
            simple_order(59, t, sku, shipping=None, shipping_method="instore_pickup",
                         pickup_location_code=pickup["magento_source_code"])]
    batch = batch_id_for(start, end)
    timeout = timedelta(minutes=5)
    with connect(warehouse) as conn:
        land_orders(conn, fine + malformed + exceptions, batch, start, end, "ae_web")
        result = validate_window(conn, batch, start, end, start - TEN, timeout)
        quarantined = conn.execute(
            "SELECT record_key, reason, detail, payload FROM raw.quarantine WHERE source = 'magento_order'"
        ).fetchall()
        keys = {r["record_key"]: r["payload"] for r in quarantined}
        raised = _open_exceptions(conn)
        detail = {r["reason"]: r["detail"] for r in conn.execute("SELECT reason, detail FROM oms.order_exception")}

    reasons_by_payload = {json.dumps(p, sort_keys=True): set() for p in keys.values()}
    for row in quarantined:
        reasons_by_payload[json.dumps(row["payload"], sort_keys=True)].add(row["reason"])
    assert {json.dumps(p, sort_keys=True) for p in malformed} == set(reasons_by_payload)
    assert reasons_by_payload[json.dumps(no_id, sort_keys=True)] == {"missing_entity_id"}
    assert reasons_by_payload[json.dumps(bad_dates, sort_keys=True)] == {"missing_increment_id",
                                                                         "missing_or_bad_created_at"}
    assert reasons_by_payload[json.dumps(no_items, sort_keys=True)] == {"missing_items"}
    assert reasons_by_payload[json.dumps(bad_items, sort_keys=True)] == {"malformed_item"}
    assert reasons_by_payload[json.dumps(bad_updated, sort_keys=True)] == {"missing_or_bad_updated_at"}
    assert reasons_by_payload[json.dumps("not an order")] >= {"missing_entity_id", "missing_items"}
    assert raised == {(50, "unknown_channel"), (51, "unknown_sku"), (52, "unknown_pickup_location"),
                      (53, "pickup_location_not_enabled"), (54, "missing_shipping_address"),
                      (60, "missing_shipping_address"),
                      (56, "non_positive_quantity"), (57, "payment_not_completed")}
    assert detail["unknown_sku"] == "not in ref.sku: NO-SUCH-SKU"
    assert detail["missing_shipping_address"] == "shipping address lacks address"
    assert detail["unknown_channel"] == "store_id=9 is not the Magento store of an active channel"
    assert "items[1] lacks sku" in next(r["detail"] for r in quarantined if r["reason"] == "malformed_item")
    assert result.checked == len(fine + malformed + exceptions) and not result.success
    assert result.quarantined_records == len(malformed)

    # The SKU is added, order 54 gets an address in a newer version, time passes (next window):
    # 51 passes its re-check, 54's old version is superseded, 58 has now waited too long.
    start_1, end_1 = window(1)
    with connect(warehouse) as conn:
        reference.upsert_skus(conn, [{"sku": "NO-SUCH-SKU", "name": "Added later"}])
        land_orders(conn, [simple_order(54, start_1 + timedelta(minutes=1), sku)], batch_id_for(start_1, end_1),
                    start_1, end_1, "ae_web")
        validate_window(conn, batch_id_for(start_1, end_1), start_1, end_1, start_1 - TEN, timeout)
        resolutions = {(r["entity_id"], r["reason"]): r["resolution"] for r in conn.execute(
            "SELECT entity_id, reason, resolution FROM oms.order_exception WHERE resolved_at IS NOT NULL")}
        after_window_1 = _open_exceptions(conn)
        snapshot = conn.execute(
            "SELECT entity_id, updated_at, reason, detail, resolution FROM oms.order_exception ORDER BY 1, 2, 3"
        ).fetchall()
        # backfilling the earlier window again changes nothing: time is the watermark, not the window
        validate_window(conn, batch, start, end, start - TEN, timeout)
        assert conn.execute(
            "SELECT entity_id, updated_at, reason, detail, resolution FROM oms.order_exception ORDER BY 1, 2, 3"
        ).fetchall() == snapshot
        conn.execute("DELETE FROM ref.sku WHERE sku = 'NO-SUCH-SKU'")
    assert resolutions == {(51, "unknown_sku"): "passed_recheck", (54, "missing_shipping_address"): "superseded"}
    assert after_window_1 == raised - set(resolutions) | {(58, "payment_not_completed")}


# --- the DAG, end to end -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dagbag(airflow_env, dsn):
    """The DAGs, with the oms_warehouse connection pointed at this module's database."""
    from urllib.parse import urlparse

    from airflow.dag_processing.dagbag import DagBag

    url = urlparse(dsn)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_OMS_WAREHOUSE", json.dumps(
            {"conn_type": "postgres", "host": url.hostname, "port": url.port, "login": url.username,
             "password": url.password or "", "schema": url.path.lstrip("/")}))
        yield DagBag(dag_folder=str(DAGS))


def build_marts(dsn: str, end: datetime) -> None:
    """What atp_build's task does (dbt build of the ATP and order marts), with the dbt profile's
    variables restored afterwards."""
    from oms.transform import profile_env

    with pytest.MonkeyPatch.context() as mp:
        for name in profile_env(dsn):
            mp.setenv(name, "")
        atp.build(dsn, "test", end)


def expected_lines(orders: list[dict]) -> dict[str, tuple]:
    """line_key -> (sku, qty_ordered, qty_open, unit_price, requires_fulfilment), by the rule:
    every row but configurable and bundle parents; a configurable child's money is its parent's."""
    lines = {}
    for o in orders:
        by_id = {i["item_id"]: i for i in o["items"]}
        for i in o["items"]:
            if i["product_type"] in ("configurable", "bundle"):
                continue
            parent = by_id.get(i.get("parent_item_id"))
            money = parent if parent and parent["product_type"] == "configurable" else i
            physical = not (i.get("is_virtual") or i["product_type"] in ("virtual", "downloadable"))
            done = max(i.get("qty_shipped", 0) if physical else i.get("qty_invoiced", 0), i.get("qty_refunded", 0))
            open_qty = max(i["qty_ordered"] - done - i.get("qty_canceled", 0), 0)
            lines[f"{o['entity_id']}-{i['item_id']}"] = (
                i["sku"], Decimal(str(i["qty_ordered"])), Decimal(str(open_qty)), Decimal(str(money["price"])), physical)
    return lines


def test_dag_lands_orders_into_the_order_marts(settings, magento, warehouse, dagbag, catalogue, skus):
    start, end = window(0)
    t = start + timedelta(minutes=3)
    demo_orders = [{**o, "updated_at": magento_time(start + timedelta(seconds=20 * n))}
                   for n, o in enumerate(catalogue.orders)]
    pickup = next(loc for loc in catalogue.locations if loc["pickup_enabled"] and loc["country_code"] == "QA")
    mixed = mixed_order(111, t, skus)
    collect = simple_order(112, t, skus["jeans"], store_id=2, currency="QAR", shipping_method="instore_pickup",
                           pickup_location_code=pickup["magento_source_code"],
                           shipping=address("shipping", "QA", street=[pickup["address_line"]]))
    foreign = simple_order(113, t, skus["jeans"], store_id=9)
    malformed = simple_order(114, t, skus["jeans"])
    malformed["items"][0]["qty_ordered"] = "two"
    load(magento, [*demo_orders, mixed, collect, foreign, malformed])

    run = dagbag.get_dag("magento_orders_ingest").test(logical_date=end)
    assert run.state == "success"
    build_marts(warehouse, end)

    with connect(warehouse) as conn:
        lines = conn.execute("SELECT * FROM marts.fct_order_lines").fetchall()
        orders = {r["entity_id"]: r for r in conn.execute("SELECT * FROM marts.fct_orders")}
        raw = conn.execute("SELECT count(*) AS n, min(batch_id) AS batch FROM raw.magento_order").fetchone()
        quarantined = conn.execute(
            "SELECT record_key, reason FROM raw.quarantine WHERE source = 'magento_order'").fetchall()
        raised = _open_exceptions(conn)

    # every order landed once; the malformed one is quarantined and nowhere in the marts
    assert raw["n"] == len(demo_orders) + 4 and raw["batch"] == batch_id_for(start, end)
    assert [(q["record_key"], q["reason"]) for q in quarantined] == [("114@2026-03-02T10:03:00Z", "malformed_item")]
    assert set(orders) == {o["entity_id"] for o in demo_orders} | {111, 112, 113}
    assert raised == {(113, "unknown_channel")}

    # the mixed order's stock lines: exactly these SKUs and quantities, and no parent rows
    mine = sorted((r for r in lines if r["entity_id"] == 111), key=lambda r: r["item_id"])
    names = {**skus, "GIFTWRAP-STD": "GIFTWRAP-STD", "LOOKBOOK-DIGITAL": "LOOKBOOK-DIGITAL"}
    assert [(r["sku"], r["product_type"], r["qty_ordered"], r["qty_shipped"], r["qty_canceled"], r["qty_open"],
             r["unit_price"], r["row_total"], r["requires_fulfilment"]) for r in mine] == [
        (names[key], kind, Decimal(ordered), Decimal(shipped), Decimal(canceled), Decimal(open_qty),
         Decimal(str(price)), Decimal(str(total)), physical)
        for key, kind, ordered, shipped, canceled, open_qty, price, total, physical in MIXED_ORDER_LINES]
    assert [r["parent_product_type"] for r in mine] == ["configurable", "bundle", "bundle", None, None, None]

    # every stock line of every order, computed here from the orders
    expected = expected_lines([*demo_orders, mixed, collect, foreign])
    assert {r["line_key"]: (r["sku"], r["qty_ordered"], r["qty_open"], r["unit_price"], r["requires_fulfilment"])
            for r in lines} == expected

    ae, qa, unknown = orders[111], orders[112], orders[113]
    assert (ae["increment_id"], ae["channel_code"], ae["country_code"], ae["state"], ae["fulfilment_status"],
            ae["payment_method"], ae["is_cod"], ae["currency_code"], ae["is_click_and_collect"]) == (
        "AE000000111", "ae_web", "AE", "processing", "ready_to_fulfil", "checkmo", False, "AED", False)
    assert (ae["ship_to_city"], ae["ship_to_country_code"], ae["ship_to_street"]) == ("Dubai", "AE",
                                                                                     "Villa 12, Al Wasl Road")
    assert ae["grand_total"] == Decimal(str(mixed["grand_total"]))
    assert ae["updated_at"] == t and ae["created_at"] == t
    assert (qa["channel_code"], qa["is_click_and_collect"], qa["pickup_store_id"]) == ("qa_web", True,
                                                                                       pickup["store_id"])
    assert (unknown["channel_code"], unknown["country_code"]) == (None, None)
    for o in demo_orders:
        row = orders[o["entity_id"]]
        assert (row["increment_id"], row["state"], row["is_cod"]) == (
            o["increment_id"], o["state"], o["payment"]["method"] == "cashondelivery")

    # the order API answers the same stock lines, the payment and the exception queue
    from fastapi.testclient import TestClient

    from api.app import create_app
    from oms import tokens

    with connect(warehouse) as conn:
        token = tokens.create_token(conn, "orders-api", ["orders:read"])
        stock_only = tokens.create_token(conn, "stock-only", ["stock:read"])
    headers = {"Authorization": f"Bearer {token}"}
    with TestClient(create_app(warehouse)) as api:
        body = api.get("/v1/orders/AE000000111", headers=headers).json()
        assert [(line["sku"], Decimal(str(line["qty_ordered"])), Decimal(str(line["qty_open"])))
                for line in body["lines"]] == [(r["sku"], r["qty_ordered"], r["qty_open"]) for r in mine]
        assert (body["payment_method"], body["fulfilment_status"], body["exceptions"]) == (
            "checkmo", "ready_to_fulfil", [])
        assert api.get("/v1/orders/AE000000111", headers={"Authorization": f"Bearer {stock_only}"}).status_code == 403
        assert api.get("/v1/orders/NO-SUCH", headers=headers).status_code == 404
        unknown_order = api.get(f"/v1/orders/{unknown['increment_id']}", headers=headers).json()
        assert [e["reason"] for e in unknown_order["exceptions"]] == ["unknown_channel"]
        queue = api.get("/v1/exceptions", headers=headers).json()
        assert queue["counts"] == {"unknown_channel": 1}
        assert [e["increment_id"] for e in queue["items"]] == [unknown["increment_id"]]
        listed, cursor = [], None
        while True:
            page = api.get("/v1/orders", headers=headers,
                           params={"limit": 7, **({"cursor": cursor} if cursor else {})}).json()
            listed += [o["increment_id"] for o in page["items"]]
            if not (cursor := page["next_cursor"]):
                break
        assert sorted(listed) == sorted(o["increment_id"] for o in orders.values()) and len(set(listed)) == len(listed)
        qa_only = api.get("/v1/orders", headers=headers, params={"country": "qa", "status": "ready_to_fulfil"}).json()
        assert all(o["country_code"] == "QA" and o["fulfilment_status"] == "ready_to_fulfil" for o in qa_only["items"])
        assert qa["increment_id"] in [o["increment_id"] for o in qa_only["items"]]


# What must be identical: raw versions, quarantine and exceptions by content, watermark, marts.
# Lineage columns (batch_id, data_interval_*, loaded_at, detected_at/resolved_at, surrogate ids)
# say which run landed or found a record first; with overlapping windows run in another order
# that is another run, by design, so they are left out.
WAREHOUSE_CONTENT = """
SELECT md5(string_agg(part, E'\\n' ORDER BY part)) AS digest FROM (
    SELECT 'raw|' || concat_ws('|', record_key, entity_id, updated_at, increment_id, store_id, channel_code,
                               payload::text) AS part
    FROM raw.magento_order
    UNION ALL
    SELECT 'quarantine|' || concat_ws('|', record_key, reason, detail, payload::text, resolved_at IS NULL)
    FROM raw.quarantine WHERE source = 'magento_order'
    UNION ALL
    SELECT 'exception|' || concat_ws('|', entity_id, updated_at, record_key, increment_id, reason, detail,
                                     payload::text, resolution)
    FROM oms.order_exception
    UNION ALL
    SELECT 'watermark|' || concat_ws('|', source, high_water_end) FROM oms.ingest_watermark
    {marts}
) AS parts
"""
MARTS = """
    UNION ALL SELECT 'fct_orders|' || t::text FROM marts.fct_orders t
    UNION ALL SELECT 'fct_order_lines|' || t::text FROM marts.fct_order_lines t
"""


def content_digest(dsn: str, with_marts: bool = True) -> str:
    with connect(dsn) as conn:
        return conn.execute(WAREHOUSE_CONTENT.format(marts=MARTS if with_marts else "")).fetchone()["digest"]


def rebuild_order_marts(dsn: str) -> None:
    from oms.transform import profile_env, run_dbt

    with pytest.MonkeyPatch.context() as mp:
        for name in profile_env(dsn):
            mp.setenv(name, "")
        run_dbt(dsn, "run", "--select", "+fct_orders", "+fct_order_lines")


def test_rerun_and_backfill_in_any_order_leave_the_warehouse_byte_identical(
        settings, magento, warehouse, dagbag, catalogue, skus, monkeypatch):
    monkeypatch.setenv("OMS_MAGENTO_PAGE_SIZE", "3")         # several pages per pull
    monkeypatch.setenv("OMS_PAYMENT_TIMEOUT_MINUTES", "20")  # the pending order goes stale mid-range
    start_1 = window(1)[0]
    at = {n: start_1 + timedelta(seconds=s) for n, s in enumerate(
        (-300, 0, 0, 0, 120, 599, 600, 600, 601, 1199, 1200, 1500, 1799, 1800, 2399))}
    sku = skus["jeans"]
    orders = [simple_order(200 + n, stamp, sku, store_id=2 if n % 3 == 0 else 1) for n, stamp in at.items()]
    orders += [mixed_order(220, at[4], skus), simple_order(221, at[5], sku, store_id=9),
               simple_order(222, at[1] + timedelta(minutes=2), sku, state="pending_payment")]
    malformed = simple_order(223, at[7], sku)
    malformed["items"][0]["qty_ordered"] = -1.5e-07
    load(magento, [*orders, malformed])
    ingest = dagbag.get_dag("magento_orders_ingest")

    def run_windows(*numbers: int) -> None:
        for n in numbers:
            assert ingest.test(logical_date=window(n)[1]).state == "success", f"window {n}"

    run_windows(1, 2, 3, 4)                  # the live runs, in order
    rebuild_order_marts(warehouse)
    clean = content_digest(warehouse)
    clean_raw = content_digest(warehouse, with_marts=False)
    with connect(warehouse) as conn:
        landed = {r["entity_id"] for r in conn.execute("SELECT entity_id FROM raw.magento_order")}
        raised = _open_exceptions(conn)
    assert landed == {o["entity_id"] for o in orders} | {223}
    assert raised == {(221, "unknown_channel"), (222, "payment_not_completed")}

    run_windows(2)                           # a re-run changes nothing
    assert content_digest(warehouse, with_marts=False) == clean_raw

    with connect(warehouse) as conn:         # a backfill of the range into an empty warehouse,
        conn.execute("TRUNCATE raw.magento_order, raw.quarantine, oms.order_exception, oms.ingest_watermark")
    run_windows(4, 3, 2, 1)                  # newest first: each overlap re-pulls what a later run landed
    rebuild_order_marts(warehouse)
    assert content_digest(warehouse) == clean


def test_catch_up_after_downtime_loses_nothing(settings, magento, warehouse, dagbag, skus):
    sku = skus["jeans"]
    stamps = [window(0)[0] + timedelta(minutes=2), *(window(n)[0] + timedelta(minutes=n) for n in (1, 2, 3, 4)),
              window(5)[0] + timedelta(minutes=5)]
    orders = [simple_order(300 + n, stamp, sku) for n, stamp in enumerate(stamps)]
    load(magento, orders)
    ingest = dagbag.get_dag("magento_orders_ingest")
    assert ingest.test(logical_date=window(0)[1]).state == "success"
    # down for four windows; the scheduler does not catch up, so the next run is [10:50, 11:00)
    assert ingest.test(logical_date=window(5)[1]).state == "success"
    with connect(warehouse) as conn:
        landed = {r["entity_id"]: r["batch_id"] for r in conn.execute("SELECT entity_id, batch_id FROM raw.magento_order")}
        watermark = conn.execute("SELECT high_water_end FROM oms.ingest_watermark").fetchone()["high_water_end"]
    assert set(landed) == {o["entity_id"] for o in orders}
    assert {landed[o["entity_id"]] for o in orders[1:]} == {batch_id_for(*window(5))}
    assert watermark == window(5)[1]
