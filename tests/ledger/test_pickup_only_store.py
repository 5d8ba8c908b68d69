"""Click & collect at a store that does not ship (not eligible for the channel: it publishes out of
stock): Magento ships the order from that store's source at "ready for pickup", so the source must
hold the order's units, or Magento refuses the shipment and keeps the order's reservation for good
(its salable quantity then stays below the platform's ATP, and no reconcile can fix it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from oms import tokens
from oms.aftersale.magento_sync import send_pending
from oms.fulfilment import holds, tasks
from oms.integrations.magento import MagentoClient
from oms.publishing.publisher import publish
from oms.routing import decisions
from oms.routing.model import Allocation, Decision, Shipment
from oms.warehouse import connect

from ..magento_shapes import item, order
from .helpers import atp_via_api, auth, magento, magento_under_contract

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
# what each test empties beside the Magento sandbox
EMPTIED = "oms.publish_ledger, oms.fulfilment_task, oms.fulfilment_task_event, oms.magento_outbox"
PICKUP = "AE-ST-02"   # pickup only: not eligible for the AE channel


def _route(dsn, api_client, push, body, increment, line_key, sku, pickup: str = PICKUP) -> int:
    assert api_client.post("/v1/magento/orders", json=body, headers=auth(push)).status_code == 200
    decision = Decision(
        order_increment_id=increment, country_code="AE", decided_at=T0 + timedelta(minutes=5), profile_id=None,
        profile_version=None, profile_name="test", outcome="allocated", reason="pickup_in_stock",
        allocations=[Allocation(line_key=line_key, sku=sku, qty=2, store_id=pickup, shipment_no=1,
                                fulfilment="pickup")],
        shipments=[Shipment(shipment_no=1, store_id=pickup, fulfilment="pickup", line_keys=[line_key])],
        explanation="collected where it is")
    with connect(dsn) as conn:
        assert holds.reserve_decision(conn, decision)
        decision_id = decisions.save_decision(conn, decision)
        [task_id] = tasks.create_for_decision(conn, decision_id, decision)
    return task_id


def test_a_pickup_shipment_refused_before_the_publish_is_sent_again_after_it(
        clean_ledger, api_client, ledger_tokens, sandboxes, settings):
    """The store readies the order before the next stock publish has put its units in the pickup
    store's source: Magento refuses the shipment; the outbox keeps it and sends it again."""
    dsn, sku, entity = clean_ledger, "PICK-RACE", 950003
    magento_under_contract(settings, dsn, "physical", EMPTIED)
    with MagentoClient(settings.magento_url, settings.magento_token, attempts=8) as msi:
        publish(dsn, msi, run_id="pickup-race-before")
    body = order(entity, [item(entity * 10 + 1, sku, qty=2, price=30.0, qty_invoiced=2)], T0,
                 pickup_location_code="ae-st-02", shipping_method="instore_pickup")
    magento(settings, "POST", "/_sandbox/orders", json=[body])
    with connect(dsn) as conn:
        push = tokens.create_token(conn, "magento-webhook-pickup-race", ["orders:write"])
    task_id = _route(dsn, api_client, push, body, f"AE{entity:09d}", f"{entity}-{entity * 10 + 1}", sku)
    with connect(dsn) as conn:
        tasks.accept(conn, task_id)
        tasks.ready_for_pickup(conn, task_id)
    with MagentoClient(settings.magento_url, settings.magento_token) as sales:
        first = send_pending(dsn, sales)
    assert first["failed"] == 0 and first["retry"] == 1, first
    with MagentoClient(settings.magento_url, settings.magento_token, attempts=8) as msi:
        publish(dsn, msi, run_id="pickup-race-after")
    with MagentoClient(settings.magento_url, settings.magento_token) as sales:
        second = send_pending(dsn, sales)
    assert second == {"done": 1, "found": 0, "failed": 0, "retry": 0}, second
    assert float(magento(settings, "GET", f"/rest/V1/orders/{entity}")["items"][0]["qty_shipped"]) == 2


