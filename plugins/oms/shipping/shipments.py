"""Shipments (oms.shipment, one row per parcel): Clickpost orders and Magento shipments, each exactly once.

Steps, each its own transaction, each safe to re-run (docs/shipping.md):

1. plan_shipments: an invoiced order (or a routed cash-on-delivery order) with an allocating
   routing decision gets one intent row per shipped location, with the create-order body and
   the recommended courier, before anything is sent. reference_number = order-store-sequence.
   A click & collect transfer whose routing shipment names a courier is a parcel too, from the
   source store to the pickup store (deliver_to_store_id): it never becomes a Magento shipment,
   and its scans dispatch and receive the transfer (oms.shipping.postings).
2. manifest: every intent row is sent to Clickpost with its stored body. 200 and 323 (already
   placed: the answer carries the existing AWB) both make the row 'manifested'. A crash after
   Clickpost answered and before our write leaves the row an intent; the re-run re-sends the same
   body and gets 323 with the same AWB: no second Clickpost order.
3. fetch_labels: the label PDF into the row (served at GET /v1/shipments/{awb}/label).
4. ship_to_magento: before POST /V1/order/{id}/ship, GET /V1/shipments of the order: a shipment
   carrying our AWB as a track means an earlier run shipped and crashed before its write.
0. cancel_superseded (runs first): a parcel whose store task was rejected or superseded (the
   store could not supply it; the order was routed again) is cancelled at Clickpost
   (cancel-order; 200, 600 already cancelled and 202 accepted all end it) and its row becomes
   'cancelled'. The new decision's parcels are then planned by step 1 under references of their
   own (<order>-<store>-<seq>-D<decision>), since Clickpost is idempotent on reference_number.
   A parcel the courier already picked up cannot be cancelled (350): the row keeps its state
   and says why (docs/fulfilment.md).

Rows are locked (FOR UPDATE SKIP LOCKED) while their call is in flight, so two runs never send the
same row at once.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from oms.integrations.clickpost import ClickpostClient, cancelled
from oms.integrations.magento import MagentoApiError, MagentoClient
from oms.publishing.publisher import record_magento_deduction
from oms.shipping import bodies
from oms.shipping.config import ShippingSettings, get_shipping_settings
from oms.shipping.faults import crash_point

log = logging.getLogger(__name__)

READY_SQL = """
WITH latest_order AS (  -- each order's current version: the latest one not in quarantine (sql/012)
    SELECT record_key, entity_id, increment_id, payload
    FROM raw.magento_order_current
    WHERE increment_id IS NOT NULL
),
latest_decision AS (
    SELECT DISTINCT ON (order_increment_id) decision_id, order_increment_id, country_code, outcome, shipments,
           allocations
    FROM oms.routing_decision
    ORDER BY order_increment_id, decision_id DESC
)
SELECT o.record_key, o.entity_id, o.increment_id, o.payload, d.decision_id, d.country_code, d.shipments, d.allocations,
       EXISTS (SELECT 1 FROM oms.shipment s WHERE s.order_increment_id = o.increment_id) AS replanned
FROM latest_order o
JOIN latest_decision d ON d.order_increment_id = o.increment_id
WHERE d.outcome IN ('allocated', 'split', 'pickup_transfer')
  AND coalesce(o.payload ->> 'state', '') IN ('new', 'processing')
  AND (CASE WHEN o.payload ->> 'total_invoiced' ~ '^[0-9]+(\\.[0-9]+)?$'
            THEN (o.payload ->> 'total_invoiced')::numeric ELSE 0 END > 0
       OR (%(cod)s AND o.payload -> 'payment' ->> 'method' = 'cashondelivery'))
  AND NOT EXISTS (SELECT 1 FROM oms.shipment s WHERE s.decision_id = d.decision_id)
  AND (%(only)s::text[] IS NULL OR o.increment_id = ANY (%(only)s::text[]))
