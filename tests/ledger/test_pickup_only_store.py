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


def _pickup_order(settings, entity: int, sku: str, pickup: str) -> dict:
    """A click & collect order of 2 units of sku at pickup, placed in the Magento sandbox."""
    body = order(entity, [item(entity * 10 + 1, sku, qty=2, price=30.0, qty_invoiced=2)], T0,
                 pickup_location_code=pickup.lower(), shipping_method="instore_pickup")
    magento(settings, "POST", "/_sandbox/orders", json=[body])
    return body


def _push_token(dsn: str, name: str) -> str:
    with connect(dsn) as conn:
        return tokens.create_token(conn, name, ["orders:write"])


def _publish(dsn: str, settings, run_id: str):
    with MagentoClient(settings.magento_url, settings.magento_token, attempts=8) as msi:
        return publish(dsn, msi, run_id=run_id)


def _ready_and_sent(dsn: str, settings, task_id: int) -> dict:
    """The store accepts the task and readies the order; the outbox sends what that queued."""
    with connect(dsn) as conn:
        tasks.accept(conn, task_id)
        tasks.ready_for_pickup(conn, task_id)
    with MagentoClient(settings.magento_url, settings.magento_token) as sales:
        return send_pending(dsn, sales)


def _send_pending(dsn: str, settings) -> dict:
    with MagentoClient(settings.magento_url, settings.magento_token) as sales:
        return send_pending(dsn, sales)


def _salable_and_atp(api_client, ledger_tokens, settings, sku: str) -> tuple[float, float]:
    """Magento's salable quantity of sku on the AE stock, and the platform's AE ATP."""
    countries, _, _ = atp_via_api(api_client, ledger_tokens["stock:read"], sku)
    salable = float(magento(settings, "GET", f"/rest/V1/inventory/get-product-salable-quantity/{sku}/2"))
    return salable, countries["AE"]


def _till_sale(api_client, ledger_tokens, document_id: str, store: str, sku: str) -> None:
    """The ERP posts one unit sold at the store's till."""
    line = {"document_id": document_id, "line_no": 1, "movement_type": "sale", "store_id": store,
            "sku": sku, "qty": -1, "posted_at": (T0 + timedelta(minutes=10)).isoformat()}
    answer = api_client.post("/v1/erp/stock-movements", json={"lines": [line]}, headers=auth(ledger_tokens["erp:write"]))
    assert answer.status_code == 200, answer.text


def test_a_pickup_shipment_refused_before_the_publish_is_sent_again_after_it(
        clean_ledger, api_client, ledger_tokens, sandboxes, settings):
    """The store readies the order before the next stock publish has put its units in the pickup
    store's source: Magento refuses the shipment; the outbox keeps it and sends it again."""
    dsn, sku, entity = clean_ledger, "PICK-RACE", 950003
    magento_under_contract(settings, dsn, "physical", EMPTIED)
    _publish(dsn, settings, "pickup-race-before")
    body = _pickup_order(settings, entity, sku, "AE-ST-02")
    push = _push_token(dsn, "magento-webhook-pickup-race")
    task_id = _route(dsn, api_client, push, body, f"AE{entity:09d}", f"{entity}-{entity * 10 + 1}", sku)
    first = _ready_and_sent(dsn, settings, task_id)
    assert first["failed"] == 0 and first["retry"] == 1, first
    _publish(dsn, settings, "pickup-race-after")
    second = _send_pending(dsn, settings)
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
    body = _pickup_order(settings, entity, sku, pickup)
    push = _push_token(dsn, f"magento-webhook-pickup-fast-{entity}")
    task_id = _route(dsn, api_client, push, body, f"AE{entity:09d}", f"{entity}-{entity * 10 + 1}", sku, pickup)
    with connect(dsn) as conn:
        tasks.accept(conn, task_id)
        tasks.ready_for_pickup(conn, task_id)
        tasks.picked_up(conn, task_id)
    _publish(dsn, settings, "pickup-fast")
    sent = _send_pending(dsn, settings)
    assert sent["failed"] == 0 and sent["retry"] == 0 and sent["done"] == 2, sent   # the shipment and the comment
    _publish(dsn, settings, "pickup-fast-after")
    salable, atp = _salable_and_atp(api_client, ledger_tokens, settings, sku)
    # AE-ST-02's 5 are not sold online; AE-ST-01's 5 less the 2 collected are
    assert salable == atp == (3 if pickup == "AE-ST-02" else 6)