@pytest.mark.parametrize("pickup", ["AE-ST-02", "AE-ST-01"])   # pickup only; ships too (eligible)
def test_an_order_collected_before_magento_heard_it_was_ready_still_ships(
        pickup, clean_ledger, api_client, ledger_tokens, sandboxes, settings):
    """The customer collects before the outbox has sent the "ready" shipment: the hold is gone,
    but Magento still reserves the order; the source keeps its units until Magento ships them."""
    dsn, sku = clean_ledger, f"PICK-FAST-{pickup[-1]}"
    entity = 950004 if pickup == "AE-ST-02" else 950005
    magento_under_contract(settings, dsn, "physical", EMPTIED)
    body = order(entity, [item(entity * 10 + 1, sku, qty=2, price=30.0, qty_invoiced=2)], T0,
                 pickup_location_code=pickup.lower(), shipping_method="instore_pickup")
    magento(settings, "POST", "/_sandbox/orders", json=[body])
    with connect(dsn) as conn:
        push = tokens.create_token(conn, f"magento-webhook-pickup-fast-{entity}", ["orders:write"])
    task_id = _route(dsn, api_client, push, body, f"AE{entity:09d}", f"{entity}-{entity * 10 + 1}", sku, pickup)
    with connect(dsn) as conn:
        tasks.accept(conn, task_id)
        tasks.ready_for_pickup(conn, task_id)
        tasks.picked_up(conn, task_id)
    with MagentoClient(settings.magento_url, settings.magento_token, attempts=8) as msi:
        publish(dsn, msi, run_id="pickup-fast")
    with MagentoClient(settings.magento_url, settings.magento_token) as sales:
        sent = send_pending(dsn, sales)
    assert sent["failed"] == 0 and sent["retry"] == 0 and sent["done"] == 2, sent   # the shipment and the comment
    with MagentoClient(settings.magento_url, settings.magento_token, attempts=8) as msi:
        publish(dsn, msi, run_id="pickup-fast-after")
    countries, _, _ = atp_via_api(api_client, ledger_tokens["stock:read"], sku)
    salable = float(magento(settings, "GET", f"/rest/V1/inventory/get-product-salable-quantity/{sku}/2"))
    # AE-ST-02's 5 are not sold online; AE-ST-01's 5 less the 2 collected are
    assert salable == countries["AE"] == (3 if pickup == "AE-ST-02" else 6)


@pytest.mark.parametrize("contract", ["physical", "sellable"])
def test_a_pickup_only_store_ships_its_collect_order_in_magento(
        contract, clean_ledger, api_client, ledger_tokens, sandboxes, settings):
    dsn, read = clean_ledger, ledger_tokens["stock:read"]
    sku = f"PICK-{contract.upper()}"
    entity = 950001 if contract == "physical" else 950002
    item_id, increment = entity * 10 + 1, f"AE{entity:09d}"
    line_key = f"{entity}-{item_id}"
    body = order(entity, [item(item_id, sku, qty=2, price=30.0, qty_invoiced=2)], T0,
                 pickup_location_code="ae-st-02", shipping_method="instore_pickup")
    body["total_invoiced"] = body["grand_total"]
    with connect(dsn) as conn:
        push = tokens.create_token(conn, f"magento-webhook-pickup-{contract}", ["orders:write"])

    magento_under_contract(settings, dsn, contract, EMPTIED)

    def salable_equals_atp(step: str) -> float:
        with MagentoClient(settings.magento_url, settings.magento_token, attempts=8) as msi:
            report = publish(dsn, msi, run_id=f"pickup-only-{contract}-{step}")
        assert report.failed_chunks == 0, report.as_dict()
        countries, _, _ = atp_via_api(api_client, read, sku)
        salable = float(magento(settings, "GET", f"/rest/V1/inventory/get-product-salable-quantity/{sku}/2"))
        assert salable == countries["AE"], (contract, step, salable, countries)
        return salable

    try:
        # the warehouse's 4 less the AE buffer of 1; the pickup-only store's 5 are not sold online
        assert salable_equals_atp("before") == 3
        magento(settings, "POST", "/_sandbox/orders", json=[body])
        task_id = _route(dsn, api_client, push, body, increment, line_key, sku)
        salable_equals_atp("routed")

        with connect(dsn) as conn:
            tasks.accept(conn, task_id)
            tasks.ready_for_pickup(conn, task_id)
        with MagentoClient(settings.magento_url, settings.magento_token) as sales:
            sent = send_pending(dsn, sales)
        # the "ready" shipment from the pickup store's source and its comment: both accepted
        assert sent["failed"] == 0 and sent["done"] >= 1, sent
        shipped = magento(settings, "GET", f"/rest/V1/orders/{entity}")["items"][0]["qty_shipped"]
        assert float(shipped) == 2

        with connect(dsn) as conn:
            tasks.picked_up(conn, task_id)
        # collected: Magento holds nothing for the order any more, nor does the platform
        assert salable_equals_atp("collected") == 3
    finally:
        with connect(dsn) as conn:
            conn.execute("UPDATE ref.channel SET publish_mode = 'physical' WHERE country_code = 'AE'")
        magento(settings, "POST", "/_sandbox/stocks/2/reservations", json={"enabled": True})