ORDER BY o.entity_id
"""

INSERT_SQL = """
INSERT INTO oms.shipment (reference_number, order_increment_id, magento_entity_id, store_id, shipment_no, decision_id,
                          source_code, order_item_ids, line_items, state, api_version, request, courier_partner_id,
                          courier_name, account_code, last_error, deliver_to_store_id)
VALUES (%(reference_number)s, %(order_increment_id)s, %(magento_entity_id)s, %(store_id)s, %(shipment_no)s,
        %(decision_id)s, %(source_code)s, %(order_item_ids)s, %(line_items)s, %(state)s, %(api_version)s,
        %(request)s, %(courier_partner_id)s, %(courier_name)s, %(account_code)s, %(last_error)s,
        %(deliver_to_store_id)s)
ON CONFLICT DO NOTHING
RETURNING shipment_id
"""


@dataclass
class Report:
    planned: int = 0
    not_serviceable: int = 0
    manifested: int = 0
    already_placed: int = 0
    pending: int = 0
    failed: int = 0
    labels: int = 0
    magento_shipped: int = 0
    magento_found: int = 0
    magento_errors: int = 0
    cancelled: int = 0
    cancel_refused: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def _rows(conn: psycopg.Connection, sql: str, params: Any = None) -> list[dict[str, Any]]:
    return conn.cursor(row_factory=dict_row).execute(sql, params).fetchall()


def version_lines(conn: psycopg.Connection, record_keys: list[str]) -> dict[str, dict[int, dict[str, Any]]]:
    """Per order version, its stock lines by item_id: the view raw.magento_order_line (sql/015), the
    one reading of an order's items[], for the versions READY_SQL picked."""
    by_version: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
    for row in _rows(conn, "SELECT * FROM raw.magento_order_line WHERE record_key = ANY(%s)", (record_keys,)):
        by_version[row["record_key"]][row["item_id"]] = row
    return by_version


def _item_id(line_key: str) -> int:
    """fct_order_lines.line_key is '<entity_id>-<item_id>' (Magento's order item id)."""
    return int(str(line_key).rsplit("-", 1)[-1])


# ------------------------------------------------------------------------------------- 0. cancel superseded
SUPERSEDED_SQL = """
SELECT s.shipment_id FROM oms.shipment s
JOIN oms.fulfilment_task t ON t.decision_id = s.decision_id AND t.shipment_no = s.shipment_no
                          AND t.store_id = s.store_id AND t.kind IN ('ship', 'transfer_to_pickup')
WHERE s.state IN ('intent', 'manifested', 'magento_shipped', 'failed') AND t.status IN ('rejected', 'superseded')
ORDER BY s.shipment_id
"""


def cancel_superseded(conn: psycopg.Connection, clickpost: ClickpostClient, *, report: Report | None = None
                      ) -> Report:
    """Cancel at Clickpost the parcels of store tasks that were rejected or superseded."""
    report = report or Report()
    ids = [r["shipment_id"] for r in _rows(conn, SUPERSEDED_SQL)]
    conn.commit()
    for shipment_id in ids:
        with conn.transaction():
            rows = _rows(conn, "SELECT * FROM oms.shipment WHERE shipment_id = %s AND state <> 'cancelled' "
                               "FOR UPDATE SKIP LOCKED", (shipment_id,))
            if not rows:
                continue
            row = rows[0]
            awb, cp_id = row["awb"], row["courier_partner_id"]
            if awb is None and row["state"] == "intent" and row["request"]:
                # sent before a crash, never recorded? Clickpost knows it by reference_number
                found = clickpost.find_order(row["reference_number"])
                if found.status == 200 and isinstance(found.result, dict):
                    awb = found.result.get("waybill")
                    cp_id = found.result.get("courier_partner") or cp_id
            if awb is not None:
                answer = clickpost.cancel_order(awb, cp_id, row["account_code"])
                if not cancelled(answer):
                    conn.execute("UPDATE oms.shipment SET last_error = %s, updated_at = now() WHERE shipment_id = %s",
                                 (f"cancel refused: Clickpost {answer.status}: {answer.message}", shipment_id))
                    report.cancel_refused += 1
                    log.error("parcel %s (%s) of a re-routed order not cancelled: %s %s", row["reference_number"],
                              awb, answer.status, answer.message)
                    continue
            conn.execute("UPDATE oms.shipment SET state = 'cancelled', awb = coalesce(awb, %s), cancelled_at = now(),"
                         " last_error = NULL, updated_at = now() WHERE shipment_id = %s", (awb, shipment_id))
            report.cancelled += 1
    return report


