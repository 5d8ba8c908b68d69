"""Returns: validated against what Magento shipped, restocked at once where sellable, and handed
to Magento (comment + offline credit memo) through oms.magento_outbox — never from the request.

The order's lines come from the order marts (marts.fct_orders, marts.fct_order_lines: the landed
Magento order as of the last orders build). Returnable per line = qty_shipped − units already
returned on earlier returns of the line. Everything a return changes (the return, its lines, the
restock postings, the outbox rows, the notification) is written in one transaction: a refused
request changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

import psycopg
from psycopg.types.json import Jsonb
from pydantic import BaseModel, ConfigDict, Field, model_validator

from oms import notifications
from oms.errors import Conflict, DomainError, NotFound, Refused
from oms.inventory import postings

SELLABLE = "sellable"
CONDITIONS = ("sellable", "damaged", "defective", "opened", "wrong_item")
CENT = Decimal("0.0001")


class ReturnError(DomainError):
    """A return the platform refuses: `code` names why, `line` the request line (0-based) at fault."""

    def __init__(self, code: str, message: str, line: int | None = None):
        super().__init__(message, code=code, details={"line": line} if line is not None else None)
        self.line = line


class ReturnRefused(ReturnError, Refused):
    """Not returnable as asked (more than shipped, an unknown line, store or SKU)."""


class ReturnNotFound(ReturnError, NotFound):
    """The order does not exist."""


class ReturnConflict(ReturnError, Conflict):
    """The client_return_id was recorded before with different content."""


class ReturnLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    line_key: str | None = Field(None, min_length=1, max_length=64, description="fct_order_lines.line_key")
    sku: str | None = Field(None, min_length=1, max_length=64, description="the line's SKU (when unambiguous)")
    qty: Decimal = Field(gt=0, max_digits=14, decimal_places=4)
    condition: Literal["sellable", "damaged", "defective", "opened", "wrong_item"]

    @model_validator(mode="after")
    def _one_key(self) -> ReturnLineIn:
        if self.line_key is None and self.sku is None:
            raise ValueError("give line_key or sku")
        return self


class ExchangeLineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sku: str = Field(min_length=1, max_length=64)
    qty: Decimal = Field(gt=0, max_digits=14, decimal_places=4)


class ReturnRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    client_return_id: str = Field(min_length=1, max_length=100, description="idempotency key of the caller")
    order_increment_id: str = Field(min_length=1, max_length=64)
    store_id: str = Field(min_length=1, max_length=20, description="the store taking the items back")
    lines: list[ReturnLineIn] = Field(min_length=1, max_length=200)
    exchange: list[ExchangeLineIn] = Field(default_factory=list, max_length=50,
                                           description="replacement items: an exchange, no refund")
    note: str | None = Field(None, max_length=500)


@dataclass(frozen=True)
class ReturnResult:
    return_id: int
    created: bool
    body: dict[str, Any]


def request_hash(req: ReturnRequest, kind: str) -> str:
    canonical = json.dumps({"kind": kind, **req.model_dump(mode="json")}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


ORDER_SQL = """
SELECT increment_id, entity_id, country_code, currency_code, state, customer_email, ship_to_telephone
FROM marts.fct_orders WHERE increment_id = %s
"""
LINES_SQL = """
SELECT l.line_key, l.item_id, l.parent_item_id, l.parent_product_type, l.sku, l.qty_ordered, l.qty_shipped,
       l.unit_price, coalesce(l.row_total, 0) AS row_total, l.discount_amount, l.tax_amount,
       coalesce((SELECT sum(rl.qty) FROM oms.customer_return_line rl
                 JOIN oms.customer_return r ON r.return_id = rl.return_id
                 WHERE rl.line_key = l.line_key AND r.status <> 'cancelled'), 0) AS returned_qty
