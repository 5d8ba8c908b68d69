"""An exchange's replacement is the platform's own order: Magento never had it, so Magento reserves
nothing for it. Under the 'physical' contract the held units of Magento's orders are published
back into their source for Magento's reservation to offset; the replacement's must not be, or
Magento shows them salable until they leave the shelf (seen in the simulated month as Magento one
unit above the platform for the rest of the day after an exchange)."""

from __future__ import annotations

from psycopg.types.json import Jsonb

from oms.integrations.magento import MagentoClient
from oms.inventory import reservations
from oms.publishing.publisher import publish
from oms.warehouse import connect

from .helpers import atp_via_api, magento, magento_under_contract

SKU, STORE = "MV-TEE", "AE-ST-01"   # a store that ships: eligible for the AE channel
EMPTIED = "oms.publish_ledger, oms.return_exchange, oms.customer_return_line, oms.customer_return CASCADE"


def _hold_an_exchange_replacement(dsn: str) -> None:
    with connect(dsn) as conn:
        return_id = conn.execute(
            """INSERT INTO oms.customer_return (client_return_id, kind, order_increment_id, order_entity_id,
                   country_code, store_id, currency_code, status, refund_due, request_hash, request)
               VALUES ('EXCH-PUBLISH-1', 'store', 'AE000070001', 70001, 'AE', %s, 'AED', 'received', false,
                       'test', %s) RETURNING return_id""",
            (STORE, Jsonb({"exchange": [{"sku": SKU, "qty": 1}]}))).fetchone()["return_id"]
        increment = f"AE000070001-EX{return_id}"
        conn.execute("INSERT INTO oms.return_exchange (return_id, exchange_increment_id, lines, routing_outcome)"
                     " VALUES (%s, %s, %s, 'allocated')",
                     (return_id, increment, Jsonb([{"line_key": f"EX{return_id}-1", "sku": SKU, "qty": 1}])))
        held = reservations.reserve(conn, increment, f"EX{return_id}-1", "AE", SKU, 1, STORE, reason="exchange")
        assert held.ok


def test_an_exchange_replacement_held_at_a_store_is_not_published_as_salable(
        clean_ledger, api_client, ledger_tokens, sandboxes, settings):
    dsn = clean_ledger
    magento_under_contract(settings, dsn, "physical", EMPTIED)
    _hold_an_exchange_replacement(dsn)
    with MagentoClient(settings.magento_url, settings.magento_token, attempts=8) as msi:
        publish(dsn, msi, run_id="exchange-publish")
    countries, _, _ = atp_via_api(api_client, ledger_tokens["stock:read"], SKU)
    salable = float(magento(settings, "GET", f"/rest/V1/inventory/get-product-salable-quantity/{SKU}/2"))
    assert salable == countries["AE"]
