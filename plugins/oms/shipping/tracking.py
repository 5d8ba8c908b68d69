"""Clickpost tracking: webhook deliveries and updated-order feed rows become deduplicated scans,
and each shipment's Magento milestones are pushed exactly once.

* normalise(): one delivery or feed row → its scans. A webhook's outer fields are the scan that
  triggered it; additional.latest_status is the latest scan Clickpost knew of at send time, so it
  is recorded too (a missed webhook is caught by the next one). Timestamps: ISO with Z/offset as
  given; naive ones are IST (Clickpost's documented zone), contracts §2.6.
* oms.record_shipment_event (sql/008) inserts a scan once per (waybill, status code, timestamp)
  and recomputes the shipment's latest status as the max by (timestamp, code) over its scans: the
  result does not depend on arrival order or duplicates.
* push_to_magento(): per shipment and milestone (shipped, out for delivery, delivered, failed
  delivery with the NDR reason, RTO, …) one order comment, with a marker, exactly once: an intent
  row first, then the order's comments are searched for the marker before posting.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import psycopg
from psycopg.rows import dict_row

from oms import notifications
from oms.aftersale import rvp
from oms.integrations.magento import MagentoClient
from oms.shipping.config import ShippingSettings, get_shipping_settings

log = logging.getLogger(__name__)
IST = timezone(timedelta(hours=5, minutes=30))

# Milestones the customer hears about (oms.notifications events of the same names).
CUSTOMER_EVENTS = frozenset({"shipped", "out_for_delivery", "delivered"})
RTO_DELIVERED = 14

# Clickpost status code → (milestone, comment text); codes absent here change nothing in Magento.
MILESTONES: dict[int, tuple[str, str]] = {
    4: ("shipped", "Shipped: picked up by the courier"),
    5: ("shipped", "Shipped: in transit"),
    18: ("delayed", "Shipment delayed"),
    6: ("out_for_delivery", "Out for delivery"),
    8: ("delivered", "Delivered"),
    9: ("failed_delivery", "Delivery attempt failed"),
    7: ("failed_delivery", "Delivery failed: area not serviceable"),
    10: ("cancelled", "Shipment cancelled at the courier"),
    11: ("rto", "Returning to origin (RTO)"),
    12: ("rto", "Returning to origin (RTO)"),
    13: ("rto", "Returning to origin (RTO)"),
    15: ("rto", "Returning to origin (RTO)"),
    21: ("rto", "Returning to origin (RTO)"),
    26: ("rto", "Returning to origin (RTO)"),
    27: ("rto", "Returning to origin (RTO)"),
    14: ("rto_delivered", "Returned to origin (RTO delivered)"),
    16: ("lost", "Shipment lost by the courier"),
    17: ("damaged", "Shipment damaged"),
}
NDR_REASONS = {0: "Unknown Exception", 1: "Customer Unavailable", 2: "Rejected by Customer", 3: "Delivery Rescheduled",
               4: "No Attempt", 5: "Customer Unreachable", 6: "Address Issue", 7: "Payment Issue",
               8: "Out Of Delivery Area", 9: "Order Already Cancelled", 10: "Self Collect",
               11: "Shipment Seized By Customer", 12: "Customer wants open delivery",
               13: "Shipment Misrouted by logistics partner"}


class BadEvent(ValueError):
    """A delivery that cannot be read as a scan (kept raw with this reason)."""


@dataclass(frozen=True)
class Scan:
    waybill: str
    code: int
    at: datetime
    description: str | None = None
    remark: str | None = None
    location: str | None = None
    ndr_code: int | None = None
    ndr_reason: str | None = None


def parse_timestamp(value: Any) -> datetime:
    if not isinstance(value, str) or not value.strip():
        raise BadEvent(f"timestamp missing or not a string: {value!r}")
    text = value.strip().replace(" ", "T", 1)
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadEvent(f"timestamp not ISO-8601: {value!r}") from exc
    return (moment if moment.tzinfo else moment.replace(tzinfo=IST)).astimezone(UTC)


def _code(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise BadEvent(f"clickpost_status_code is not a number: {value!r}") from exc


def _scan(waybill: str, fields: dict[str, Any], ndr: dict[str, Any] | None = None) -> Scan:
    ndr = ndr or {}
    ndr_code = ndr.get("ndr_status_code")
    try:
        ndr_code = int(ndr_code) if ndr_code is not None else None
    except (TypeError, ValueError):
        ndr_code = None
    return Scan(waybill=waybill, code=_code(fields.get("clickpost_status_code")),
                at=parse_timestamp(fields.get("timestamp")),
                description=fields.get("clickpost_status_description"), remark=fields.get("remark"),
                location=fields.get("location"), ndr_code=ndr_code,
                ndr_reason=ndr.get("ndr_status_description") or (NDR_REASONS.get(ndr_code) if ndr_code is not None
                                                                  else None))


def normalise(payload: Any) -> list[Scan]:
    """The scans of a webhook body or an updated-order row (unknown fields are ignored)."""
    if not isinstance(payload, dict):
        raise BadEvent("body is not a JSON object")
    waybill = str(payload.get("waybill") or "").strip()
    if not waybill:
        raise BadEvent("waybill missing (a returns-platform event without AWB is not a shipment scan)")
    additional = payload.get("additional") if isinstance(payload.get("additional"), dict) else {}
    scans = [_scan(waybill, payload, additional)]
    latest = additional.get("latest_status")
    if isinstance(latest, dict) and latest.get("clickpost_status_code") is not None and latest.get("timestamp"):
        try:
            scans.append(_scan(waybill, latest))
        except BadEvent as exc:
            log.warning("webhook for %s: latest_status ignored: %s", waybill, exc)
    return scans


RECORD_SQL = "SELECT oms.record_shipment_event(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) AS new"
RAW_SQL = "INSERT INTO raw.clickpost_webhook (source, body, payload, error) VALUES (%s, %s, %s, %s) RETURNING delivery_id"


def record_params(scan: Scan, source: str, delivery_id: int | None) -> tuple:
    return (scan.waybill, scan.code, scan.at, scan.description, scan.remark, scan.location, scan.ndr_code,
            scan.ndr_reason, source, delivery_id)


def record_delivery(conn: psycopg.Connection, body: str, source: str = "webhook") -> tuple[int, int]:
    """Store one delivery raw, then its scans. Returns (delivery_id, new scans). Bad input is kept
    raw with the reason and raises BadEvent after the row is stored (the caller commits)."""
    try:
        payload = json.loads(body)
    except ValueError as exc:
        conn.execute(RAW_SQL, (source, body, None, f"invalid JSON: {exc}"))
        raise BadEvent(f"invalid JSON: {exc}") from exc
    try:
        scans = normalise(payload)
    except BadEvent as exc:
        conn.execute(RAW_SQL, (source, body, json.dumps(payload), str(exc)))
        raise
    delivery_id = conn.execute(RAW_SQL, (source, body, json.dumps(payload), None)).fetchone()
    delivery_id = delivery_id["delivery_id"] if isinstance(delivery_id, dict) else delivery_id[0]
    new = 0
    for scan in scans:
        row = conn.execute(RECORD_SQL, record_params(scan, source, delivery_id)).fetchone()
        new += bool(row["new"] if isinstance(row, dict) else row[0])
    return delivery_id, new


def read_feed(conn: psycopg.Connection, clickpost, start: datetime, end: datetime) -> dict[str, int]:
    """The backstop: Clickpost's updated-order feed over [start, end) in windows of ≤ 30 minutes,
    through the same raw store and dedupe as the webhooks."""
    counts = {"rows": 0, "new_scans": 0, "bad": 0}
    cursor = start
    while cursor < end:
        window_end = min(cursor + timedelta(minutes=30), end)
        for row in clickpost.updated_orders(cursor, window_end):
            counts["rows"] += 1
            try:
                counts["new_scans"] += record_delivery(conn, json.dumps(row), "feed")[1]
            except BadEvent:
                counts["bad"] += 1
        conn.commit()
        cursor = window_end
    return counts


# ---------------------------------------------------------------------------------------- Magento push
PENDING_SQL = """
SELECT s.shipment_id, s.reference_number, s.order_increment_id, s.magento_entity_id, s.awb, s.courier_name,
       s.request -> 'drop_info' AS drop_info,
       s.status_code AS current_code,
       e.status_code, e.status_at, e.remark, e.location, e.ndr_status_code, e.ndr_reason
