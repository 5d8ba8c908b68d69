"""Shipped lines become `shipment` sales postings when the parcel physically leaves.

The one rule (docs/inventory-ledger.md, "When a unit leaves"): a Clickpost shipment has left its
location at its first scan that only a parcel in the courier's hands can have — picked up (4) or
any later stage: in transit, delayed, held, out for delivery, delivered, failed delivery, RTO,
lost, damaged (LEFT_CODES). Warehouse and store parcels alike go through Clickpost, so there is
no second rule for store-shipped parcels: a store's `pack` only says the parcel is ready.

At that scan, every line of the shipment moves from its reservation to a `shipment` posting in
one transaction (oms.inventory.postings.record_shipped_line, source_ref = the shipment's
reference number), so ATP does not move: the units are held by the posting until the ERP's own
`sale` for the line settles them. Exactly once per line: the posting is keyed on (shipment,
order line), and a shipment is skipped once all its lines are posted; a crash before the commit
leaves nothing, a crash after it leaves the postings, and the next run finds them
(crash points before_posting_commit / after_posting_commit, oms.shipping.faults).

A transfer's parcel (to a pickup store, oms.shipment.deliver_to_store_id) is not a sale: the same
first scan dispatches its transfer task (`transfer_out` postings at the source, in transit), and
its delivered scan (8) receives it at the pickup store (`transfer_in` postings there, the order's
hold moves with them) — oms.fulfilment.tasks.dispatch / receive, each once per task.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.rows import dict_row

from oms.fulfilment import tasks
from oms.inventory import postings
from oms.shipping.faults import crash_point

log = logging.getLogger(__name__)

# Clickpost status codes a parcel can only have once the courier holds it (contracts: buckets 2
# dispatched, 3 in transit, 4 out for delivery, 6 delivered, 7 returned, 8 lost, 9 damaged, and
# 9 failed delivery). Not: order placed / pickup pending / pickup failed / cancelled / AWB
# registered / out for pickup, nor 7 "not serviceable", which a courier may answer before pickup.
LEFT_CODES = (4, 5, 18, 19, 20, 1004, 6, 8, 9, 11, 12, 13, 14, 15, 21, 26, 27, 16, 17)

DUE_SQL = """
SELECT s.shipment_id, s.reference_number, s.order_increment_id, s.magento_entity_id, s.store_id, s.line_items,
       left_at.status_at AS left_at
FROM oms.shipment s
JOIN LATERAL (SELECT min(e.status_at) AS status_at FROM oms.shipment_event e
              WHERE e.waybill = s.awb AND e.status_code = ANY(%(codes)s)) left_at ON left_at.status_at IS NOT NULL
WHERE s.awb IS NOT NULL AND s.state IN ('manifested', 'magento_shipped') AND s.deliver_to_store_id IS NULL
  AND EXISTS (SELECT 1 FROM jsonb_array_elements(s.line_items) i
              WHERE NOT EXISTS (SELECT 1 FROM oms.sales_posting p
                                WHERE p.posting_type = 'shipment' AND p.source_ref = s.reference_number
                                  AND p.order_increment_id = s.order_increment_id
                                  AND p.line_key = s.magento_entity_id || '-' || (i ->> 'order_item_id')))
ORDER BY s.shipment_id
"""

DELIVERED = 8
TRANSFERS_DUE_SQL = """
SELECT t.task_id, t.status, s.reference_number, left_at.status_at AS left_at, delivered.status_at AS delivered_at
FROM oms.shipment s
JOIN oms.fulfilment_task t ON t.decision_id = s.decision_id AND t.shipment_no = s.shipment_no
                          AND t.store_id = s.store_id AND t.kind = 'transfer_to_pickup'
JOIN LATERAL (SELECT min(e.status_at) AS status_at FROM oms.shipment_event e
              WHERE e.waybill = s.awb AND e.status_code = ANY(%(codes)s)) left_at ON left_at.status_at IS NOT NULL
LEFT JOIN LATERAL (SELECT min(e.status_at) AS status_at FROM oms.shipment_event e
                   WHERE e.waybill = s.awb AND e.status_code = %(delivered)s) delivered ON true
WHERE s.deliver_to_store_id IS NOT NULL AND s.awb IS NOT NULL AND s.state = 'manifested'
  AND (t.status IN ('open', 'accepted', 'packed') OR (t.status = 'in_transit' AND delivered.status_at IS NOT NULL))
