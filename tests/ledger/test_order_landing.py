"""Orders reserve the moment they land: the push (POST /v1/magento/orders) and the pull's landing
transaction hold each stock line at once, with no dbt build in between; later versions adjust."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from oms import tokens
from oms.inventory import movements, order_demand
from oms.magento.landing import land_orders
from oms.warehouse import connect

from ..magento_shapes import item, mixed_order, order
from .helpers import atp_via_api, auth, rebuild_marts

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


@pytest.fixture(scope="module")
def push_token(ledger_dsn) -> str:
    with connect(ledger_dsn) as conn:
        return tokens.create_token(conn, "magento-webhook", ["orders:write"])


def _order(entity_id: int, sku: str, qty: int, minutes: int = 0, **kwargs):
    return order(entity_id, [item(entity_id * 10 + 1, sku, qty=qty, price=20.0)], T0 + timedelta(minutes=minutes),
                 **kwargs)


def _holds(dsn: str, increment_id: str) -> Decimal:
    with connect(dsn) as conn:
        return conn.execute("SELECT coalesce(sum(qty), 0) AS q FROM oms.reservation WHERE order_increment_id = %s"
                            " AND status = 'active'", (increment_id,)).fetchone()["q"]


def test_a_pushed_order_lowers_atp_at_once_and_a_replay_changes_nothing(clean_ledger, api_client, ledger_tokens,
                                                                        push_token):
    read = ledger_tokens["stock:read"]
    before, _, _ = atp_via_api(api_client, read, "PUSH-TEE")
    assert before["AE"] == 7                      # 6 + 2 − buffer 1

    body = _order(910001, "PUSH-TEE", 2)
    first = api_client.post("/v1/magento/orders", json=body, headers=auth(push_token))
    assert first.status_code == 200, first.text
    answer = first.json()
    assert (answer["received"], answer["landed"], answer["duplicates"]) == (1, 1, 0)
    [line] = answer["orders"][0]["lines"]
    assert line["status"] == "reserved" and Decimal(line["reserved_qty"]) == 2
    # the very next look-up, no dbt build and no waiting in between
    after, _, _ = atp_via_api(api_client, read, "PUSH-TEE", catch_up=False)
    assert after["AE"] == before["AE"] - 2

    again = api_client.post("/v1/magento/orders", json=body, headers=auth(push_token))
    assert again.status_code == 200 and again.json()["duplicates"] == 1
    assert again.json()["orders"][0]["lines"][0]["status"] == "unchanged"
    assert atp_via_api(api_client, read, "PUSH-TEE", catch_up=False)[0]["AE"] == after["AE"]

    # the pull brings the same version: it lands nothing twice and holds nothing more
    with connect(clean_ledger) as conn:
        landed = land_orders(conn, [body], "pull-window", T0, T0 + timedelta(minutes=10), "ae_web")
        results = order_demand.reserve_orders(conn, landed.entity_ids)
    assert (landed.inserted, landed.replaced) == (0, 0)
    assert [r.status for r in results] == ["unchanged"]
    assert _holds(clean_ledger, body["increment_id"]) == 2

    # a later version: the customer cancels one unit (Magento's qty_canceled), then the whole order
    edited = _order(910001, "PUSH-TEE", 2, minutes=5)
    edited["items"][0]["qty_canceled"] = 1
    assert api_client.post("/v1/magento/orders", json=edited, headers=auth(push_token)).status_code == 200
    assert atp_via_api(api_client, read, "PUSH-TEE", catch_up=False)[0]["AE"] == before["AE"] - 1
    cancelled = _order(910001, "PUSH-TEE", 2, minutes=9, state="canceled")
    assert api_client.post("/v1/magento/orders", json=cancelled, headers=auth(push_token)).status_code == 200
    assert atp_via_api(api_client, read, "PUSH-TEE", catch_up=False)[0]["AE"] == before["AE"]
    # the pull re-reading the first version later (its overlap) does not bring the hold back
    with connect(clean_ledger) as conn:
        order_demand.reserve_orders(conn, land_orders(conn, [body], "late", T0, T0, None).entity_ids)
    assert _holds(clean_ledger, body["increment_id"]) == 0


def test_a_list_is_answered_per_order_and_a_malformed_order_is_quarantined(clean_ledger, api_client, ledger_tokens,
                                                                           push_token):
    good = _order(910002, "PUSH-CAP", 1)
    broken = _order(910003, "PUSH-CAP", 1)
    broken.pop("items")
    both = api_client.post("/v1/magento/orders", json=[good, broken], headers=auth(push_token))
    assert both.status_code == 207, both.text
    statuses = [(o["entity_id"], o["status"]) for o in both.json()["orders"]]
    assert statuses == [(910002, "landed"), (910003, "quarantined")]
    assert both.json()["orders"][1]["quarantine"][0]["reason"] == "missing_items"
    assert both.json()["orders"][1]["lines"] == []

    alone = api_client.post("/v1/magento/orders", json=broken, headers=auth(push_token))
    assert alone.status_code == 422 and alone.json()["error"]["code"] == "orders_quarantined"
    assert alone.json()["error"]["details"]["orders"][0]["status"] == "quarantined"
    with connect(clean_ledger) as conn:
        kept = conn.execute("SELECT reason, payload FROM raw.quarantine WHERE source = 'magento_order'"
                            " AND record_key = %s AND resolved_at IS NULL", ("910003@" + broken["updated_at"]
                                                                              .replace(" ", "T") + "Z",)).fetchall()
    assert [k["reason"] for k in kept] == ["missing_items"] and kept[0]["payload"]["entity_id"] == 910003
    assert _holds(clean_ledger, broken["increment_id"]) == 0 and _holds(clean_ledger, good["increment_id"]) == 1

    for bad_body in ("not json", "[]", '"an order"'):
        response = api_client.post("/v1/magento/orders", content=bad_body, headers={
            **auth(push_token), "Content-Type": "application/json"})
        assert response.status_code == 422, bad_body
    # an unknown SKU is an order exception: the order lands, the line holds nothing
    unknown = _order(910004, "NOT-IN-CATALOGUE", 1)
    answer = api_client.post("/v1/magento/orders", json=unknown, headers=auth(push_token))
    assert answer.status_code == 200 and answer.json()["orders"][0]["status"] == "landed"
    assert [e["reason"] for e in answer.json()["orders"][0]["exceptions"]] == ["unknown_sku"]


def test_push_needs_orders_write(api_client, ledger_tokens):
    body = _order(910005, "PUSH-CAP", 1)
    assert api_client.post("/v1/magento/orders", json=body).status_code == 401
    assert api_client.post("/v1/magento/orders", json=body,
                           headers=auth(ledger_tokens["stock:read"])).status_code == 403


def test_landing_reads_the_stock_lines_as_dbt_does(clean_ledger, push_token, api_client):
    """The landing hook's lines and open quantities agree with fct_order_lines after a build."""
    skus = {"tshirt": "PUSH-TEE", "comp_a": "PUSH-CAP", "comp_b": "PUSH-BAG", "jeans": "PUSH-SOCK"}
    mixed = mixed_order(91006, T0, skus)
    click = _order(910007, "PUSH-BAG", 1, pickup_location_code="ae-st-01", shipping_method="instore_pickup")
    pending = _order(910008, "PUSH-SOCK", 2, state="pending_payment")
    for body in (mixed, click, pending):
        response = api_client.post("/v1/magento/orders", json=body, headers=auth(push_token))
        assert response.status_code == 200, response.text
    with connect(clean_ledger) as conn:
        demands = {(d.order_increment_id, d.line_key): d for d in order_demand.demands_for(conn, [91006, 910007,
                                                                                                  910008])}
    assert rebuild_marts(clean_ledger)["dbt_failed"] == 0
    with connect(clean_ledger) as conn:
        marts = {(r["increment_id"], r["line_key"]): r for r in conn.execute(
            "SELECT l.increment_id, l.line_key, l.sku, l.qty_open, o.pickup_store_id FROM marts.fct_order_lines l"
            " JOIN marts.fct_orders o USING (increment_id)"
            " WHERE l.requires_fulfilment AND l.is_known_sku AND l.increment_id = ANY(%s)",
            ([mixed["increment_id"], click["increment_id"], pending["increment_id"]],))}
        held = {(r["order_increment_id"], r["line_key"]): (r["store_id"], r["qty"]) for r in conn.execute(
            "SELECT order_increment_id, line_key, store_id, qty FROM oms.reservation WHERE status = 'active'")}
    assert set(demands) == set(marts) and len(marts) == 6
    for key, row in marts.items():
        assert (demands[key].sku, Decimal(str(demands[key].open_qty)), demands[key].pickup_store_id) == \
            (row["sku"], row["qty_open"], row["pickup_store_id"]), key
        assert held[key] == (row["pickup_store_id"], row["qty_open"]), key