# ------------------------------------------------------------------------------------------------ 1. plan
def plan_shipments(conn: psycopg.Connection, clickpost: ClickpostClient, now: datetime | None = None, *,
                   only: list[str] | None = None, settings: ShippingSettings | None = None,
                   crash_at: str | None = None, report: Report | None = None) -> Report:
    settings = settings or get_shipping_settings()
    report = report or Report()
    now = now or datetime.now(UTC)
    ready = _rows(conn, READY_SQL, {"cod": settings.ship_cod_before_invoice, "only": only})
    conn.commit()
    if not ready:
        return report
    locations = {r["store_id"]: r for r in _rows(conn, "SELECT * FROM ref.location")}
    skus = sorted({str(a["sku"]) for o in ready for a in o["allocations"]})
    weights = {r["sku"]: r["weight_g"] for r in _rows(conn, "SELECT sku, weight_g FROM ref.sku WHERE sku = ANY(%s)",
                                                        (skus,))}
    stock_lines = version_lines(conn, [o["record_key"] for o in ready])
    for order in ready:
        payload = order["payload"]
        is_cod = (payload.get("payment") or {}).get("method") == "cashondelivery"
        per_shipment: dict[int, dict[int, float]] = defaultdict(lambda: defaultdict(float))
        for a in order["allocations"]:
            if a.get("fulfilment", "ship") in ("ship", "transfer_to_pickup"):
                per_shipment[int(a["shipment_no"])][_item_id(a["line_key"])] += float(a["qty"])
        # deliveries, and transfers to the pickup store that travel by courier (routing found a lane)
        shipments = sorted((s for s in order["shipments"] if s.get("fulfilment", "ship") == "ship"
                            or (s.get("fulfilment") == "transfer_to_pickup" and s.get("courier"))),
                           key=lambda s: s["shipment_no"])
        planned = []
        try:
            for s in shipments:
                location = locations.get(s["store_id"])
                if location is None:
                    raise ValueError(f"order {order['increment_id']}: unknown location {s['store_id']}")
                lines = bodies.order_lines(order["increment_id"], stock_lines.get(order["record_key"], {}),
                                           per_shipment[int(s["shipment_no"])], weights, settings)
                drop = None
                if s.get("fulfilment") == "transfer_to_pickup":
                    target = locations.get(s.get("deliver_to_store_id"))
                    if target is None:
                        raise ValueError(f"order {order['increment_id']}: unknown pickup store "
                                         f"{s.get('deliver_to_store_id')}")
                    drop = bodies.store_address(target, settings.default_phone)
                planned.append((s, location, lines, sum(x.unit_value * x.qty for x in lines), drop))
            if any(drop is None for *_, drop in planned):
                bodies.shipping_address(payload)
        except ValueError as exc:   # kept as failed rows with the reason: visible, not retried every run
            for s in shipments:
                _refuse(conn, order, s, locations.get(s["store_id"]), str(exc))
                report.failed += 1
            conn.commit()
            continue
        if not planned:
            continue
        shipping_amount = bodies._f(payload.get("shipping_amount"))
        first_delivery = next((s["shipment_no"] for s, *_, drop in planned if drop is None), None)
        for s, location, lines, goods_value, drop_store in planned:
            # the first delivery carries shipping; a transfer is the platform's own, never cash on delivery
            value = goods_value + (shipping_amount if s["shipment_no"] == first_delivery else 0.0)
            cod = is_cod and drop_store is None
            reference = bodies.reference_number(order["increment_id"], s["store_id"], int(s["shipment_no"]))
            if order["replanned"]:
                # a re-routed order: Clickpost is idempotent on reference_number, so the new
                # decision's parcel needs a reference of its own (the old one may be cancelled)
                reference = f"{reference}-D{order['decision_id']}"
            country = str(order["country_code"]).strip()
            version = 4 if country in settings.v4_countries else 3
            drop = drop_store or bodies.shipping_address(payload)
            length, breadth, height = settings.box_cm
            ask = {"pickup_pincode": bodies.postcode(location.get("postcode"), version),
                   "drop_pincode": bodies.postcode(drop.get("postcode"), version),
                   "order_type": "COD" if cod else "PREPAID", "reference_number": reference,
                   "item": ", ".join(x.sku for x in lines)[:200], "invoice_value": round(value, 3),
                   "delivery_type": "FORWARD", "weight": int(sum(x.weight_g * x.qty for x in lines)),
                   "length": length, "breadth": breadth, "height": height}
            recommended = clickpost.recommend([ask])[0]
            preference = recommended.get("preference_array") or []
            courier = preference[0] if recommended.get("pincode_serviceable", True) and preference else None
            body = bodies.build_body(payload=payload, location=location, lines=lines, reference=reference,
                                     shipment_value=value, is_cod=cod, version=version, courier=courier, now=now,
                                     settings=settings, drop=drop_store)
            row = {
                "reference_number": reference, "order_increment_id": order["increment_id"],
                "magento_entity_id": order["entity_id"], "store_id": s["store_id"],
                "shipment_no": int(s["shipment_no"]), "decision_id": order["decision_id"],
                "source_code": location["magento_source_code"], "order_item_ids": [x.order_item_id for x in lines],
                "line_items": Jsonb([{"order_item_id": x.order_item_id, "sku": x.sku, "qty": x.qty} for x in lines]),
                "state": "intent" if courier else "failed", "api_version": version, "request": Jsonb(body),
                "courier_partner_id": courier and courier.get("cp_id"), "courier_name": courier and courier.get("cp_name"),
                "account_code": courier and courier.get("account_code"),
                "last_error": None if courier else f"not serviceable: no courier for {ask['pickup_pincode']} → "
                                                   f"{ask['drop_pincode']} (recommendation API)",
                "deliver_to_store_id": s.get("deliver_to_store_id") if drop_store is not None else None,
            }
            if conn.execute(INSERT_SQL, row).fetchone():
                report.planned += 1
                report.not_serviceable += 0 if courier else 1
        conn.commit()
        crash_point("after_intent", crash_at)
    return report