def test_a_pickup_order_at_a_store_below_its_safety_stock_still_ships(
        clean_ledger, api_client, ledger_tokens, sandboxes, settings):
    """A store that ships holds a click & collect order, then sells a unit at the till: its shelf
    (3) is below safety stock (2) + the hold (2), so it publishes no free unit. Its source must
    still carry the held units: Magento reserves the order against them and ships it from that
    source at "ready for pickup" (a source short of them makes Magento refuse the shipment and show
    less salable than the platform's ATP)."""
    dsn, sku, entity, store = clean_ledger, "PICK-SAFETY", 950006, "AE-ST-01"
    magento_under_contract(settings, dsn, "physical", EMPTIED)
    body = order(entity, [item(entity * 10 + 1, sku, qty=2, price=30.0, qty_invoiced=2)], T0,
                 pickup_location_code=store.lower(), shipping_method="instore_pickup")
    magento(settings, "POST", "/_sandbox/orders", json=[body])
    with connect(dsn) as conn:
        push = tokens.create_token(conn, "magento-webhook-pickup-safety", ["orders:write"])
    task_id = _route(dsn, api_client, push, body, f"AE{entity:09d}", f"{entity}-{entity * 10 + 1}", sku, store)
    till_sale = {"document_id": "TILL-PICK-SAFETY", "line_no": 1, "movement_type": "sale", "store_id": store,
                 "sku": sku, "qty": -1, "posted_at": (T0 + timedelta(minutes=10)).isoformat()}
    answer = api_client.post("/v1/erp/stock-movements", json={"lines": [till_sale]},
                             headers=auth(ledger_tokens["erp:write"]))
    assert answer.status_code == 200, answer.text

    with MagentoClient(settings.magento_url, settings.magento_token, attempts=8) as msi:
        publish(dsn, msi, run_id="pickup-safety")
    countries, _, _ = atp_via_api(api_client, ledger_tokens["stock:read"], sku)
    salable = float(magento(settings, "GET", f"/rest/V1/inventory/get-product-salable-quantity/{sku}/2"))
    # the warehouse's 4 less the AE buffer of 1; AE-ST-01 has nothing free (3 − 2 held − 2 safety)
    assert salable == countries["AE"] == 3

    with connect(dsn) as conn:
        tasks.accept(conn, task_id)
        tasks.ready_for_pickup(conn, task_id)
    with MagentoClient(settings.magento_url, settings.magento_token) as sales:
        sent = send_pending(dsn, sales)
    assert sent["failed"] == 0 and sent["retry"] == 0 and sent["done"] >= 1, sent
    assert float(magento(settings, "GET", f"/rest/V1/orders/{entity}")["items"][0]["qty_shipped"]) == 2


