"""ERP ↔ OMS through the API on the real Postgres: movements in (per-line validation, replays,
conflicts, quarantine, visible in the next ATP look-up), the sales-posting outbox out (leases,
redelivery, idempotent ack), the reconciliation rule (an ERP sale settles the hold of the unit
it sells: subtracted once), and scopes. The app runs in process with its lifespan (pool)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from oms.inventory import postings, reservations
from oms.warehouse import connect

from .helpers import (
    AFTER_SNAPSHOT,
    BEFORE_SNAPSHOT,
    NOW,
    SNAPSHOT_AT,
    atp_via_api,
    auth,
    rebuild_marts,
    store_live,
)


def line(document_id: str, line_no: int, movement_type: str, store_id: str, sku: str, qty, posted_at=AFTER_SNAPSHOT,
         **extra) -> dict:
    return {"document_id": document_id, "line_no": line_no, "movement_type": movement_type, "store_id": store_id,
            "sku": sku, "qty": qty, "posted_at": posted_at.isoformat(), **extra}


def post_movements(client, token, lines):
    return client.post("/v1/erp/stock-movements", json={"lines": lines}, headers=auth(token))


# --- movements in -------------------------------------------------------------------------------


def test_movement_batch_keeps_valid_lines_and_answers_each_bad_one(clean_ledger, api_client, ledger_tokens):
    good = [line("SHP-1001", 10000, "sale", "AE-WH-01", "MV-TEE", -2),
            line("ADJ-7", 1, "adjustment", "AE-ST-02", "MV-TEE", "1.5")]
    bad = [
        (line("ADJ-8", 1, "adjustment", "XX-ST-99", "MV-TEE", 1), {"unknown_store"}),
        (line("ADJ-8", 2, "adjustment", "AE-WH-01", "NO-SUCH-SKU", 1), {"unknown_sku"}),
        (line("RCV-1", 1, "teleport", "AE-WH-01", "MV-TEE", 1), {"unknown_movement_type"}),
        (line("SHP-1002", 1, "sale", "AE-WH-01", "MV-TEE", 3), {"qty_sign_mismatch"}),
        (line("ADJ-9", 1, "adjustment", "AE-WH-01", "MV-TEE", "abc"), {"invalid_qty"}),
        (line("ADJ-9", 2, "adjustment", "AE-WH-01", "MV-TEE", 0), {"invalid_qty"}),
        (line("ADJ-9", 3, "adjustment", "AE-WH-01", "MV-TEE", 1.23456), {"invalid_qty"}),
        ({"document_id": "ADJ-9", "line_no": 4, "movement_type": "receipt", "store_id": "AE-WH-01", "qty": 1},
         {"missing_field"}),  # no sku, no posted_at
        (line("ADJ-9", 5, "receipt", "AE-WH-01", "MV-TEE", 1, posted_at=NOW + timedelta(days=2)),
         {"posted_at_in_future"}),
        ({**line("ADJ-9", 6, "receipt", "AE-WH-01", "MV-TEE", 1), "posted_at": "2026-11-21 10:00"}, {"invalid_value"}),
        (line("SHP-1003", 1, "sale", "AE-WH-01", "MV-TEE", -1, order_increment_id="AE-100"), {"incomplete_order_ref"}),
        ("not an object", {"invalid_value"}),
        ({**line("RCV-2", 1, "receipt", "AE-WH-01", "MV-TEE", 1), "movement_type": ["receipt"], "line_no": "1",
          "store_id": 7}, {"unknown_movement_type", "invalid_value"}),
    ]
    response = post_movements(api_client, ledger_tokens["erp:write"], [*good, *(b for b, _ in bad)])
    assert response.status_code == 207, response.text
    body = response.json()
    assert (body["received"], body["accepted"], body["duplicates"], body["rejected"]) == (15, 2, 0, 13)
    statuses = [r["status"] for r in body["lines"]]
    assert statuses == ["accepted"] * 2 + ["rejected"] * 13
    for result, (_, reasons) in zip(body["lines"][2:], bad, strict=True):
        assert {e["reason"] for e in result["errors"]} == reasons, result
        assert all(e["message"] for e in result["errors"])
    missing = {e["field"] for e in body["lines"][9]["errors"]}
    assert missing == {"sku", "posted_at"}

    with connect(clean_ledger) as conn:
        stored = conn.execute("SELECT document_id, line_no, qty_delta, batch_id FROM oms.erp_movement ORDER BY 1").fetchall()
        quarantined = conn.execute(
            "SELECT record_key, reason, payload, batch_id FROM raw.quarantine WHERE source = 'erp_movement'").fetchall()
    assert [(r["document_id"], r["qty_delta"]) for r in stored] == [("ADJ-7", Decimal("1.5")), ("SHP-1001", Decimal(-2))]
    assert {r["batch_id"] for r in stored} == {body["batch_id"]}
    # every rejected line is kept with its reason(s) and the payload as received
    assert len({r["record_key"] for r in quarantined}) == 13
    assert {r["reason"] for r in quarantined} >= {"unknown_store", "unknown_sku", "qty_sign_mismatch",
                                                  "posted_at_in_future", "missing_field", "incomplete_order_ref"}
    assert {"document_id": "ADJ-8", "line_no": 1, "movement_type": "adjustment", "store_id": "XX-ST-99",
            "sku": "MV-TEE", "qty": 1, "posted_at": AFTER_SNAPSHOT.isoformat()} in [r["payload"] for r in quarantined]


def test_replay_is_a_no_op_and_a_conflicting_replay_is_rejected(clean_ledger, api_client, ledger_tokens):
    token = ledger_tokens["erp:write"]
    document = [line("TRF-55", 1, "transfer_out", "AE-WH-01", "MV-CAP", -1),
                line("TRF-55", 2, "transfer_in", "AE-ST-01", "MV-CAP", 1)]
    first = post_movements(api_client, token, document)
    assert first.status_code == 200 and first.json()["accepted"] == 2
    before = store_live(clean_ledger, "MV-CAP")

    replay = post_movements(api_client, token, document)
    assert replay.status_code == 200
    assert (replay.json()["accepted"], replay.json()["duplicates"]) == (0, 2)
    assert [r["movement_id"] for r in replay.json()["lines"]] == [r["movement_id"] for r in first.json()["lines"]]
    assert store_live(clean_ledger, "MV-CAP") == before

    changed = [line("TRF-55", 1, "transfer_out", "AE-WH-01", "MV-CAP", -3)]
    conflict = post_movements(api_client, token, changed)
    assert conflict.status_code == 207
    result = conflict.json()["lines"][0]
    assert result["status"] == "rejected" and result["errors"][0]["reason"] == "conflicting_replay"
    assert str(first.json()["lines"][0]["movement_id"]) in result["errors"][0]["message"]
    # the stored line is untouched, the conflicting version is quarantined
    assert store_live(clean_ledger, "MV-CAP") == before
    with connect(clean_ledger) as conn:
        assert conn.execute("SELECT qty_delta FROM oms.erp_movement WHERE document_id = 'TRF-55' AND line_no = 1"
                            ).fetchone()["qty_delta"] == -1
        assert conn.execute("SELECT payload->>'qty' AS q FROM raw.quarantine WHERE reason = 'conflicting_replay'"
                            ).fetchone()["q"] == "-3"

    # inside one batch: the same line twice is one movement; a different second version is a conflict
    batch = [line("ADJ-60", 1, "adjustment", "AE-WH-01", "MV-CAP", 2)] * 2 + [
        line("ADJ-60", 1, "adjustment", "AE-WH-01", "MV-CAP", 5)]
    answer = post_movements(api_client, token, batch).json()
    assert [r["status"] for r in answer["lines"]] == ["accepted", "duplicate", "rejected"]


def test_movement_is_visible_in_the_next_atp_request(clean_ledger, api_client, ledger_tokens):
    read, erp = ledger_tokens["stock:read"], ledger_tokens["erp:write"]
    countries, stores, body = atp_via_api(api_client, read, "MV-TEE")
    assert (countries["AE"], stores["AE-WH-01"], stores["AE-ST-02"]) == (13, 10, 5)
    assert body["snapshot"]["stock_as_of"] is not None and body["as_of"]

    # a receipt at the warehouse (eligible) and a sale at the pickup-only store (not eligible)
    assert post_movements(api_client, erp, [line("RCV-9", 1, "receipt", "AE-WH-01", "MV-TEE", 5),
                                            line("POS-3", 1, "sale", "AE-ST-02", "MV-TEE", -2)]).status_code == 200
    # the next request, no waiting: the API's answer cache dropped MV-TEE before the POST answered
    countries, stores, body = atp_via_api(api_client, read, "MV-TEE", catch_up=False)
    assert (countries["AE"], stores["AE-WH-01"], stores["AE-ST-02"]) == (18, 15, 3)
    full = api_client.get("/v1/atp/MV-TEE", params={"detail": "full", "store_id": "AE-WH-01"}, headers=auth(read))
    wh = full.json()["countries"][0]["stores"][0]
    assert (wh["snapshot_on_hand_qty"], wh["movement_qty"], wh["on_hand_qty"], wh["atp_qty"]) == (10, 5, 15, 15)
    assert wh["stock_as_of"] >= wh["snapshot_as_of"]
    summary = next(s for c in body["countries"] for s in c["stores"] if s["store_id"] == "AE-WH-01")
    assert set(summary) == {"store_id", "atp_qty", "on_hand_qty", "channel_eligible", "pickup_enabled"}

    # a movement the ERP posted before its snapshot is already in it: recorded, not added again
    late = post_movements(api_client, erp, [line("ADJ-OLD", 1, "adjustment", "AE-WH-01", "MV-TEE", -4,
                                                 posted_at=BEFORE_SNAPSHOT)])
    assert late.json()["accepted"] == 1
    assert atp_via_api(api_client, read, "MV-TEE", catch_up=False)[1]["AE-WH-01"] == 15

    # replaying the whole history changes nothing
    post_movements(api_client, erp, [line("RCV-9", 1, "receipt", "AE-WH-01", "MV-TEE", 5)])
    assert atp_via_api(api_client, read, "MV-TEE", catch_up=False)[0]["AE"] == 18


def test_scopes(clean_ledger, api_client, ledger_tokens):
    read, erp = ledger_tokens["stock:read"], ledger_tokens["erp:write"]
    lines = [line("ADJ-S", 1, "adjustment", "AE-WH-01", "MV-TEE", 1)]
    assert post_movements(api_client, read, lines).status_code == 403
    assert api_client.get("/v1/erp/sales-postings", headers=auth(read)).status_code == 403
    assert api_client.post("/v1/erp/sales-postings/ack", json={"ids": [1]}, headers=auth(read)).status_code == 403
    assert api_client.get("/v1/atp/MV-TEE", headers=auth(erp)).status_code == 403
    assert api_client.post("/v1/erp/stock-movements", json={"lines": lines}).status_code == 401
    assert api_client.post("/v1/erp/stock-movements", json={"lines": lines},
                           headers=auth("oms_not-a-token")).status_code == 401
    with connect(clean_ledger) as conn:
        assert conn.execute("SELECT count(*) AS n FROM oms.erp_movement").fetchone()["n"] == 0


def test_unusable_bodies_are_422_and_record_nothing(clean_ledger, api_client, ledger_tokens):
    token = ledger_tokens["erp:write"]
    headers = {**auth(token), "Content-Type": "application/json"}
    for body in (b"{not json", b'{"lines": []}', b'{"lines": {}}', b"[1, 2]", b'{"lines": [{"qty": NaN}]}'):
        response = api_client.post("/v1/erp/stock-movements", content=body, headers=headers)
        assert response.status_code == 422, body
        assert response.json()["error"]["message"]
    too_many = [line("BIG", i, "adjustment", "AE-WH-01", "MV-TEE", 1) for i in range(5001)]
    response = post_movements(api_client, token, too_many)
    assert response.status_code == 422 and "5000" in response.json()["error"]["message"]
    with connect(clean_ledger) as conn:
        assert conn.execute("SELECT count(*) AS n FROM oms.erp_movement").fetchone()["n"] == 0


# --- the sales-posting outbox -------------------------------------------------------------------


def _ship(conn, ref: str, line_key: str, qty=1, store="AE-ST-01", sku="POST-SOCKS", order="AE-5001"):
    return postings.record_shipped_line(
        conn, source_ref=ref, order_increment_id=order, line_key=line_key, store_id=store, sku=sku, qty=qty,
        currency_code="AED", unit_price="40.0000", tax_percent=5, tax_amount="2.0000", row_total_incl_tax="42.0000",
        occurred_at=NOW)


def test_each_posting_is_posted_once_even_if_the_erp_asks_twice_or_crashes(clean_ledger, api_client, ledger_tokens):
    token = ledger_tokens["erp:write"]
    with connect(clean_ledger) as conn:
        ids = [_ship(conn, f"SHP-{i}", str(i)).posting_id for i in range(1, 6)]
        again = _ship(conn, "SHP-1", "1")  # fulfilment retries its append: same posting
    assert again.posting_id == ids[0] and not again.created

    erp_ledger: dict[str, dict] = {}  # the ERP's posted documents, keyed on its External Document No.

    def erp_posts(items):
        for item in items:
            erp_ledger.setdefault(item["external_document_no"], item)  # the ERP refuses a second posting

    def pull(**params):
        response = api_client.get("/v1/erp/sales-postings", params=params, headers=auth(token))
        assert response.status_code == 200, response.text
        return response.json()

    # page 1 of a pull, then page 2 with the cursor
    page1 = pull(limit=2, pull_id="erp-run-1-p1")
    assert [i["posting_id"] for i in page1["items"]] == ids[:2] and page1["has_more"]
    assert page1["items"][0]["external_document_no"] == f"OMS-SP-{ids[0]}"
    assert (page1["items"][0]["qty"], page1["items"][0]["tax_amount"], page1["items"][0]["currency_code"]) == (1, 2, "AED")
    # the ERP asks twice (its first answer got lost): the same pull_id gets the same lines …
    assert [i["posting_id"] for i in pull(limit=2, pull_id="erp-run-1-p1")["items"]] == ids[:2]
    # … and a concurrent second pull does not get the leased lines
    other = pull(limit=10, pull_id="erp-run-x")
    assert [i["posting_id"] for i in other["items"]] == ids[2:]
    erp_posts(page1["items"])
    erp_posts(other["items"])

    # crash between pull and ack: nothing acknowledged; once the leases run out, everything comes again
    with connect(clean_ledger) as conn:
        conn.execute("UPDATE oms.sales_posting SET leased_until = now() - interval '1 second'")
    redelivered = pull(limit=100)
    assert [i["posting_id"] for i in redelivered["items"]] == ids
    assert {i["delivery_count"] for i in redelivered["items"]} == {2}
    erp_posts(redelivered["items"])
    ack = api_client.post("/v1/erp/sales-postings/ack", json={"ids": ids, "erp_reference": "GJ-2026-001"},
                          headers=auth(token))
    assert ack.status_code == 200 and ack.json()["acked"] == 5 and ack.json()["ack_batch"] == "GJ-2026-001"
    # the ack is idempotent; unknown ids are named
    again = api_client.post("/v1/erp/sales-postings/ack", json={"ids": [ids[0], 999999]}, headers=auth(token))
    assert again.status_code == 207
    assert (again.json()["acked"], [a["posting_id"] for a in again.json()["already_acked"]], again.json()["unknown"]) \
        == (0, [ids[0]], [999999])
    assert again.json()["already_acked"][0]["ack_batch"] == "GJ-2026-001"
    assert pull(limit=100)["items"] == []

    assert sorted(erp_ledger) == sorted(f"OMS-SP-{i}" for i in ids)  # every line posted exactly once
    with connect(clean_ledger) as conn:
        assert conn.execute("SELECT count(*) AS n FROM oms.sales_posting WHERE acked_at IS NULL").fetchone()["n"] == 0


def test_posting_pull_by_store_and_bad_requests(clean_ledger, api_client, ledger_tokens):
    token = ledger_tokens["erp:write"]
    with connect(clean_ledger) as conn:
        _ship(conn, "SHP-A", "1", store="AE-ST-01")
        other = _ship(conn, "SHP-B", "1", store="AE-WH-01", sku="MV-TEE").posting_id
    items = api_client.get("/v1/erp/sales-postings", params={"store_id": "AE-WH-01"}, headers=auth(token)).json()["items"]
    assert [i["posting_id"] for i in items] == [other]
    assert api_client.get("/v1/erp/sales-postings", params={"limit": 0}, headers=auth(token)).status_code == 422
    assert api_client.post("/v1/erp/sales-postings/ack", json={"ids": []}, headers=auth(token)).status_code == 422
    assert api_client.post("/v1/erp/sales-postings/ack", json={"ids": ["x"]}, headers=auth(token)).status_code == 422
    with connect(clean_ledger) as conn, pytest.raises(postings.PostingConflict, match="different content"):
        postings.record_shipped_line(
            conn, source_ref="SHP-A", order_increment_id="AE-5001", line_key="1", store_id="AE-ST-01",
            sku="POST-SOCKS", qty=2, currency_code="AED", unit_price=40, row_total_incl_tax=84, occurred_at=NOW)
    with connect(clean_ledger) as conn, pytest.raises(postings.PostingError, match="unknown store"):
        _ship(conn, "SHP-C", "1", store="XX-ST-99")


# --- the reconciliation rule --------------------------------------------------------------------


def test_erp_sale_settles_the_hold_of_the_unit_it_sells_exactly_once(clean_ledger, api_client, ledger_tokens):
    """REC-JEANS: AE-WH-01 5, AE-ST-01 2 → AE ATP 7 - buffer 1 = 6. An order of 2 from AE-ST-01."""
    read, erp, dsn = ledger_tokens["stock:read"], ledger_tokens["erp:write"], clean_ledger

    def atp():
        countries, stores, _ = atp_via_api(api_client, read, "REC-JEANS")
        return countries["AE"], stores["AE-ST-01"]

    assert atp() == (6, 2)
    with connect(dsn) as conn:
        result = reservations.sync_order_demand(conn, [("AE-7001", "1", "AE", None, "REC-JEANS", 2, True)])[0]
        assert result.status == "reserved"
        assert reservations.allocate(conn, "AE-7001", "1", "AE-ST-01", 2).status == "reserved"
    assert atp() == (4, 0)  # reserved at the store: the country loses it through the store, once

    # one unit shipped: it moves from the reservation to the posting, still held until the ERP posts it
    with connect(dsn) as conn:
        shipped = _ship(conn, "SHP-7001", "1", store="AE-ST-01", sku="REC-JEANS", order="AE-7001")
    assert shipped.moved_from_reservation_qty == 1
    assert atp() == (4, 0)
    st = store_live(dsn, "REC-JEANS")["AE-ST-01"]
    assert (st["reserved_qty"], st["awaiting_erp_qty"]) == (1, 1)

    # the ERP posts the sale: on hand drops by 1 and the posting's hold is settled in the same transaction
    sale = [line("PSI-7001", 1, "sale", "AE-ST-01", "REC-JEANS", -1, order_increment_id="AE-7001", order_line_key="1")]
    answer = post_movements(api_client, erp, sale).json()
    assert answer["lines"][0]["settled_qty"] == 1
    assert atp() == (4, 0)
    st = store_live(dsn, "REC-JEANS")["AE-ST-01"]
    assert (st["on_hand_qty"], st["reserved_qty"], st["awaiting_erp_qty"]) == (1, 1, 0)
    # a replay of the sale settles nothing more
    post_movements(api_client, erp, sale)
    assert atp() == (4, 0)

    # the ERP posts the second unit as sold before the platform recorded the shipment: the sale
    # consumes the reservation directly — still once
    sale2 = [line("PSI-7002", 1, "sale", "AE-ST-01", "REC-JEANS", -1, order_increment_id="AE-7001", order_line_key="1")]
    post_movements(api_client, erp, sale2)
    assert atp() == (4, 0)
    with connect(dsn) as conn:
        row = conn.execute("SELECT qty, consumed_qty, status FROM oms.reservation WHERE store_id = 'AE-ST-01'"
                           " AND order_increment_id = 'AE-7001'").fetchone()
    assert (row["qty"], row["consumed_qty"], row["status"]) == (0, 2, "consumed")

    # the nightly truth: a rebuilt snapshot gives the same answer as the live path did
    live_before = {k: v["atp_qty"] for k, v in store_live(dsn, "REC-JEANS").items()}
    rebuild_marts(dsn)
    with connect(dsn) as conn:
        marts = {r["store_id"]: r["atp_qty"] for r in conn.execute(
            "SELECT store_id, atp_qty FROM marts.fct_atp_store WHERE sku = 'REC-JEANS'")}
        country = conn.execute("SELECT atp_qty FROM marts.fct_atp_country WHERE sku = 'REC-JEANS'").fetchone()["atp_qty"]
    assert marts == live_before and country == 4
    assert {k: v["atp_qty"] for k, v in store_live(dsn, "REC-JEANS").items()} == live_before


def test_cancelled_order_releases_and_a_later_erp_sale_does_not_release_twice(clean_ledger, api_client, ledger_tokens):
    read, erp, dsn = ledger_tokens["stock:read"], ledger_tokens["erp:write"], clean_ledger
    with connect(dsn) as conn:
        assert reservations.reserve(conn, "AE-7100", "1", "AE", "REC-JEANS", 3, "AE-WH-01").status == "reserved"
    assert atp_via_api(api_client, read, "REC-JEANS")[1]["AE-WH-01"] == 2
    with connect(dsn) as conn:
        assert reservations.release(conn, "AE-7100") == 3
    assert atp_via_api(api_client, read, "REC-JEANS")[1]["AE-WH-01"] == 5
    # an ERP sale naming the cancelled line finds no hold: it only lowers on hand
    post_movements(api_client, erp, [line("PSI-7100", 1, "sale", "AE-WH-01", "REC-JEANS", -1,
                                          order_increment_id="AE-7100", order_line_key="1")])
    assert atp_via_api(api_client, read, "REC-JEANS")[1]["AE-WH-01"] == 4


def test_restocked_return_counts_at_once_and_once(clean_ledger, api_client, ledger_tokens):
    read, erp, dsn = ledger_tokens["stock:read"], ledger_tokens["erp:write"], clean_ledger
    assert atp_via_api(api_client, read, "RET-DRESS")[1]["AE-ST-01"] == 1
    with connect(dsn) as conn:
        restock = postings.record_restocked_return(
            conn, return_ref="RMA-1", order_increment_id="AE-6001", line_key="2", store_id="AE-ST-01", sku="RET-DRESS",
            qty=1, currency_code="AED", unit_price=200, row_total_incl_tax=210, tax_amount=10, occurred_at=NOW)
    assert restock.created
    assert atp_via_api(api_client, read, "RET-DRESS")[1]["AE-ST-01"] == 2
    # the ERP pulls the return, books it and pushes its return receipt: counted once, not twice
    items = api_client.get("/v1/erp/sales-postings", headers=auth(erp)).json()["items"]
    assert [(i["posting_type"], i["source_ref"]) for i in items] == [("return_restock", "RMA-1")]
    post_movements(api_client, erp, [line("RR-1", 1, "return_receipt", "AE-ST-01", "RET-DRESS", 1,
                                          order_increment_id="AE-6001", order_line_key="2")])
    st = store_live(dsn, "RET-DRESS")["AE-ST-01"]
    assert (st["on_hand_qty"], st["restocked_qty"], st["atp_qty"]) == (2, 0, 2)


# --- ATP look-ups -------------------------------------------------------------------------------


def test_batch_query_matches_single_look_ups(clean_ledger, api_client, ledger_tokens):
    read = ledger_tokens["stock:read"]
    with connect(clean_ledger) as conn:
        reservations.reserve(conn, "QA-1", "1", "QA", "BATCH-1", 2)  # country level in QA
    body = api_client.post("/v1/atp/query", json={"skus": ["BATCH-2", "BATCH-1", "NOPE", "BATCH-1", "GIFT-CARD"],
                                                  "detail": "full"}, headers=auth(read)).json()
    assert body["unknown_skus"] == ["NOPE"] and body["snapshot"]["snapshot_id"] >= 1 and body["as_of"]
    items = {i["sku"]: i for i in body["items"]}
    assert set(items) == {"BATCH-1", "BATCH-2", "GIFT-CARD"} and items["GIFT-CARD"]["countries"] == []
    for sku in ("BATCH-1", "BATCH-2"):
        single = atp_via_api(api_client, read, sku)[0]
        assert {c["country_code"]: Decimal(str(c["atp_qty"])) for c in items[sku]["countries"]} == single
        assert "stores" not in items[sku]
    qa = next(c for c in items["BATCH-1"]["countries"] if c["country_code"] == "QA")
    assert (qa["atp_qty"], qa["unallocated_reserved_qty"]) == (7, 2)

    narrowed = api_client.post("/v1/atp/query", json={"skus": ["BATCH-1"], "country": "ae", "store_ids": ["AE-WH-01"]},
                               headers=auth(read)).json()["items"][0]
    assert [c["country_code"] for c in narrowed["countries"]] == ["AE"]
    assert [s["store_id"] for s in narrowed["stores"]] == ["AE-WH-01"]

    assert api_client.post("/v1/atp/query", json={"skus": [f"S{i}" for i in range(1001)]},
                           headers=auth(read)).status_code == 422
    assert api_client.post("/v1/atp/query", json={"skus": []}, headers=auth(read)).status_code == 422
    assert api_client.post("/v1/atp/query", json={"skus": ["BATCH-1"], "detail": "all"},
                           headers=auth(read)).status_code == 422
    assert api_client.get("/v1/atp/BATCH-1", params={"detail": "all"}, headers=auth(read)).status_code == 422
    assert api_client.post("/v1/atp/query", json={"skus": ["BATCH-1"], "country": "ZZ"},
                           headers=auth(read)).status_code == 404
    assert len(api_client.post("/v1/atp/query", json={"skus": [f"S{i}" for i in range(1000)]},
                               headers=auth(read)).json()["unknown_skus"]) == 1000


def test_positions_list_is_live(clean_ledger, api_client, ledger_tokens):
    read = ledger_tokens["stock:read"]
    with connect(clean_ledger) as conn:
        reservations.reserve(conn, "AE-8001", "1", "AE", "MV-CAP", 2, "AE-WH-01")
    page = api_client.get("/v1/atp", params={"store_id": "AE-WH-01", "limit": 50}, headers=auth(read)).json()
    cap = next(i for i in page["items"] if i["sku"] == "MV-CAP")
    assert (cap["on_hand_qty"], cap["reserved_qty"], cap["atp_qty"]) == (3, 2, 1)
    first = api_client.get("/v1/atp", params={"limit": 2}, headers=auth(read)).json()
    second = api_client.get("/v1/atp", params={"limit": 2, "cursor": first["next_cursor"]}, headers=auth(read)).json()
    keys = [(i["sku"], i["store_id"]) for i in first["items"] + second["items"]]
    assert len(keys) == 4 and keys == sorted(keys)
    assert SNAPSHOT_AT.isoformat()[:16] in first["items"][0]["snapshot_as_of"].replace(" ", "T")