ORDER BY t.task_id
"""

# The line's money from the order marts (a configurable child with its parent's price), the
# same figures a click & collect hand-over posts (oms.fulfilment.tasks.picked_up).
MONEY_SQL = """
SELECT l.line_key, l.qty_ordered, l.unit_price, l.row_total, l.discount_amount, l.tax_amount, o.currency_code
FROM marts.fct_order_lines l JOIN marts.fct_orders o ON o.increment_id = l.increment_id
WHERE l.increment_id = %s
"""


def _amounts(money: dict[str, Any] | None, qty: Decimal) -> dict[str, Any]:
    zero = Decimal(0)
    if money is None:
        return {}
    share = qty / money["qty_ordered"] if money["qty_ordered"] else Decimal(1)
    discount = money["discount_amount"] or zero
    tax = money["tax_amount"] or zero
    return {"currency_code": money["currency_code"], "unit_price": money["unit_price"] or zero,
            "discount_amount": round(discount * share, 4), "tax_amount": round(tax * share, 4),
            "row_total_incl_tax": round(((money["row_total"] or zero) - discount + tax) * share, 4).max(zero)}


def move_transfers(conn: psycopg.Connection) -> dict[str, int]:
    """Dispatch the transfers whose parcel the courier has, receive those it delivered."""
    counts = {"transfers_dispatched": 0, "transfers_received": 0}
    due = conn.cursor(row_factory=dict_row).execute(
        TRANSFERS_DUE_SQL, {"codes": list(LEFT_CODES), "delivered": DELIVERED}).fetchall()
    conn.commit()
    for row in due:
        if row["status"] != "in_transit":
            counts["transfers_dispatched"] += not tasks.dispatch(conn, row["task_id"], actor="courier",
                                                                 now=row["left_at"])["replayed"]
        if row["delivered_at"] is not None:
            counts["transfers_received"] += not tasks.receive(conn, row["task_id"], actor="courier",
                                                              now=row["delivered_at"])["replayed"]
    return counts


def post_shipped(conn: psycopg.Connection, *, crash_at: str | None = None) -> dict[str, Any]:
    """Post every line of each shipment that has left and is not posted yet (one transaction per
    shipment). A shipment whose order is not in the order marts yet waits for the next run.
    Then move the transfers whose parcels were scanned (move_transfers)."""
    counts: dict[str, Any] = {"shipments": 0, "postings": 0, "moved_from_reservation": 0.0, "waiting_for_marts": 0}
    counts.update(move_transfers(conn))
    cur = conn.cursor(row_factory=dict_row)
    due = cur.execute(DUE_SQL, {"codes": list(LEFT_CODES)}).fetchall()
    marts_built = cur.execute("SELECT to_regclass('marts.fct_order_lines') IS NOT NULL AS built").fetchone()["built"]
    conn.commit()
    if due and not marts_built:
        # a warehouse whose order marts were never built (before the first atp_build): the lines'
        # prices come from them, so every parcel that left waits, still held by its reservation
        counts["waiting_for_marts"] = len(due)
        log.warning("%d shipment(s) left but the order marts are not built yet: posted after atp_build", len(due))
        return counts
    for shipment in due:
        with conn.transaction():
            if not cur.execute("SELECT 1 FROM oms.shipment WHERE shipment_id = %s FOR UPDATE SKIP LOCKED",
                               (shipment["shipment_id"],)).fetchone():
                continue      # another run is posting it
            money = {r["line_key"]: r for r in cur.execute(MONEY_SQL, (shipment["order_increment_id"],))}
            lines = [(f"{shipment['magento_entity_id']}-{i['order_item_id']}", i) for i in shipment["line_items"]]
            if any(key not in money for key, _ in lines):
                counts["waiting_for_marts"] += 1
                log.warning("shipment %s left at %s: order %s is not in the order marts yet, posted next run",
                            shipment["reference_number"], shipment["left_at"], shipment["order_increment_id"])
                continue
            for line_key, line in lines:
                qty = Decimal(str(line["qty"]))
                result = postings.record_shipped_line(
                    conn, source_ref=shipment["reference_number"], order_increment_id=shipment["order_increment_id"],
                    line_key=line_key, store_id=shipment["store_id"], sku=line["sku"], qty=qty,
                    occurred_at=shipment["left_at"], **_amounts(money[line_key], qty))
                counts["postings"] += result.created
                counts["moved_from_reservation"] += float(result.moved_from_reservation_qty)
            crash_point("before_posting_commit", crash_at)
        counts["shipments"] += 1
        crash_point("after_posting_commit", crash_at)
    return counts
