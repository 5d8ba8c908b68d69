"""A transfer to a pickup store is a real movement: `transfer_out` at the source when the courier
takes the parcel (in transit: in neither store's ATP, still counted), `transfer_in` at the pickup
store when it is delivered (the order's hold moves there), each settled by the ERP's own movement
of that type naming the order line. Units are counted at every step: each store's ATP, the units
in transit, the postings, and Magento's salable quantity under both publishing contracts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from oms import tokens
from oms.fulfilment import tasks
from oms.integrations.clickpost import ClickpostClient
from oms.integrations.magento import MagentoClient
from oms.publishing.publisher import publish
from oms.routing import decisions
from oms.routing.model import Allocation, Decision, Shipment
from oms.shipping import postings, shipments
from oms.warehouse import connect

from ..magento_shapes import item, order
from .helpers import atp_via_api, auth, magento, magento_under_contract, rebuild_marts, store_live

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
SOURCE, PICKUP = "AE-WH-01", "AE-ST-01"


@pytest.fixture(scope="module")
def push_token(ledger_dsn) -> str:
    with connect(ledger_dsn) as conn:
        return tokens.create_token(conn, "magento-webhook-transfer", ["orders:write"])


def _route_by_transfer(dsn: str, increment: str, line_key: str, sku: str) -> Decision:
    """What routing decides when the pickup store lacks the units: a transfer from the warehouse
    by courier (the engine's `transfer` fall-back), its holds and its store tasks."""
    from oms.fulfilment import holds

    decision = Decision(
        order_increment_id=increment, country_code="AE", decided_at=T0 + timedelta(minutes=5), profile_id=None,
        profile_version=None, profile_name="test", outcome="pickup_transfer", reason="transfer_to_pickup",
        allocations=[Allocation(line_key=line_key, sku=sku, qty=2, store_id=SOURCE, shipment_no=1,
                                fulfilment="transfer_to_pickup", deliver_to_store_id=PICKUP)],
        shipments=[Shipment(shipment_no=1, store_id=SOURCE, fulfilment="transfer_to_pickup", line_keys=[line_key],
                            deliver_to_store_id=PICKUP, courier="Aramex", cost=12.0)],
        explanation="transfer from AE-WH-01")
    with connect(dsn) as conn:
        assert holds.reserve_decision(conn, decision)
        decision_id = decisions.save_decision(conn, decision)
        assert len(tasks.create_for_decision(conn, decision_id, decision)) == 2   # transfer + hand-over
    return decision


@pytest.mark.parametrize("contract", ["physical", "sellable"])
def test_a_transfer_to_the_pickup_store_moves_units_counted_at_every_step(
        contract, clean_ledger, api_client, ledger_tokens, push_token, sandboxes, settings):
    dsn, read, erp = clean_ledger, ledger_tokens["stock:read"], ledger_tokens["erp:write"]
    sku = f"TRF-{contract.upper()}"
    entity = 940001 if contract == "physical" else 940002
    item_id, increment = entity * 10 + 1, f"AE{entity:09d}"
    line_key = f"{entity}-{item_id}"
    body = order(entity, [item(item_id, sku, qty=2, price=30.0, qty_invoiced=2)], T0,
                 pickup_location_code="ae-st-01", shipping_method="instore_pickup")
    body["total_invoiced"] = body["grand_total"]      # paid online: its parcels may be planned

    magento_under_contract(settings, dsn, contract,
                           "oms.publish_ledger, oms.fulfilment_task, oms.fulfilment_task_event")

    def count(step: str, source_atp: int, pickup_atp: int, in_transit: int, compare_magento: bool = True,
              units: int = 5) -> dict:
        """Every figure of the step; ATP = on hand − safety − holds (+ received) per store, and the
        units of the two stores plus those in transit stay 5 until the customer takes 2 (none
        created, none lost)."""
        with connect(dsn) as conn:
            transit = conn.execute("SELECT coalesce(sum(qty), 0) AS q FROM oms.stock_in_transit WHERE sku = %s",
                                   (sku,)).fetchone()["q"]
            posted = {(r["posting_type"], r["store_id"]): (r["qty"], r["erp_settled_qty"]) for r in conn.execute(
                "SELECT posting_type, store_id, qty, erp_settled_qty FROM oms.sales_posting WHERE sku = %s", (sku,))}
            held = {r["store_id"]: r["q"] for r in conn.execute(
                "SELECT store_id, sum(qty) AS q FROM oms.reservation WHERE sku = %s AND status = 'active'"
                " GROUP BY store_id", (sku,))}
        live = store_live(dsn, sku)
        for s in (SOURCE, PICKUP):
            w = live[s]
            assert w["atp_qty"] == max(w["on_hand_qty"] - w["safety_stock_qty"] - w["reserved_qty"]
                                       - w["awaiting_erp_qty"] + w["restocked_qty"], 0), (step, w)
        on_shelves = sum(live[s]["on_hand_qty"] - live[s]["awaiting_erp_qty"] + live[s]["restocked_qty"]
                         for s in (SOURCE, PICKUP))
        countries, stores, _ = atp_via_api(api_client, read, sku)
        figures = {"source_atp": stores[SOURCE], "pickup_atp": stores[PICKUP], "in_transit": transit,
                   "units": on_shelves + transit, "country_atp": countries["AE"]}
        assert figures == {"source_atp": source_atp, "pickup_atp": pickup_atp, "in_transit": in_transit,
                           "units": units, "country_atp": source_atp + pickup_atp - 1}, (contract, step, figures)
        if compare_magento:
            with MagentoClient(settings.magento_url, settings.magento_token, attempts=8) as msi:
                report = publish(dsn, msi, run_id=f"transfer-{contract}-{step}")
            assert report.failed_chunks == 0, report.as_dict()
            salable = float(magento(settings, "GET", f"/rest/V1/inventory/get-product-salable-quantity/{sku}/2"))
            assert salable == countries["AE"], (contract, step, salable)
        return {"posted": posted, "held": held}

    def scan(awb: str, code: int, minutes: int) -> dict:
        with connect(dsn) as conn:
            conn.execute("SELECT oms.record_shipment_event(%s, %s, %s, NULL, NULL, NULL, NULL, NULL, 'webhook', NULL)",
                         (awb, code, T0 + timedelta(minutes=minutes)))
        with connect(dsn) as conn:
            return postings.post_shipped(conn)

    def erp_movement(document: str, kind: str, store: str, qty: int) -> Decimal:
        line = {"document_id": document, "line_no": 1, "movement_type": kind, "store_id": store, "sku": sku,
                "qty": qty, "posted_at": datetime.now(UTC).isoformat(), "order_increment_id": increment,
                "order_line_key": line_key}
        answer = api_client.post("/v1/erp/stock-movements", json={"lines": [line]}, headers=auth(erp))
        assert answer.status_code == 200, answer.text
        return Decimal(str(answer.json()["lines"][0]["settled_qty"]))

    try:
        assert count("stock published", 5, 0, 0)["posted"] == {}
        # a click & collect order for 2 at the store that has none: landed, then routed by transfer
        magento(settings, "POST", "/_sandbox/orders", json=[body])
        assert api_client.post("/v1/magento/orders", json=body, headers=auth(push_token)).status_code == 200
        decision = _route_by_transfer(dsn, increment, line_key, sku)
        assert count("routed by transfer", 3, 0, 0)["held"] == {SOURCE: 2}

        # the transfer travels by courier: a Clickpost parcel from the warehouse to the pickup store,
        # never a Magento shipment (Magento ships those items from the pickup store at `ready`)
        clickpost = ClickpostClient(settings.clickpost_url, settings.clickpost_username, settings.clickpost_key)
        with connect(dsn) as conn, clickpost, MagentoClient(settings.magento_url, settings.magento_token) as sales:
            report = shipments.run(conn, clickpost, sales, only=[increment])
            parcel = conn.execute("SELECT * FROM oms.shipment WHERE order_increment_id = %s", (increment,)).fetchone()
        assert (report.planned, report.manifested, report.magento_shipped) == (1, 1, 0), report.as_dict()
        assert (parcel["store_id"], parcel["deliver_to_store_id"], parcel["state"]) == (SOURCE, PICKUP, "manifested")
        drop = parcel["request"]["drop_info"]
        assert (drop.get("name") or drop.get("drop_name")) == "Dubai Mall"
        assert parcel["request"]["shipment_details"]["order_type"] == "PREPAID"
        [transfer] = [t for t in _tasks(dsn, increment) if t["kind"] == "transfer_to_pickup"]
        count("manifested", 3, 0, 0)

        # the courier's pickup scan: transfer_out at the source, the hold moves to it (in transit)
        moved = scan(parcel["awb"], 4, 30)
        assert moved["transfers_dispatched"] == 1 and moved["postings"] == 0
        seen = count("in transit", 3, 0, 2)
        assert seen["posted"] == {("transfer_out", SOURCE): (2, 0)} and seen["held"] == {}
        # a later version of the order lands: the units in transit are not held a second time
        later = {**body, "updated_at": (T0 + timedelta(minutes=40)).strftime("%Y-%m-%d %H:%M:%S")}
        assert api_client.post("/v1/magento/orders", json=later, headers=auth(push_token)).status_code == 200
        assert count("new version in transit", 3, 0, 2)["held"] == {}
        # the ERP pulls the transfer_out like the other postings and posts its own, naming the line
        pulled = api_client.get("/v1/erp/sales-postings", params={"store_id": SOURCE}, headers=auth(erp)).json()
        [line] = [i for i in pulled["items"] if i["order_increment_id"] == increment]
        assert (line["posting_type"], line["source_ref"], Decimal(str(line["qty"]))) == \
            ("transfer_out", tasks.transfer_ref(transfer["task_id"]), 2)
        assert erp_movement(f"TO-{entity}", "transfer_out", SOURCE, -2) == 2
        seen = count("ERP transfer_out", 3, 0, 2)
        assert seen["posted"] == {("transfer_out", SOURCE): (2, 2)}
        # the ready step waits for the transfer to arrive
        [pickup] = [t for t in _tasks(dsn, increment) if t["kind"] == "pickup"]
        with connect(dsn) as conn, pytest.raises(tasks.TransitionError):
            tasks.ready_for_pickup(conn, pickup["task_id"])

        # delivered at the pickup store: transfer_in there, the order's hold moves with it
        moved = scan(parcel["awb"], 8, 240)
        assert moved["transfers_received"] == 1
        seen = count("received", 3, 0, 0)
        assert seen["posted"][("transfer_in", PICKUP)] == (2, 0) and seen["held"] == {PICKUP: 2}
        assert scan(parcel["awb"], 8, 240)["transfers_received"] == 0                # once
        assert erp_movement(f"TI-{entity}", "transfer_in", PICKUP, 2) == 2
        seen = count("ERP transfer_in", 3, 0, 0)
        assert seen["posted"][("transfer_in", PICKUP)] == (2, 2) and seen["held"] == {PICKUP: 2}

        # handed over: the collection posting takes the hold at the pickup store
        with connect(dsn) as conn:
            tasks.ready_for_pickup(conn, pickup["task_id"])
            tasks.picked_up(conn, pickup["task_id"])
        seen = count("collected", 3, 0, 0, compare_magento=False, units=3)
        assert seen["posted"][("collection", PICKUP)] == (2, 0) and seen["held"] == {}
        # the next dbt build says what the live ledger says
        assert rebuild_marts(dsn)["dbt_failed"] == 0
        count("rebuilt", 3, 0, 0, compare_magento=False, units=3)
        assert decision.outcome == "pickup_transfer"
    finally:
        with connect(dsn) as conn:
            conn.execute("UPDATE ref.channel SET publish_mode = 'physical' WHERE country_code = 'AE'")
        magento(settings, "POST", "/_sandbox/stocks/2/reservations", json={"enabled": True})


def _tasks(dsn: str, increment: str) -> list[dict]:
    with connect(dsn) as conn:
        return conn.execute("SELECT * FROM oms.fulfilment_task WHERE order_increment_id = %s ORDER BY task_id",
                            (increment,)).fetchall()