FROM oms.shipment s
JOIN oms.shipment_event e ON e.waybill = s.awb
WHERE s.state = 'magento_shipped'
ORDER BY s.shipment_id, e.status_at, e.status_code
"""


def _contact(increment_id: str, drop: dict[str, Any]) -> dict[str, Any]:
    """Who the parcel goes to, from the create-order body we sent Clickpost (v3 drop_* or v4 keys):
    the person the courier will call is the one to tell."""
    return {"increment_id": increment_id, "name": drop.get("drop_name") or drop.get("name"),
            "email": drop.get("drop_email") or drop.get("email"),
            "telephone": drop.get("drop_phone") or drop.get("phone"),
            "country_code": drop.get("drop_country") or drop.get("country_code")}


def _plan_pushes(conn: psycopg.Connection, settings: ShippingSettings) -> list[dict[str, Any]]:
    """Per shipment, each milestone at its first scan, not yet pushed; in scan order."""
    rows = conn.cursor(row_factory=dict_row).execute(PENDING_SQL).fetchall()
    pushed = {(r["shipment_id"], r["milestone"]) for r in conn.cursor(row_factory=dict_row).execute(
        "SELECT shipment_id, milestone FROM oms.shipment_magento_push WHERE state = 'pushed'").fetchall()}
    delivered_orders = {r["order_increment_id"]: r["all_delivered"] for r in conn.cursor(row_factory=dict_row).execute(
        "SELECT order_increment_id, bool_and(status_code = 8) AS all_delivered FROM oms.shipment "
        "WHERE state <> 'failed' AND deliver_to_store_id IS NULL GROUP BY order_increment_id").fetchall()}
    seen: set[tuple[int, str]] = set()
    plans = []
    for r in rows:
        if r["status_code"] not in MILESTONES:
            continue
        milestone, text = MILESTONES[r["status_code"]]
        key = (r["shipment_id"], milestone)
        if key in seen or key in pushed:
            continue
        seen.add(key)
        marker = f"[oms:{r['reference_number']}:{milestone}]"
        detail = f"{text} — {r['courier_name'] or 'courier'} AWB {r['awb']}"
        if r["status_code"] == 9 and (r["ndr_reason"] or r["remark"]):
            detail += f". Reason: {r['ndr_reason'] or r['remark']}"
        if r["location"]:
            detail += f" ({r['location']})"
        detail += f" at {r['status_at'].astimezone(UTC):%Y-%m-%d %H:%M} UTC. {marker}"
        status = None
        if r["current_code"] == r["status_code"]:   # only the shipment's latest status sets the order status
            if milestone == "delivered" and delivered_orders.get(r["order_increment_id"]):
                status = settings.delivered_status
            elif milestone in ("rto", "rto_delivered"):
                status = settings.rto_status
        plans.append({"shipment_id": r["shipment_id"], "milestone": milestone, "status_code": r["status_code"],
                      "status_at": r["status_at"], "marker": marker, "comment": detail, "order_status": status,
                      "entity_id": r["magento_entity_id"], "order_increment_id": r["order_increment_id"],
                      "awb": r["awb"], "courier": r["courier_name"], "drop_info": r["drop_info"] or {}})
    return plans


def push_to_magento(conn: psycopg.Connection, magento: MagentoClient, *,
                    settings: ShippingSettings | None = None) -> dict[str, int]:
    settings = settings or get_shipping_settings()
    counts = {"pushed": 0, "found": 0}
    for plan in _plan_pushes(conn, settings):
        new = conn.execute(
            """INSERT INTO oms.shipment_magento_push (shipment_id, milestone, status_code, status_at, marker, comment,
                                                      order_status)
               VALUES (%(shipment_id)s, %(milestone)s, %(status_code)s, %(status_at)s, %(marker)s, %(comment)s,
                       %(order_status)s)
               ON CONFLICT (shipment_id, milestone) DO NOTHING RETURNING 1""", plan).fetchone()
        if new and plan["milestone"] in CUSTOMER_EVENTS:
            # Same transaction as the push intent: queued once per (event, order, channel) by
            # the outbox's key, however often this runs (docs/notifications.md).
            notifications.enqueue(conn, plan["milestone"], _contact(plan["order_increment_id"], plan["drop_info"]), {
                "awb": plan["awb"], "courier": plan["courier"],
                "tracking_url": settings.tracking_url_template.format(awb=plan["awb"],
                                                                      order=plan["order_increment_id"])})
    conn.commit()
    intents = conn.cursor(row_factory=dict_row).execute(
        """SELECT p.*, s.magento_entity_id FROM oms.shipment_magento_push p
           JOIN oms.shipment s USING (shipment_id) WHERE p.state = 'intent' ORDER BY p.status_at, p.shipment_id"""
    ).fetchall()
    conn.commit()
    for intent in intents:
        with conn.transaction():
            locked = conn.execute(
                "SELECT 1 FROM oms.shipment_magento_push WHERE shipment_id = %s AND milestone = %s AND state = 'intent' "
                "FOR UPDATE SKIP LOCKED", (intent["shipment_id"], intent["milestone"])).fetchone()
            if not locked:
                continue
            existing = any(intent["marker"] in str(c.get("comment") or "")
                           for c in magento.comments(intent["magento_entity_id"]))
            if not existing:
                # Magento e-mails the customer only where the channel setting leaves this event to
                # it; otherwise the platform's own notification (queued above) is the one sent.
                magento.add_comment(intent["magento_entity_id"], intent["comment"], intent["order_status"],
                                    notify=intent["milestone"] in CUSTOMER_EVENTS
                                    and notifications.magento_notify(conn, intent["milestone"]))
            conn.execute("UPDATE oms.shipment_magento_push SET state = 'pushed', pushed_at = now() "
                         "WHERE shipment_id = %s AND milestone = %s", (intent["shipment_id"], intent["milestone"]))
            counts["found" if existing else "pushed"] += 1
    return counts


RTO_DUE_SQL = """
SELECT s.awb, s.order_increment_id, s.store_id, s.line_items
FROM oms.shipment s
WHERE EXISTS (SELECT 1 FROM oms.shipment_event e WHERE e.waybill = s.awb AND e.status_code = %(rto_delivered)s)
  AND s.deliver_to_store_id IS NULL     -- a transfer that comes back was never sold: its task says where it is
  AND NOT EXISTS (SELECT 1 FROM oms.sales_posting p
                  WHERE p.posting_type = 'return_restock' AND p.source_ref = 'rto:' || s.awb)