def _refuse(conn: psycopg.Connection, order: dict[str, Any], shipment: dict[str, Any],
            location: dict[str, Any] | None, reason: str) -> None:
    reference = bodies.reference_number(order["increment_id"], shipment["store_id"], int(shipment["shipment_no"]))
    conn.execute(INSERT_SQL, {
        "reference_number": f"{reference}-D{order['decision_id']}" if order["replanned"] else reference,
        "order_increment_id": order["increment_id"], "magento_entity_id": order["entity_id"],
        "store_id": shipment["store_id"], "shipment_no": int(shipment["shipment_no"]),
        "decision_id": order["decision_id"], "source_code": (location or {}).get("magento_source_code") or "",
        "order_item_ids": [], "line_items": Jsonb([]), "state": "failed", "api_version": 3, "request": Jsonb({}),
        "courier_partner_id": None, "courier_name": None, "account_code": None, "last_error": reason,
        "deliver_to_store_id": shipment.get("deliver_to_store_id") if shipment.get("fulfilment") == "transfer_to_pickup"
        else None})


# -------------------------------------------------------------------------------------------- 2. manifest
def manifest(conn: psycopg.Connection, clickpost: ClickpostClient, *, crash_at: str | None = None,
             report: Report | None = None) -> Report:
    report = report or Report()
    ids = [r["shipment_id"] for r in _rows(conn, "SELECT shipment_id FROM oms.shipment WHERE state = 'intent' "
                                                  "ORDER BY shipment_id")]
    conn.commit()
    for shipment_id in ids:
        with conn.transaction():
            rows = _rows(conn, "SELECT * FROM oms.shipment WHERE shipment_id = %s AND state = 'intent' "
                               "FOR UPDATE SKIP LOCKED", (shipment_id,))
            if not rows:
                continue
            row = rows[0]
            answer = clickpost.create_order(row["request"], row["api_version"])
            if answer.created:
                crash_point("after_clickpost", crash_at)
                result = answer.result
                conn.execute(
                    """UPDATE oms.shipment SET state = 'manifested', awb = %(awb)s, label_url = %(label)s,
                           security_key = %(key)s, courier_partner_id = coalesce(%(cp_id)s, courier_partner_id),
                           courier_name = coalesce(%(cp_name)s, courier_name), manifested_at = now(),
                           attempts = attempts + 1, last_error = NULL, updated_at = now()
                       WHERE shipment_id = %(id)s""",
                    {"awb": result["waybill"], "label": result.get("label"), "key": result.get("security_key"),
                     "cp_id": result.get("courier_partner_id"), "cp_name": result.get("courier_name"),
                     "id": shipment_id})
                report.manifested += 1
                report.already_placed += answer.status == 323
            elif answer.status in (202, 102):
                conn.execute("UPDATE oms.shipment SET attempts = attempts + 1, last_error = %s, updated_at = now() "
                             "WHERE shipment_id = %s", (f"Clickpost {answer.status}: {answer.message}", shipment_id))
                report.pending += 1
            else:
                conn.execute("UPDATE oms.shipment SET state = 'failed', attempts = attempts + 1, last_error = %s, "
                             "updated_at = now() WHERE shipment_id = %s",
                             (f"Clickpost {answer.status}: {answer.message}", shipment_id))
                report.failed += 1
                log.error("shipment %s refused by Clickpost: %s %s", row["reference_number"], answer.status,
                          answer.message)
    return report