def test_a_ready_pickup_order_magento_shipped_is_not_published_again(
        clean_ledger, api_client, ledger_tokens, sandboxes, settings):
    """At "ready for pickup" Magento ships the order from the store's source (deducting its units)
    while the platform holds them until the customer collects. A later change at that store (a
    till sale) publishes the source again: it must not put the shipped units back, or Magento
    would show them salable a second time."""
    dsn, sku, entity, store = clean_ledger, "PICK-READY", 950007, "AE-ST-01"
    magento_under_contract(settings, dsn, "physical", EMPTIED)
    with MagentoClient(settings.magento_url, settings.magento_token, attempts=8) as msi:
        publish(dsn, msi, run_id="pickup-ready-before")
    body = order(entity, [item(entity * 10 + 1, sku, qty=2, price=30.0, qty_invoiced=2)], T0,
                 pickup_location_code=store.lower(), shipping_method="instore_pickup")
    magento(settings, "POST", "/_sandbox/orders", json=[body])
    with connect(dsn) as conn:
        push = tokens.create_token(conn, "magento-webhook-pickup-ready", ["orders:write"])
    task_id = _route(dsn, api_client, push, body, f"AE{entity:09d}", f"{entity}-{entity * 10 + 1}", sku, store)
    with MagentoClient(settings.magento_url, settings.magento_token, attempts=8) as msi:
        publish(dsn, msi, run_id="pickup-ready-routed")   # AE-ST-01: its 3 free + the 2 held
    with connect(dsn) as conn:
        tasks.accept(conn, task_id)
        tasks.ready_for_pickup(conn, task_id)
    with MagentoClient(settings.magento_url, settings.magento_token) as sales:
        sent = send_pending(dsn, sales)
    assert sent["failed"] == 0 and sent["retry"] == 0 and sent["done"] >= 1, sent
    till_sale = {"document_id": "TILL-PICK-READY", "line_no": 1, "movement_type": "sale", "store_id": store,
                 "sku": sku, "qty": -1, "posted_at": (T0 + timedelta(minutes=10)).isoformat()}
    answer = api_client.post("/v1/erp/stock-movements", json={"lines": [till_sale]},
                             headers=auth(ledger_tokens["erp:write"]))
    assert answer.status_code == 200, answer.text

    with MagentoClient(settings.magento_url, settings.magento_token, attempts=8) as msi:
        publish(dsn, msi, run_id="pickup-ready-after")
    countries, _, _ = atp_via_api(api_client, ledger_tokens["stock:read"], sku)
    salable = float(magento(settings, "GET", f"/rest/V1/inventory/get-product-salable-quantity/{sku}/2"))
    # the warehouse's 4 + AE-ST-01's 4 left less the 2 held for the order, less the AE buffer of 1
    assert salable == countries["AE"] == 5


def test_a_pickup_order_its_store_cannot_cover_is_held_until_routed(
        clean_ledger, api_client, ledger_tokens, sandboxes, settings):
    """Click & collect at a store with none of the SKU: Magento reserves the order at checkout
    against the channel's stock; the platform holds it at the country level (it will come by
    transfer from an eligible location) until routing allocates it, so both show the same."""
    dsn, sku, entity = clean_ledger, "PICK-SHORT", 950008
    magento_under_contract(settings, dsn, "physical", EMPTIED)
    with MagentoClient(settings.magento_url, settings.magento_token, attempts=8) as msi:
        publish(dsn, msi, run_id="pickup-short-before")
    body = order(entity, [item(entity * 10 + 1, sku, qty=2, price=30.0, qty_invoiced=2)], T0,
                 pickup_location_code="ae-st-01", shipping_method="instore_pickup")
    magento(settings, "POST", "/_sandbox/orders", json=[body])
    with connect(dsn) as conn:
        push = tokens.create_token(conn, "magento-webhook-pickup-short", ["orders:write"])
    assert api_client.post("/v1/magento/orders", json=body, headers=auth(push)).status_code == 200

    with MagentoClient(settings.magento_url, settings.magento_token, attempts=8) as msi:
        publish(dsn, msi, run_id="pickup-short-landed")
    countries, _, _ = atp_via_api(api_client, ledger_tokens["stock:read"], sku)
    salable = float(magento(settings, "GET", f"/rest/V1/inventory/get-product-salable-quantity/{sku}/2"))
    # the warehouse's 4 less the AE buffer of 1 less the order's 2
    assert salable == countries["AE"] == 1
    with connect(dsn) as conn:
        short = conn.execute("SELECT count(*) AS n FROM oms.reservation_shortfall WHERE sku = %s", (sku,)).fetchone()
    assert short["n"] == 0
