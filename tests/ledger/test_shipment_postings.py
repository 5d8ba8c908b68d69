"""Shipments post sales: when the courier's scan says a parcel left, each of its lines moves from the
reservation to a `shipment` sales posting once; the ERP pulls it and its own sale settles it.
ATP = on hand − safety stock − open holds at every step, and never moves when a unit changes holder."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from psycopg.types.json import Jsonb

from oms import tokens
from oms.inventory import order_demand, reservations
from oms.shipping import postings
from oms.shipping.faults import InjectedCrash
from oms.warehouse import connect

from ..magento_shapes import item, order
from .helpers import atp_via_api, auth, magento, magento_under_contract, rebuild_marts, store_live

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
ENTITY = 920001
INCREMENT = f"AE{ENTITY:09d}"
ITEM = ENTITY * 10 + 1
LINE = f"{ENTITY}-{ITEM}"
AWB = "AWB920001"
REFERENCE = f"{INCREMENT}-AE-WH-01-1"


def magento_order(minutes: int = 0, **kwargs):
    shipped = kwargs.pop("qty_shipped", 0)
    return order(ENTITY, [item(ITEM, "SHIP-POLO", qty=2, price=30.0, qty_invoiced=2, qty_shipped=shipped)],
                 T0 + timedelta(minutes=minutes), **kwargs)


def scan(dsn: str, code: int, minutes: int) -> None:
    with connect(dsn) as conn:
        conn.execute("SELECT oms.record_shipment_event(%s, %s, %s, NULL, NULL, NULL, NULL, NULL, 'webhook', NULL)",
                     (AWB, code, T0 + timedelta(minutes=minutes)))


def holds(dsn: str) -> Decimal:
    with connect(dsn) as conn:
        return conn.execute("SELECT coalesce(sum(qty), 0) AS q FROM oms.reservation WHERE order_increment_id = %s"
                            " AND status = 'active'", (INCREMENT,)).fetchone()["q"]


def shipment_postings(dsn: str) -> list[dict]:
    with connect(dsn) as conn:
        return conn.execute("SELECT * FROM oms.sales_posting WHERE posting_type = 'shipment' AND order_increment_id = %s",
                            (INCREMENT,)).fetchall()


@pytest.fixture(scope="module")
def push_token(ledger_dsn) -> str:
    with connect(ledger_dsn) as conn:
        return tokens.create_token(conn, "magento-webhook-ship", ["orders:write"])


def test_a_parcel_posts_its_lines_once_when_it_leaves_and_the_erp_sale_settles_them(
        clean_ledger, api_client, ledger_tokens, push_token):
    dsn, read, erp = clean_ledger, ledger_tokens["stock:read"], ledger_tokens["erp:write"]

    def atp() -> tuple[Decimal, Decimal]:
        countries, stores, _ = atp_via_api(api_client, read, "SHIP-POLO")
        w = store_live(dsn, "SHIP-POLO")["AE-WH-01"]
        # the done-when rule at every step: ATP = on hand − safety stock − open holds (reservations
        # and shipped lines the ERP has not posted yet)
        assert w["atp_qty"] == w["on_hand_qty"] - w["safety_stock_qty"] - w["reserved_qty"] - w["awaiting_erp_qty"], w
        assert stores["AE-WH-01"] == w["atp_qty"]
        return countries["AE"], stores["AE-WH-01"]

    assert atp() == (7, 5)                               # WH 5 + store 3 − buffer 1
    # ordered and landed: held at country level
    assert api_client.post("/v1/magento/orders", json=magento_order(), headers=auth(push_token)).status_code == 200
    assert atp() == (5, 5)
    assert rebuild_marts(dsn)["dbt_failed"] == 0         # the order marts carry the line's money
    assert atp() == (5, 5)
    # routed to the warehouse
    with connect(dsn) as conn:
        assert reservations.allocate(conn, INCREMENT, LINE, "AE-WH-01", 2).ok
    assert atp() == (5, 3)
    # manifested at Clickpost and shipped in Magento (the ledger's rows, as oms.shipping.shipments writes them)
    with connect(dsn) as conn:
        conn.execute(
            """INSERT INTO oms.shipment (reference_number, order_increment_id, magento_entity_id, store_id, shipment_no,
                   decision_id, source_code, order_item_ids, line_items, state, api_version, request, awb,
                   magento_shipment_id, courier_name)
               VALUES (%s, %s, %s, 'AE-WH-01', 1, 1, 'ae-wh-01', %s, %s, 'magento_shipped', 4, '{}', %s, 1, 'Aramex')""",
            (REFERENCE, INCREMENT, ENTITY, [ITEM], Jsonb([{"order_item_id": ITEM, "sku": "SHIP-POLO", "qty": 2}]), AWB))
    # Magento's next version says shipped (we shipped it at the manifest), the courier has not
    # picked it up: the units stay held, not free again
    assert api_client.post("/v1/magento/orders", json=magento_order(5, state="complete", qty_shipped=2),
                           headers=auth(push_token)).status_code == 200
    assert holds(dsn) == 2 and atp() == (5, 3)
    scan(dsn, 1, 10)                                     # order placed / manifested: still on our shelf
    with connect(dsn) as conn:
        assert postings.post_shipped(conn)["postings"] == 0

    scan(dsn, 4, 20)                                     # picked up: it left
    with connect(dsn) as conn, pytest.raises(InjectedCrash):
        postings.post_shipped(conn, crash_at="before_posting_commit")
    assert shipment_postings(dsn) == [] and holds(dsn) == 2
    with connect(dsn) as conn, pytest.raises(InjectedCrash):
        postings.post_shipped(conn, crash_at="after_posting_commit")
    assert len(shipment_postings(dsn)) == 1 and holds(dsn) == 0
    with connect(dsn) as conn:
        again = postings.post_shipped(conn)
    scan(dsn, 5, 30)                                     # later scans post nothing more
    with connect(dsn) as conn:
        later = postings.post_shipped(conn)
    assert again["postings"] == later["postings"] == 0
    [posting] = shipment_postings(dsn)
    assert (posting["source_ref"], posting["line_key"], posting["store_id"], posting["qty"]) == \
        (REFERENCE, LINE, "AE-WH-01", 2)
    assert posting["occurred_at"] == T0 + timedelta(minutes=20)
    assert posting["unit_price"] == 30 and posting["currency_code"] == "AED"
    assert atp() == (5, 3)                               # the posting holds what the reservation held
    # a version the pull lands late (the first one, still 'processing') holds nothing again
    with connect(dsn) as conn:
        order_demand.reserve_orders(conn, [ENTITY])
    assert holds(dsn) == 0 and atp() == (5, 3)

    # the ERP pulls it like every other posting type
    pulled = api_client.get("/v1/erp/sales-postings", params={"store_id": "AE-WH-01"}, headers=auth(erp)).json()
    [line] = [i for i in pulled["items"] if i["order_increment_id"] == INCREMENT]
    assert (line["posting_type"], line["line_key"], Decimal(str(line["qty"]))) == ("shipment", LINE, 2)

    # the ERP posts its own sale naming the line: it settles the posting, on hand drops, ATP stays
    sale = {"document_id": "SO-920001", "line_no": 1, "movement_type": "sale", "store_id": "AE-WH-01",
            "sku": "SHIP-POLO", "qty": -2, "posted_at": datetime.now(UTC).isoformat(),
            "order_increment_id": INCREMENT, "order_line_key": LINE}
    recorded = api_client.post("/v1/erp/stock-movements", json={"lines": [sale]}, headers=auth(erp))
    assert recorded.status_code == 200 and Decimal(str(recorded.json()["lines"][0]["settled_qty"])) == 2
    assert atp() == (5, 3)
    with connect(dsn) as conn:
        settled = conn.execute("SELECT erp_settled_qty FROM oms.sales_posting WHERE posting_id = %s",
                               (posting["posting_id"],)).fetchone()["erp_settled_qty"]
    assert settled == 2
    # … and acknowledges the posting: delivery bookkeeping only
    acked = api_client.post("/v1/erp/sales-postings/ack", json={"ids": [posting["posting_id"]]}, headers=auth(erp))
    assert acked.status_code == 200 and acked.json()["acked"] == 1
    assert atp() == (5, 3)
    # the next dbt build says the same as the live answer
    assert rebuild_marts(dsn)["dbt_failed"] == 0
    assert atp() == (5, 3)


# ------------------------------------------------------------------------------------------------
# The whole lifecycle against the Magento sandbox, under each publishing contract: after each step
# the platform publishes (oms.publishing) and Magento's salable quantity is compared with ATP.

@pytest.mark.parametrize("contract", ["physical", "sellable"])
def test_atp_and_magento_salable_quantity_through_the_lifecycle(contract, clean_ledger, api_client, ledger_tokens,
                                                                push_token, sandboxes, settings):
    from oms.integrations.magento import MagentoClient
    from oms.publishing.publisher import publish
    from oms.shipping import shipments

    dsn, read, erp = clean_ledger, ledger_tokens["stock:read"], ledger_tokens["erp:write"]
    sku = f"LIFE-{contract.upper()}"
    entity = 930001 if contract == "physical" else 930002
    item_id, increment = entity * 10 + 1, f"AE{entity:09d}"
    line_key, awb = f"{entity}-{item_id}", f"AWB{entity}"
    body = order(entity, [item(item_id, sku, qty=2, price=30.0, qty_invoiced=2)], T0)

    magento_under_contract(settings, dsn, contract)

    def step(name: str, atp_expected: int, salable_expected: int | None = None) -> None:
        with MagentoClient(settings.magento_url, settings.magento_token, attempts=8) as msi:
            report = publish(dsn, msi, run_id=f"{contract}-{name}")
        assert report.failed_chunks == 0 and report.accepted == report.changed, report.as_dict()
        countries, _, _ = atp_via_api(api_client, read, sku)
        salable = float(magento(settings, "GET", f"/rest/V1/inventory/get-product-salable-quantity/{sku}/2"))
        expected = atp_expected if salable_expected is None else salable_expected
        assert (countries["AE"], salable) == (atp_expected, expected), (contract, name)

    try:
        step("stock published", 7)
        # ordered in Magento, not yet heard by the platform: Magento's own reservation holds it under
        # `physical`; under `sellable` nothing does until the order lands (the push makes that one request)
        magento(settings, "POST", "/_sandbox/orders", json=[body])
        step("ordered", 7, 5 if contract == "physical" else 7)
        assert api_client.post("/v1/magento/orders", json=body, headers=auth(push_token)).status_code == 200
        step("reserved", 5)
        assert rebuild_marts(dsn)["dbt_failed"] == 0   # the build the landing schedules: the order marts
        step("order marts built", 5)
        with connect(dsn) as conn:
            assert reservations.allocate(conn, increment, line_key, "AE-WH-01", 2).ok
        step("routed", 5)
        # manifested at Clickpost (the ledger's row), then shipped in Magento by the ledger's own step
        # (Magento deducts the source there), then Magento's new version lands
        with connect(dsn) as conn:
            conn.execute(
                """INSERT INTO oms.shipment (reference_number, order_increment_id, magento_entity_id, store_id,
                       shipment_no, decision_id, source_code, order_item_ids, line_items, state, api_version, request,
                       awb, courier_name)
                   VALUES (%s, %s, %s, 'AE-WH-01', 1, 1, 'ae-wh-01', %s, %s, 'manifested', 4, '{}', %s, 'Aramex')""",
                (f"{increment}-AE-WH-01-1", increment, entity, [item_id],
                 Jsonb([{"order_item_id": item_id, "sku": sku, "qty": 2}]), awb))
        with connect(dsn) as conn, MagentoClient(settings.magento_url, settings.magento_token) as sales:
            assert shipments.ship_to_magento(conn, sales).magento_shipped == 1
        shipped_version = magento(settings, "GET", f"/rest/V1/orders/{entity}")
        assert shipped_version["items"][0]["qty_shipped"] == 2
        assert api_client.post("/v1/magento/orders", json=shipped_version, headers=auth(push_token)).status_code == 200
        step("shipped in Magento", 5)
        with connect(dsn) as conn:
            conn.execute("SELECT oms.record_shipment_event(%s, 4, %s, NULL, NULL, NULL, NULL, NULL, 'webhook', NULL)",
                         (awb, T0 + timedelta(hours=1)))
        with connect(dsn) as conn:
            assert postings.post_shipped(conn)["postings"] == 1
        step("left (shipment posting)", 5)
        sale = {"document_id": f"SO-{entity}", "line_no": 1, "movement_type": "sale", "store_id": "AE-WH-01",
                "sku": sku, "qty": -2, "posted_at": datetime.now(UTC).isoformat(),
                "order_increment_id": increment, "order_line_key": line_key}
        assert api_client.post("/v1/erp/stock-movements", json={"lines": [sale]}, headers=auth(erp)).status_code == 200
        step("ERP sale posted", 5)
        with connect(dsn) as conn:
            posting_id = conn.execute("SELECT posting_id FROM oms.sales_posting WHERE order_increment_id = %s",
                                      (increment,)).fetchone()["posting_id"]
        acked = api_client.post("/v1/erp/sales-postings/ack", json={"ids": [posting_id]}, headers=auth(erp))
        assert acked.status_code == 200
        step("ERP acknowledged", 5)
    finally:
        with connect(dsn) as conn:
            conn.execute("UPDATE ref.channel SET publish_mode = 'physical' WHERE country_code = 'AE'")
        magento(settings, "POST", "/_sandbox/stocks/2/reservations", json={"enabled": True})