# ---------------------------------------------------------------------------------------------- 3. labels
def fetch_labels(conn: psycopg.Connection, clickpost: ClickpostClient, *, report: Report | None = None) -> Report:
    """Label PDFs into oms.shipment; a label that cannot be fetched now is tried on the next run."""
    report = report or Report()
    rows = _rows(conn, "SELECT shipment_id, awb, label_url, courier_partner_id FROM oms.shipment "
                       "WHERE awb IS NOT NULL AND label_pdf IS NULL ORDER BY shipment_id")
    conn.commit()
    for row in rows:
        try:
            url = row["label_url"] or clickpost.label_url(row["awb"], row["courier_partner_id"])
            if not url:
                continue
            response = clickpost.download(url)
            if response.status_code != 200 or not response.content.startswith(b"%PDF"):
                log.warning("label of %s: %s answered %s", row["awb"], url, response.status_code)
                continue
        except Exception as exc:  # noqa: BLE001 - a label is retried on the next run, shipping goes on
            log.warning("label of %s not fetched: %s", row["awb"], exc)
            continue
        conn.execute("UPDATE oms.shipment SET label_pdf = %s, label_url = %s, label_fetched_at = now(), "
                     "updated_at = now() WHERE shipment_id = %s", (response.content, url, row["shipment_id"]))
        conn.commit()
        report.labels += 1
    return report


# ------------------------------------------------------------------------------------- 4. Magento shipment
def ship_body(row: dict[str, Any], settings: ShippingSettings) -> dict[str, Any]:
    return {
        "items": [{"order_item_id": i["order_item_id"], "qty": i["qty"]} for i in row["line_items"]],
        "notify": True,
        "appendComment": True,
        "comment": {"comment": f"Shipped from {row['store_id']} with {row['courier_name'] or 'Clickpost'}, "
                               f"AWB {row['awb']} (reference {row['reference_number']}).", "is_visible_on_front": 1},
        "tracks": [{"track_number": row["awb"], "title": row["courier_name"] or "Clickpost",
                    "carrier_code": settings.carrier_code}],
        "packages": [],
        "arguments": {"extension_attributes": {"source_code": row["source_code"]}},
    }