def _shortfalls(dsn: str) -> dict[str, Decimal]:
    with connect(dsn) as conn:
        return {r["order_increment_id"]: r["qty"] for r in conn.execute(
            "SELECT order_increment_id, qty FROM oms.reservation_shortfall WHERE sku = 'BACK-CAP'")}


def test_a_backordered_line_takes_incoming_stock_before_a_newer_order(clean_ledger, api_client, ledger_tokens,
                                                                      push_token):
    read = ledger_tokens["stock:read"]
    atp = atp_via_api(api_client, read, "BACK-CAP")[0]["AE"]
    older = _order(910101, "BACK-CAP", int(atp) + 2)
    newer = _order(910102, "BACK-CAP", 1, minutes=1)
    for body, status in ((older, "short"), (newer, "short")):
        answer = api_client.post("/v1/magento/orders", json=body, headers=auth(push_token))
        assert answer.status_code == 200, answer.text
        assert answer.json()["orders"][0]["lines"][0]["status"] == status
    assert _holds(clean_ledger, older["increment_id"]) == atp and _holds(clean_ledger, newer["increment_id"]) == 0
    assert _shortfalls(clean_ledger) == {older["increment_id"]: 2, newer["increment_id"]: 1}

    def receive(document: str, qty: int) -> list:
        with connect(clean_ledger) as conn:
            assert not movements.record_movements(conn, [{
                "document_id": document, "line_no": 1, "movement_type": "receipt", "store_id": "AE-WH-01",
                "sku": "BACK-CAP", "qty": qty, "posted_at": datetime.now(UTC).isoformat()}],
                datetime.now(UTC))["rejected"]
            # what the stock publish does before offering Magento the new units
            return order_demand.refill_shortfalls(conn, [("AE", "BACK-CAP")])

    # two units come in: both go to the older order's missing units, none to the newer order
    refilled = receive("RCV-BACK-1", 2)
    assert {(r.demand.order_increment_id, r.status) for r in refilled} == {
        (older["increment_id"], "reserved"), (newer["increment_id"], "short")}
    assert _holds(clean_ledger, older["increment_id"]) == atp + 2 and _holds(clean_ledger, newer["increment_id"]) == 0
    assert _shortfalls(clean_ledger) == {newer["increment_id"]: 1}
    assert atp_via_api(api_client, read, "BACK-CAP")[0]["AE"] == 0

    # the next unit is the newer order's; then nothing waits and nothing more is held
    receive("RCV-BACK-2", 1)
    assert _holds(clean_ledger, newer["increment_id"]) == 1 and _shortfalls(clean_ledger) == {}
    receive("RCV-BACK-3", 1)
    assert atp_via_api(api_client, read, "BACK-CAP")[0]["AE"] == 1

    # a line cancelled while it waits asks for nothing: its claim goes with the version that cancels it
    later = _order(910103, "BACK-CAP", 3, minutes=2)
    assert api_client.post("/v1/magento/orders", json=later, headers=auth(push_token)).status_code == 200
    assert _shortfalls(clean_ledger) == {later["increment_id"]: 2}
    cancelled = _order(910103, "BACK-CAP", 3, minutes=3, state="canceled")
    assert api_client.post("/v1/magento/orders", json=cancelled, headers=auth(push_token)).status_code == 200
    assert _shortfalls(clean_ledger) == {} and _holds(clean_ledger, later["increment_id"]) == 0