@pytest.mark.parametrize("contract", ["physical", "sellable"])
def test_a_pickup_only_store_ships_its_collect_order_in_magento(
        contract, clean_ledger, api_client, ledger_tokens, sandboxes, settings):
    dsn, sku = clean_ledger, f"PICK-{contract.upper()}"
    entity = 950001 if contract == "physical" else 950002
    item_id, increment = entity * 10 + 1, f"AE{entity:09d}"
    line_key = f"{entity}-{item_id}"
    body = order(entity, [item(item_id, sku, qty=2, price=30.0, qty_invoiced=2)], T0,
                 pickup_location_code="ae-st-02", shipping_method="instore_pickup")
    body["total_invoiced"] = body["grand_total"]
    push = _push_token(dsn, f"magento-webhook-pickup-{contract}")

    magento_under_contract(settings, dsn, contract, EMPTIED)

    def salable_equals_atp(step: str) -> float:
        report = _publish(dsn, settings, f"pickup-only-{contract}-{step}")
        assert report.failed_chunks == 0, report.as_dict()
        salable, atp = _salable_and_atp(api_client, ledger_tokens, settings, sku)
        assert salable == atp, (contract, step, salable, atp)
        return salable

    try:
        # the warehouse's 4 less the AE buffer of 1; the pickup-only store's 5 are not sold online
        assert salable_equals_atp("before") == 3
        magento(settings, "POST", "/_sandbox/orders", json=[body])
        task_id = _route(dsn, api_client, push, body, increment, line_key, sku)
        salable_equals_atp("routed")

        sent = _ready_and_sent(dsn, settings, task_id)
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
    body = _pickup_order(settings, entity, sku, store)
    push = _push_token(dsn, "magento-webhook-pickup-safety")
    task_id = _route(dsn, api_client, push, body, f"AE{entity:09d}", f"{entity}-{entity * 10 + 1}", sku, store)
    _till_sale(api_client, ledger_tokens, "TILL-PICK-SAFETY", store, sku)

    _publish(dsn, settings, "pickup-safety")
    salable, atp = _salable_and_atp(api_client, ledger_tokens, settings, sku)
    # the warehouse's 4 less the AE buffer of 1; AE-ST-01 has nothing free (3 − 2 held − 2 safety)
    assert salable == atp == 3

    sent = _ready_and_sent(dsn, settings, task_id)
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
    _publish(dsn, settings, "pickup-ready-before")
    body = _pickup_order(settings, entity, sku, store)
    push = _push_token(dsn, "magento-webhook-pickup-ready")
    task_id = _route(dsn, api_client, push, body, f"AE{entity:09d}", f"{entity}-{entity * 10 + 1}", sku, store)
    _publish(dsn, settings, "pickup-ready-routed")   # AE-ST-01: its 3 free + the 2 held
    sent = _ready_and_sent(dsn, settings, task_id)
    assert sent["failed"] == 0 and sent["retry"] == 0 and sent["done"] >= 1, sent
    _till_sale(api_client, ledger_tokens, "TILL-PICK-READY", store, sku)

    _publish(dsn, settings, "pickup-ready-after")
    salable, atp = _salable_and_atp(api_client, ledger_tokens, settings, sku)
    # the warehouse's 4 + AE-ST-01's 4 left less the 2 held for the order, less the AE buffer of 1
    assert salable == atp == 5


def test_a_pickup_order_its_store_cannot_cover_is_held_until_routed(
        clean_ledger, api_client, ledger_tokens, sandboxes, settings):
    """Click & collect at a store with none of the SKU: Magento reserves the order at checkout
    against the channel's stock; the platform holds it at the country level (it will come by
    transfer from an eligible location) until routing allocates it, so both show the same."""
    dsn, sku, entity = clean_ledger, "PICK-SHORT", 950008
    magento_under_contract(settings, dsn, "physical", EMPTIED)
    _publish(dsn, settings, "pickup-short-before")
    body = _pickup_order(settings, entity, sku, "AE-ST-01")
    push = _push_token(dsn, "magento-webhook-pickup-short")
    assert api_client.post("/v1/magento/orders", json=body, headers=auth(push)).status_code == 200

    _publish(dsn, settings, "pickup-short-landed")
    salable, atp = _salable_and_atp(api_client, ledger_tokens, settings, sku)
    # the warehouse's 4 less the AE buffer of 1 less the order's 2
    assert salable == atp == 1
    with connect(dsn) as conn:
        short = conn.execute("SELECT count(*) AS n FROM oms.reservation_shortfall WHERE sku = %s", (sku,)).fetchone()
    assert short["n"] == 0