def existing_magento_shipment(magento: MagentoClient, entity_id: int, awb: str) -> int | None:
    for shipment in magento.shipments_of_order(entity_id):
        if any(str(t.get("track_number")) == awb for t in shipment.get("tracks") or []):
            return int(shipment["entity_id"])
    return None


def _replaced_magento_shipment(conn: psycopg.Connection, row: dict[str, Any]) -> int | None:
    """The Magento shipment of a cancelled parcel of the same order carrying the same items."""
    found = _rows(conn, "SELECT magento_shipment_id FROM oms.shipment WHERE order_increment_id = %s"
                        " AND state = 'cancelled' AND magento_shipment_id IS NOT NULL AND order_item_ids && %s::bigint[]"
                        " ORDER BY shipment_id LIMIT 1", (row["order_increment_id"], row["order_item_ids"]))
    return found[0]["magento_shipment_id"] if found else None


def ship_to_magento(conn: psycopg.Connection, magento: MagentoClient, *, settings: ShippingSettings | None = None,
                    crash_at: str | None = None, report: Report | None = None) -> Report:
    settings = settings or get_shipping_settings()
    report = report or Report()
    # a transfer's parcel goes to the pickup store: Magento ships those items at the pickup's `ready`
    ids = [r["shipment_id"] for r in _rows(conn, "SELECT shipment_id FROM oms.shipment WHERE state = 'manifested' "
                                                  "AND deliver_to_store_id IS NULL ORDER BY shipment_id")]
    conn.commit()
    for shipment_id in ids:
        with conn.transaction():
            rows = _rows(conn, "SELECT * FROM oms.shipment WHERE shipment_id = %s AND state = 'manifested' "
                               "AND deliver_to_store_id IS NULL FOR UPDATE SKIP LOCKED", (shipment_id,))
            if not rows:
                continue
            row = rows[0]
            crash_point("after_awb_write", crash_at)
            try:
                magento_id = existing_magento_shipment(magento, row["magento_entity_id"], row["awb"])
                found = magento_id is not None
                replaced = _replaced_magento_shipment(conn, row) if magento_id is None else None
                if replaced is not None:
                    # Magento already counts these items shipped (the cancelled parcel's shipment;
                    # its REST API cannot delete one): the new AWB becomes a track of that shipment
                    magento.add_track(row["magento_entity_id"], replaced, row["awb"],
                                      row["courier_name"] or "Clickpost", settings.carrier_code)
                    magento_id = replaced
                elif magento_id is None:
                    magento_id = magento.ship(row["magento_entity_id"], ship_body(row, settings))
                    crash_point("after_magento_ship", crash_at)
            except MagentoApiError as exc:
                if exc.http_status >= 500:
                    raise
                conn.execute("UPDATE oms.shipment SET last_error = %s, attempts = attempts + 1, updated_at = now() "
                             "WHERE shipment_id = %s", (exc.message, shipment_id))
                report.magento_errors += 1
                log.error("Magento refused the shipment %s: %s", row["reference_number"], exc.message)
                continue
            conn.execute("UPDATE oms.shipment SET state = 'magento_shipped', magento_shipment_id = %s, "
                         "magento_shipped_at = now(), last_error = NULL, updated_at = now() WHERE shipment_id = %s",
                         (magento_id, shipment_id))
            record_magento_deduction(conn, row["source_code"], row["line_items"])
            report.magento_found += found
            report.magento_shipped += not found
    return report


def run(conn: psycopg.Connection, clickpost: ClickpostClient, magento: MagentoClient,
        now: datetime | None = None, *, only: list[str] | None = None, crash_at: str | None = None,
        settings: ShippingSettings | None = None) -> Report:
    """Every step in order (the DAG runs them as separate tasks)."""
    report = Report()
    cancel_superseded(conn, clickpost, report=report)
    plan_shipments(conn, clickpost, now, only=only, settings=settings, crash_at=crash_at, report=report)
    manifest(conn, clickpost, crash_at=crash_at, report=report)
    fetch_labels(conn, clickpost, report=report)
    ship_to_magento(conn, magento, settings=settings, crash_at=crash_at, report=report)
    return report