FROM marts.fct_order_lines l
WHERE l.increment_id = %s AND l.requires_fulfilment
ORDER BY l.item_id
"""


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _existing(conn: psycopg.Connection, client_return_id: str, digest: str) -> ReturnResult | None:
    row = conn.execute("SELECT return_id, request_hash FROM oms.customer_return WHERE client_return_id = %s",
                       (client_return_id,)).fetchone()
    if row is None:
        return None
    if row["request_hash"] != digest:
        raise ReturnConflict("conflicting_replay",
                          f"return {client_return_id!r} was recorded before (return {row['return_id']}) with "
                          f"different content; a recorded return cannot change")
    return ReturnResult(row["return_id"], False, describe(conn, row["return_id"]))


def validate(conn: psycopg.Connection, req: ReturnRequest) -> tuple[dict, dict, list[tuple[ReturnLineIn, dict]]]:
    """(order, store, [(requested line, order line)]) or ReturnError. Reads under the order's lock."""
    store = conn.execute("SELECT store_id, country_code::text AS country_code, active FROM ref.location "
                         "WHERE store_id = %s", (req.store_id,)).fetchone()
    if store is None:
        raise ReturnRefused("unknown_store", f"unknown store {req.store_id!r}")
    order = conn.execute(ORDER_SQL, (req.order_increment_id,)).fetchone()
    if order is None:
        raise ReturnNotFound("unknown_order", f"unknown order {req.order_increment_id!r}")
    if order["country_code"] != store["country_code"]:
        raise ReturnRefused("wrong_country",
                          f"order {req.order_increment_id} was sold in {order['country_code']}; store "
                          f"{req.store_id} is in {store['country_code']}: return it in a store of that country")
    lines = conn.execute(LINES_SQL, (req.order_increment_id,)).fetchall()
    by_key = {row["line_key"]: row for row in lines}
    asked: dict[str, Decimal] = {}
    matched = []
    for index, line in enumerate(req.lines):
        if line.line_key is not None:
            row = by_key.get(line.line_key)
            if row is None or (line.sku is not None and row["sku"] != line.sku):
                raise ReturnRefused("unknown_line",
                                  f"order {req.order_increment_id} has no line {line.line_key!r}"
                                  + (f" with sku {line.sku!r}" if line.sku else ""), index)
        else:
            rows = [r for r in lines if r["sku"] == line.sku]
            if not rows:
                raise ReturnRefused("unknown_line",
                                  f"order {req.order_increment_id} has no line with sku {line.sku!r}", index)
            if len(rows) > 1:
                raise ReturnRefused("ambiguous_line",
                                  f"order {req.order_increment_id} has {len(rows)} lines with sku {line.sku!r}; "
                                  f"name the line_key ({', '.join(r['line_key'] for r in rows)})", index)
            row = rows[0]
        asked[row["line_key"]] = asked.get(row["line_key"], Decimal(0)) + line.qty
        returnable = row["qty_shipped"] - row["returned_qty"]
        if asked[row["line_key"]] > returnable:
            raise ReturnRefused("more_than_shipped",
                              f"line {row['line_key']} ({row['sku']}): {asked[row['line_key']].normalize()} asked, "
                              f"{row['qty_shipped'].normalize()} shipped, {row['returned_qty'].normalize()} returned "
                              f"before: at most {returnable.normalize()} can be returned", index)
        matched.append((line, row))
    return order, store, matched


