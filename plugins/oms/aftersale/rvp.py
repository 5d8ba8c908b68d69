"""Returns from home (Clickpost reverse pickup, RVP) and RTO restocks.

* queue_pickup: a 'home' return gets a reverse_pickup row whose reference_number is Clickpost's
  idempotency key; book_pickups (the aftersale_magento_sync DAG) sends create-order v3 with
  ``additional.delivery_type = RVP`` and records the waybill. A repeat create-order for the same
  reference answers "already placed" (meta 323) with the same waybill: recorded, not booked twice.
* pickup_status: the shipment engineer's webhook handler calls it with the RVP waybill's status;
  status 8 (delivered — back at the store) receives the return (restock + Magento + notification).
* restock_rto: a forward shipment came back to its origin (status 14, RTO delivered): its units
  go back on that location's shelf as a return_restock posting keyed on the waybill, so the same
  status twice restocks once. The ERP's later return_receipt settles it (no double count).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import psycopg

from oms.aftersale import returns
from oms.integrations.clickpost import ClickpostClient
from oms.inventory import postings
from oms.warehouse import connect

RVP_DELIVERED = 8
RTO_DELIVERED = 14


def queue_pickup(conn: psycopg.Connection, return_id: int) -> str:
    reference = f"OMS-RVP-{return_id}"
    conn.execute("INSERT INTO oms.reverse_pickup (return_id, reference_number, status) VALUES (%s, %s, 'to_book') "
                 "ON CONFLICT (return_id) DO NOTHING", (return_id, reference))
    return reference


def create_order_body(conn: psycopg.Connection, return_id: int) -> dict[str, Any]:
    ret = conn.execute(
        """SELECT r.*, o.ship_to_firstname, o.ship_to_lastname, o.ship_to_street, o.ship_to_city,
                  o.ship_to_postcode, o.ship_to_telephone, o.ship_to_country_code, o.customer_email,
                  l.name AS store_name, l.address_line, l.city AS store_city, l.postcode AS store_postcode,
                  l.phone AS store_phone, p.reference_number
           FROM oms.customer_return r JOIN marts.fct_orders o ON o.increment_id = r.order_increment_id
           JOIN ref.location l ON l.store_id = r.store_id JOIN oms.reverse_pickup p ON p.return_id = r.return_id
           WHERE r.return_id = %s""", (return_id,)).fetchone()
    lines = conn.execute("SELECT sku, qty, refund_amount FROM oms.customer_return_line WHERE return_id = %s "
                         "ORDER BY line_no", (return_id,)).fetchall()
    value = float(sum((x["refund_amount"] for x in lines), Decimal(0)))
    return {
        "pickup_info": {
            "pickup_name": " ".join(filter(None, [ret["ship_to_firstname"], ret["ship_to_lastname"]])) or "Customer",
            "pickup_phone": ret["ship_to_telephone"] or "0000000000",
            "pickup_address": ret["ship_to_street"] or "-", "pickup_city": ret["ship_to_city"] or "-",
            "pickup_pincode": ret["ship_to_postcode"] or "00000",
            "pickup_country": ret["ship_to_country_code"] or ret["country_code"],
            "email": ret["customer_email"],
        },
        "drop_info": {
            "drop_name": ret["store_name"], "drop_phone": ret["store_phone"] or "0000000000",
            "drop_address": ret["address_line"] or ret["store_name"], "drop_city": ret["store_city"] or "-",
            "drop_pincode": ret["store_postcode"] or "00000", "drop_country": ret["country_code"],
        },
        "shipment_details": {
            "order_type": "PREPAID", "cod_value": 0, "invoice_value": value,
            "reference_number": ret["reference_number"], "weight": 500, "length": 30, "breadth": 20, "height": 10,
            "items": [{"sku": x["sku"], "quantity": float(x["qty"]), "description": x["sku"],
                       "price": float(x["refund_amount"] / x["qty"])} for x in lines],
        },
        "additional": {"delivery_type": "RVP", "rvp_reason": "customer return",
                       "order_id": ret["order_increment_id"]},
    }


def book_pickups(dsn: str, clickpost: ClickpostClient) -> dict[str, int]:
    """Book every reverse pickup not booked yet (idempotent on reference_number)."""
    with connect(dsn) as conn:
        todo = [r["return_id"] for r in conn.execute(
            "SELECT return_id FROM oms.reverse_pickup WHERE waybill IS NULL AND status IN ('to_book', 'retry') "
            "ORDER BY return_id")]
    counts = {"booked": 0, "refused": 0, "retry": 0}
    for return_id in todo:
        with connect(dsn) as conn:
            body = create_order_body(conn, return_id)
        try:
            answer = clickpost.create_order(body, version=3).body
        except httpx.HTTPError:
            with connect(dsn) as conn:
                conn.execute("UPDATE oms.reverse_pickup SET status = 'retry', updated_at = now() WHERE return_id = %s",
                             (return_id,))
            counts["retry"] += 1
            continue
        meta = answer.get("meta") or {}
        result = answer.get("result") or {}
        with connect(dsn) as conn:
            if meta.get("status") in (200, 323) and result.get("waybill"):
                conn.execute(
                    "UPDATE oms.reverse_pickup SET waybill = %s, courier_partner = %s, status = 'booked', "
                    "status_code = NULL, updated_at = now() WHERE return_id = %s",
                    (result["waybill"], result.get("courier_partner_id"), return_id))
                counts["booked"] += 1
            elif meta.get("status") in (102, 202):
                conn.execute("UPDATE oms.reverse_pickup SET status = 'retry', updated_at = now() "
                             "WHERE return_id = %s", (return_id,))
                counts["retry"] += 1
            else:
                conn.execute("UPDATE oms.reverse_pickup SET status = %s, updated_at = now() WHERE return_id = %s",
                             (f"refused: {meta.get('status')} {meta.get('message')}"[:200], return_id))
                counts["refused"] += 1
    return counts


def pickup_status(conn: psycopg.Connection, waybill: str, status_code: int, status: str | None = None,
                  now: datetime | None = None) -> bool:
    """Record an RVP tracking status; status 8 (delivered to the store) receives the return.
    Returns False for a waybill that is not a reverse pickup of ours."""
    row = conn.execute("UPDATE oms.reverse_pickup SET status_code = %s, status = coalesce(%s, status), "
                       "updated_at = now() WHERE waybill = %s RETURNING return_id",
                       (status_code, status, waybill)).fetchone()
    if row is None:
        return False
    if status_code == RVP_DELIVERED:
        returns.receive(conn, row["return_id"], now=now)
    return True


def restock_rto(conn: psycopg.Connection, waybill: str, order_increment_id: str, location: str,
                lines: list[dict[str, Any]] | None = None, now: datetime | None = None) -> list[int]:
    """An RTO shipment is back at its origin `location` (Clickpost status 14): put its units back
    on that location's shelf. lines: [{line_key, qty}] of the shipment; None = every shipped
    unit of the order's lines not returned yet. One return_restock posting per line, keyed
    'rto:<waybill>', so a repeated status 14 changes nothing. Returns the posting ids."""
    now = now or datetime.now(UTC)
    done = [r["posting_id"] for r in conn.execute(
        "SELECT posting_id FROM oms.sales_posting WHERE posting_type = 'return_restock' AND source_ref = %s "
        "AND order_increment_id = %s ORDER BY posting_id", (f"rto:{waybill}", order_increment_id))]
    if done:  # this RTO was restocked before (the status arrived again)
        return done
    order = conn.execute("SELECT currency_code FROM marts.fct_orders WHERE increment_id = %s",
                         (order_increment_id,)).fetchone()
    if order is None:
        raise returns.ReturnNotFound("unknown_order", f"unknown order {order_increment_id!r}")
    order_lines = {r["line_key"]: r for r in conn.execute(
        "SELECT line_key, sku, qty_ordered, qty_shipped, unit_price, row_total, discount_amount, tax_amount "
        "FROM marts.fct_order_lines WHERE increment_id = %s AND requires_fulfilment", (order_increment_id,))}
    wanted = lines if lines is not None else [{"line_key": k, "qty": r["qty_shipped"]} for k, r in order_lines.items()
                                              if r["qty_shipped"] > 0]
    ids = []
    for item in wanted:
        line = order_lines.get(item["line_key"])
        if line is None:
            raise returns.ReturnRefused("unknown_line", f"order {order_increment_id} has no line {item['line_key']!r}")
        qty = Decimal(str(item["qty"]))
        share = qty / line["qty_ordered"] if line["qty_ordered"] else Decimal(0)
        posted = postings.record_restocked_return(
            conn, return_ref=f"rto:{waybill}", order_increment_id=order_increment_id, line_key=line["line_key"],
            store_id=location, sku=line["sku"], qty=qty, currency_code=order["currency_code"] or "XXX",
            unit_price=line["unit_price"] or 0,
            row_total_incl_tax=returns._money((line["row_total"] or 0) * share - line["discount_amount"] * share
                                              + line["tax_amount"] * share).max(Decimal(0)),
            discount_amount=returns._money(line["discount_amount"] * share),
            tax_amount=returns._money(line["tax_amount"] * share), occurred_at=now)
        ids.append(posted.posting_id)
    return ids
