"""Returns in store through POST /v1/returns: refused requests change nothing; a sellable unit is in
the store's ATP at the next look-up, the ERP's later return receipt does not add it again, and
Magento gets one comment and one credit memo through the aftersale_magento_sync DAG."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from oms.warehouse import connect

from ..ledger.helpers import cache_caught_up
from .conftest import auth
from .data import JEANS_LINE, TEE_LINE

ORDER = "AE000005001"
COUNTED = ("oms.customer_return", "oms.customer_return_line", "oms.sales_posting", "oms.magento_outbox",
           "oms.notification", "oms.reservation")


def counts(dsn) -> dict[str, int]:
    with connect(dsn) as conn:
        return {t: conn.execute(f"SELECT count(*) AS n FROM {t}").fetchone()["n"] for t in COUNTED}


def store_atp(api, token, sku, store="AE-ST-01") -> Decimal:
    # the tests change the ledger from their own connections and DAG runs too, which reach the API's
    # ATP cache by NOTIFY (ADR 9): the look-up waits until the cache has heard them
    cache_caught_up(api)
    response = api.get(f"/v1/atp/{sku}", params={"country": "AE"}, headers=auth(token))
    assert response.status_code == 200, response.text
    (country,) = response.json()["countries"]
    return {s["store_id"]: Decimal(str(s["atp_qty"])) for s in country["stores"]}[store]


def ret(client_id, lines, store="AE-ST-01", order=ORDER, **extra):
    return {"client_return_id": client_id, "order_increment_id": order, "store_id": store, "lines": lines, **extra}


@pytest.mark.parametrize(("body", "status", "code"), [
    (ret("bad-1", [{"line_key": TEE_LINE, "qty": 1, "condition": "sellable"}], order="AE999999999"),
     404, "unknown_order"),
    (ret("bad-2", [{"line_key": "5001-999", "qty": 1, "condition": "sellable"}]), 422, "unknown_line"),
    (ret("bad-3", [{"sku": "RT-CAP", "qty": 1, "condition": "sellable"}]), 422, "unknown_line"),
    (ret("bad-4", [{"line_key": TEE_LINE, "qty": 3, "condition": "sellable"}]), 422, "more_than_shipped"),
    (ret("bad-5", [{"line_key": TEE_LINE, "qty": 1, "condition": "sellable"},
                   {"line_key": TEE_LINE, "qty": 2, "condition": "damaged"}]), 422, "more_than_shipped"),
    (ret("bad-6", [{"line_key": JEANS_LINE, "qty": 1, "condition": "sellable"}]), 422, "more_than_shipped"),
    (ret("bad-7", [{"line_key": TEE_LINE, "qty": 1, "condition": "sellable"}], store="QA-ST-01"),
     422, "wrong_country"),
    (ret("bad-8", [{"line_key": TEE_LINE, "qty": 1, "condition": "sellable"}], store="XX-NOPE"),
     422, "unknown_store"),
])
def test_a_bad_return_gets_a_clear_4xx_and_changes_nothing(api, aftersale_dsn, aftersale_tokens, body, status, code):
    before, atp_before = counts(aftersale_dsn), store_atp(api, aftersale_tokens["stock:read"], "RT-TEE")
    # a store token acts for its own stores only (403 for any other, tests/ledger/test_store_tokens.py):
    # an unknown store is reached with the ERP/POS token, which acts for every store
    token = aftersale_tokens["erp:write" if code == "unknown_store" else "store"]
    response = api.post("/v1/returns", json=body, headers=auth(token))
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]
    assert counts(aftersale_dsn) == before
    assert store_atp(api, aftersale_tokens["stock:read"], "RT-TEE") == atp_before


def test_malformed_and_unauthorised_requests_are_refused(api, aftersale_tokens):
    body = ret("auth-1", [{"line_key": TEE_LINE, "qty": 1, "condition": "sellable"}])
    assert api.post("/v1/returns", json=body).status_code == 401
    assert api.post("/v1/returns", json=body, headers=auth(aftersale_tokens["stock:read"])).status_code == 403
    bad = ret("auth-2", [{"line_key": TEE_LINE, "qty": 1, "condition": "like new"}])
    assert api.post("/v1/returns", json=bad, headers=auth(aftersale_tokens["store"])).status_code == 422
    assert api.post("/v1/returns", json=ret("auth-3", []), headers=auth(aftersale_tokens["store"])).status_code == 422


def test_a_sellable_return_is_in_atp_at_once_refunded_in_magento_once_and_not_recounted_by_the_erp(
        api, aftersale_dsn, aftersale_tokens, magento, dagbag, airflow_on_aftersale, settings):
    read, store = aftersale_tokens["stock:read"], aftersale_tokens["store"]
    before = store_atp(api, read, "RT-TEE")
    body = ret("POS-AE01-0001", [{"line_key": TEE_LINE, "qty": 1, "condition": "sellable"},
                                 {"sku": "RT-TEE", "qty": 1, "condition": "damaged"}])
    response = api.post("/v1/returns", json=body, headers=auth(store))
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["status"] == "received" and created["order_return_status"] == "returned_partially"
    assert [(x["condition"], x["restock"]) for x in created["lines"]] == [("sellable", True), ("damaged", False)]
    # the sellable unit (only) is on the store's shelf at the next look-up
    assert store_atp(api, read, "RT-TEE") == before + 1

    # a replay answers the same return and changes nothing; other content under the same id is refused
    replay = api.post("/v1/returns", json=body, headers=auth(aftersale_tokens["erp:write"]))
    assert replay.status_code == 200 and replay.json()["return_id"] == created["return_id"]
    changed = {**body, "lines": body["lines"][:1]}
    assert api.post("/v1/returns", json=changed, headers=auth(store)).json()["error"]["code"] == "conflicting_replay"
    assert store_atp(api, read, "RT-TEE") == before + 1
    # both shipped units are back now: a third is more than shipped
    again = api.post("/v1/returns", json=ret("POS-AE01-0002", [{"sku": "RT-TEE", "qty": 1, "condition": "sellable"}]),
                     headers=auth(store))
    assert again.json()["error"]["code"] == "more_than_shipped"

    # Magento: one comment and one offline credit memo, through the DAG, never from the request
    headers = {"Authorization": f"Bearer {settings.magento_token}"}

    def memos():
        found = httpx.get(f"{magento}/rest/V1/creditmemos", headers=headers, timeout=10, params={
            "searchCriteria[filter_groups][0][filters][0][field]": "order_id",
            "searchCriteria[filter_groups][0][filters][0][value]": "5001"}).json()["items"]
        return found

    assert memos() == []
    assert dagbag.get_dag("aftersale_magento_sync").test().state == "success"
    (memo,) = memos()
    assert [(i["order_item_id"], i["qty"]) for i in memo["items"]] == [(500101, 2)]
    assert memo["extension_attributes"]["return_to_stock_items"] == [500101]
    assert memo["grand_total"] == pytest.approx(210.0)  # 2 × (100 + 5 % tax)
    comments = httpx.get(f"{magento}/rest/V1/orders/5001/comments", headers=headers, timeout=10).json()["items"]
    assert sum(f"[OMS return {created['return_id']}]" in c["comment"] for c in comments) == 1
    # the record of the POSTs is lost (crash after the POST): the next run finds both, posts nothing
    mine = [f"comment:return:{created['return_id']}", f"creditmemo:return:{created['return_id']}"]
    with connect(aftersale_dsn) as conn:
        conn.execute("UPDATE oms.magento_outbox SET status = 'pending', magento_ref = NULL WHERE dedupe_key = ANY(%s)",
                     (mine,))
    assert dagbag.get_dag("aftersale_magento_sync").test().state == "success"
    assert len(memos()) == 1
    comments = httpx.get(f"{magento}/rest/V1/orders/5001/comments", headers=headers, timeout=10).json()["items"]
    assert sum(f"[OMS return {created['return_id']}]" in c["comment"] for c in comments) == 1
    with connect(aftersale_dsn) as conn:
        outbox = conn.execute("SELECT kind, status, magento_ref FROM oms.magento_outbox WHERE dedupe_key = ANY(%s) "
                              "ORDER BY kind", (mine,)).fetchall()
        notes = conn.execute("SELECT event, channel FROM oms.notification WHERE order_increment_id = %s "
                             "ORDER BY event, channel", (ORDER,)).fetchall()
    assert [(x["kind"], x["status"], x["magento_ref"]) for x in outbox] == \
        [("comment", "done", "comment"), ("creditmemo", "done", str(memo["entity_id"]))]
    assert [(x["event"], x["channel"]) for x in notes] == [
        ("refund_issued", "email"), ("refund_issued", "sms"), ("return_received", "email"), ("return_received", "sms")]

    # the ERP posts its return receipt for the line later: the unit was counted already
    receipt = {"lines": [{"document_id": "ERP-RET-0001", "line_no": 1, "movement_type": "return_receipt",
                              "store_id": "AE-ST-01", "sku": "RT-TEE", "qty": 1,
                              "posted_at": datetime.now(UTC).isoformat(), "order_increment_id": ORDER,
                              "order_line_key": TEE_LINE}]}
    posted = api.post("/v1/erp/stock-movements", json=receipt, headers=auth(aftersale_tokens["erp:write"]))
    assert posted.status_code in (200, 207), posted.text
    assert float(posted.json()["lines"][0]["settled_qty"]) == 1
    assert store_atp(api, read, "RT-TEE") == before + 1


def test_concurrent_returns_of_the_last_unit_take_it_once(aftersale_dsn):
    """Two tills return the same shipped unit at once under different ids: the order's lock lets
    one through; the other sees the first and is refused (more than shipped)."""
    from concurrent.futures import ThreadPoolExecutor

    from oms.aftersale import returns

    def attempt(client_id: str) -> str:
        req = returns.ReturnRequest.model_validate(
            ret(client_id, [{"sku": "RT-BAG", "qty": 2, "condition": "damaged"}], order="AE000005004",
                store="AE-ST-02"))
        try:
            with connect(aftersale_dsn) as conn:
                returns.create_return(conn, req)
                conn.execute("SELECT pg_sleep(0.2)")  # hold the lock while the other waits
            return "created"
        except returns.ReturnError as exc:
            return exc.code

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(attempt, ["TILL-1-0001", "TILL-2-0001"]))
    assert outcomes == ["created", "more_than_shipped"]