def create_return(conn: psycopg.Connection, req: ReturnRequest, *, kind: str = "store",
                  created_by: str | None = None, now: datetime | None = None) -> ReturnResult:
    """Record a return in the caller's transaction. kind='store': received now (sellable units
    restocked at the store at once, Magento documents queued). kind='home': the units are still
    with the customer; oms.aftersale.rvp books the pickup and receive() runs when it arrives."""
    now = now or datetime.now(UTC)
    digest = request_hash(req, kind)
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('oms.return'), hashtext(%s))", (req.order_increment_id,))
    if (found := _existing(conn, req.client_return_id, digest)) is not None:
        return found
    order, store, matched = validate(conn, req)
    if req.exchange:
        unknown = [x.sku for x in req.exchange
                   if conn.execute("SELECT 1 FROM ref.sku WHERE sku = %s", (x.sku,)).fetchone() is None]
        if unknown:
            raise ReturnRefused("unknown_sku", f"unknown exchange sku(s) {unknown}")
    return_id = conn.execute(
        """INSERT INTO oms.customer_return (client_return_id, kind, order_increment_id, order_entity_id, country_code,
                                            store_id, currency_code, status, refund_due, request_hash, request,
                                            created_by)
           VALUES (%s, %s, %s, %s, %s, %s, %s, 'pickup_requested', %s, %s, %s, %s) RETURNING return_id""",
        (req.client_return_id, kind, order["increment_id"], order["entity_id"], order["country_code"], store["store_id"],
         order["currency_code"] or "XXX", not req.exchange, digest, Jsonb(req.model_dump(mode="json")), created_by),
    ).fetchone()["return_id"]
    for line_no, (line, row) in enumerate(matched, start=1):
        per_unit = (row["row_total"] - row["discount_amount"] + row["tax_amount"]) / row["qty_ordered"] \
            if row["qty_ordered"] else Decimal(0)
        magento_item = row["parent_item_id"] if row["parent_product_type"] == "configurable" else row["item_id"]
        conn.execute(
            """INSERT INTO oms.customer_return_line (return_id, line_no, line_key, magento_item_id, sku, qty, condition,
                                                     restock, refund_amount)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            (return_id, line_no, row["line_key"], magento_item, row["sku"], line.qty, line.condition,
             line.condition == SELLABLE, _money(per_unit * line.qty)))
    if kind == "store":
        receive(conn, return_id, now=now)
    if req.exchange:
        from oms.aftersale import exchanges

        exchanges.create_exchange(conn, return_id, now=now)
    return ReturnResult(return_id, True, describe(conn, return_id))


def receive(conn: psycopg.Connection, return_id: int, *, now: datetime | None = None) -> bool:
    """The returned units are at the return's store: restock the sellable ones (a return_restock
    posting each: live ATP rises at once, the ERP's later return_receipt settles it), queue the
    Magento comment and credit memo, and the 'return_received' notification. Once per return."""
    now = now or datetime.now(UTC)
    ret = conn.execute("UPDATE oms.customer_return SET status = 'received', received_at = %s "
                       "WHERE return_id = %s AND status = 'pickup_requested' RETURNING *", (now, return_id)).fetchone()
    if ret is None:
        return False
    lines = conn.execute("SELECT rl.*, l.unit_price, l.qty_ordered, l.discount_amount, l.tax_amount, l.row_total "
                         "FROM oms.customer_return_line rl JOIN marts.fct_order_lines l ON l.line_key = rl.line_key "
                         "WHERE rl.return_id = %s ORDER BY rl.line_no", (return_id,)).fetchall()
    for line in lines:
        if not line["restock"]:
            continue
        share = line["qty"] / line["qty_ordered"] if line["qty_ordered"] else Decimal(0)
        posted = postings.record_restocked_return(
            conn, return_ref=f"return:{return_id}", order_increment_id=ret["order_increment_id"],
            line_key=line["line_key"], store_id=ret["store_id"], sku=line["sku"], qty=line["qty"],
            currency_code=ret["currency_code"], unit_price=line["unit_price"] or 0,
            discount_amount=_money(line["discount_amount"] * share), tax_amount=_money(line["tax_amount"] * share),
            row_total_incl_tax=line["refund_amount"], occurred_at=now)
        conn.execute("UPDATE oms.customer_return_line SET posting_id = %s WHERE return_id = %s AND line_no = %s",
                     (posted.posting_id, return_id, line["line_no"]))
    _queue_magento(conn, ret, lines)
    notifications.enqueue(conn, "return_received", ret["order_increment_id"],
                          {"return_id": return_id, "store_id": ret["store_id"],
                           "items": [{"sku": x["sku"], "qty": str(x["qty"].normalize())} for x in lines]})
    return True


def marker(return_id: int) -> str:
    return f"[OMS return {return_id}]"


def _queue_magento(conn: psycopg.Connection, ret: dict, lines: list[dict]) -> None:
    """The order comment, and (refund due) the offline credit memo; sent by the
    aftersale_magento_sync DAG, each exactly once (oms.aftersale.magento_sync)."""
    extent = "in full" if order_return_status(conn, ret["order_increment_id"]) == "returned" else "in part"
    where = "in store " + ret["store_id"] if ret["kind"] == "store" else "by reverse pickup to " + ret["store_id"]
    items = ", ".join(f"{x['qty'].normalize()} × {x['sku']} ({x['condition']})" for x in lines)
    text = f"{marker(ret['return_id'])} Returned {extent} {where}: {items}."
    conn.execute(
        """INSERT INTO oms.magento_outbox (kind, dedupe_key, order_entity_id, body, marker)
           VALUES ('comment', %s, %s, %s, %s) ON CONFLICT (dedupe_key) DO NOTHING""",
        (f"comment:return:{ret['return_id']}", ret["order_entity_id"],
         Jsonb({"statusHistory": {"comment": text, "is_customer_notified": 0, "is_visible_on_front": 0}}),
         marker(ret["return_id"])))
    if not ret["refund_due"]:
        return
    qty_by_item: dict[int, Decimal] = {}
    for x in lines:
        qty_by_item[x["magento_item_id"]] = qty_by_item.get(x["magento_item_id"], Decimal(0)) + x["qty"]
    restock_items = sorted({x["magento_item_id"] for x in lines if x["restock"]})
    body = {
        "items": [{"order_item_id": item, "qty": float(qty)} for item, qty in sorted(qty_by_item.items())],
        "notify": False,
        "comment": {"comment": f"{marker(ret['return_id'])} Refund for return {ret['client_return_id']}",
                    "is_visible_on_front": 0},
        "arguments": {"shipping_amount": 0, "adjustment_positive": 0, "adjustment_negative": 0,
                      "extension_attributes": {"return_to_stock_items": restock_items}},
    }
    conn.execute(
        """INSERT INTO oms.magento_outbox (kind, dedupe_key, order_entity_id, body, marker)
           VALUES ('creditmemo', %s, %s, %s, %s) ON CONFLICT (dedupe_key) DO NOTHING""",
        (f"creditmemo:return:{ret['return_id']}", ret["order_entity_id"], Jsonb(body), marker(ret["return_id"])))


def order_return_status(conn: psycopg.Connection, order_increment_id: str) -> str:
    """none | returned_partially | returned: units received back against the units ordered (net
    of cancellations): an order is returned in full when every unit it still has came back."""
    row = conn.execute(
        """SELECT (SELECT coalesce(sum(qty_ordered - qty_canceled), 0) FROM marts.fct_order_lines
                   WHERE increment_id = %(o)s AND requires_fulfilment) AS shipped,
                  (SELECT coalesce(sum(rl.qty), 0) FROM oms.customer_return_line rl
                   JOIN oms.customer_return r USING (return_id)
                   WHERE r.order_increment_id = %(o)s AND r.status = 'received') AS returned""",
        {"o": order_increment_id}).fetchone()
    if row["returned"] == 0:
        return "none"
    return "returned" if row["returned"] >= row["shipped"] else "returned_partially"


def describe(conn: psycopg.Connection, return_id: int) -> dict[str, Any]:
    ret = conn.execute("SELECT * FROM oms.customer_return WHERE return_id = %s", (return_id,)).fetchone()
    lines = conn.execute("SELECT line_no, line_key, sku, qty, condition, restock, refund_amount, posting_id "
                         "FROM oms.customer_return_line WHERE return_id = %s ORDER BY line_no", (return_id,)).fetchall()
    exchange = conn.execute("SELECT exchange_increment_id, lines, routing_outcome, routing_decision_id "
                            "FROM oms.return_exchange WHERE return_id = %s", (return_id,)).fetchone()
    pickup = conn.execute("SELECT reference_number, waybill, courier_partner, status_code, status "
                          "FROM oms.reverse_pickup WHERE return_id = %s", (return_id,)).fetchone()
    return json.loads(json.dumps({
        "return_id": ret["return_id"], "client_return_id": ret["client_return_id"], "kind": ret["kind"],
        "order_increment_id": ret["order_increment_id"], "store_id": ret["store_id"], "status": ret["status"],
        "refund_due": ret["refund_due"], "refund_amount": sum((x["refund_amount"] for x in lines), Decimal(0))
        if ret["refund_due"] else 0, "currency_code": ret["currency_code"],
        "order_return_status": order_return_status(conn, ret["order_increment_id"]),
        "lines": lines, "exchange": exchange, "reverse_pickup": pickup,
        "created_at": ret["created_at"], "received_at": ret["received_at"],
    }, default=str))