ORDER BY s.shipment_id
"""

RVP_DUE_SQL = """
SELECT r.waybill, e.status_code, e.status_description
FROM oms.reverse_pickup r
JOIN LATERAL (SELECT status_code, status_description FROM oms.shipment_event
              WHERE waybill = r.waybill ORDER BY status_at DESC, status_code DESC LIMIT 1) e ON true
WHERE r.waybill IS NOT NULL AND r.status_code IS DISTINCT FROM e.status_code
"""


def settle_returns(conn: psycopg.Connection) -> dict[str, int]:
    """What tracking scans mean for stock and returns, each at most once:
    - a forward shipment delivered back to its origin (RTO delivered, status 14) puts its units back
      on that location's shelf (aftersale.rvp.restock_rto, keyed rto:<awb>);
    - a reverse pickup's latest scan moves the return on; delivered to the store (8) receives it
      (aftersale.rvp.pickup_status)."""
    counts = {"rto_restocked": 0, "reverse_pickups_updated": 0}
    for row in conn.cursor(row_factory=dict_row).execute(RTO_DUE_SQL, {"rto_delivered": RTO_DELIVERED}).fetchall():
        with conn.transaction():
            keys = {r["item_id"]: r["line_key"] for r in conn.cursor(row_factory=dict_row).execute(
                "SELECT item_id, line_key FROM marts.fct_order_lines WHERE increment_id = %s",
                (row["order_increment_id"],))}
            lines = [{"line_key": keys[int(i["order_item_id"])], "qty": i["qty"]}
                     for i in row["line_items"] if int(i["order_item_id"]) in keys]
            rvp.restock_rto(conn, row["awb"], row["order_increment_id"], row["store_id"], lines or None)
        counts["rto_restocked"] += 1
    for row in conn.cursor(row_factory=dict_row).execute(RVP_DUE_SQL).fetchall():
        with conn.transaction():
            rvp.pickup_status(conn, row["waybill"], row["status_code"], row["status_description"])
        counts["reverse_pickups_updated"] += 1
    return counts
