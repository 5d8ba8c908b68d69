"""Sending oms.magento_outbox to Magento: order comments, offline credit memos, order
cancellations and click & collect shipments, each once.

Magento's refund and comment calls take no idempotency key, so exactly-once comes from a marker:
every document we create carries ``[OMS return <id>]`` in its comment, and before each POST the
sender looks in Magento for a document with that marker (the order's comments; the order's
credit memos and their comments). Found → it was created by an earlier attempt whose record was
lost (crash after the POST, task retry): record it, do not POST again. A POST Magento refuses
with a validation error (HTTP 400) is final ('failed', with Magento's message) and goes to
people; a network error or 5xx is retried at the next run.

A cancellation is looked for as the order's state ('canceled' = done before); a click & collect
shipment as a shipment of the order whose comment carries the marker.

One 400 is not final: a click & collect shipment Magento refuses because the pickup store's source
does not hold the units yet ("Not all of your products are available in the requested quantity.":
MSI's source deduction) — a transfer received, or an order routed, since the last stock publish.
The next publish puts them there, so the row stays pending and is sent again at the next run, up
to SHIP_STOCK_ATTEMPTS attempts; then it fails like any other refusal.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import psycopg
from psycopg.types.json import Jsonb

from oms import notifications
from oms.integrations.magento import MagentoClient
from oms.warehouse import connect

log = logging.getLogger(__name__)

# Magento's answer when a source's quantity does not cover a shipment (SourceDeductionService).
NOT_IN_SOURCE = "Not all of your products are available in the requested quantity."
SHIP_STOCK_ATTEMPTS = 24   # two hours at the DAG's 5-minute cadence


def enqueue(conn: psycopg.Connection, kind: str, dedupe_key: str, entity_id: int, body: dict[str, Any],
            marker: str) -> bool:
    """Queue one Magento document (sent by the aftersale_magento_sync DAG); True when new."""
    row = conn.execute(
        """INSERT INTO oms.magento_outbox (kind, dedupe_key, order_entity_id, body, marker)
           VALUES (%s, %s, %s, %s, %s) ON CONFLICT (dedupe_key) DO NOTHING RETURNING outbox_id""",
        (kind, dedupe_key, entity_id, Jsonb(body), marker)).fetchone()
    return row is not None


def order_entity_id(conn: psycopg.Connection, increment_id: str) -> int | None:
    """Magento's entity_id of a landed order (None for an order Magento does not have, e.g. an exchange)."""
    row = conn.execute("SELECT entity_id FROM raw.magento_order_current WHERE increment_id = %s"
                       " ORDER BY updated_at DESC LIMIT 1", (increment_id,)).fetchone()
    return None if row is None else int(row["entity_id"])


def comment_body(text: str, *, visible: bool = False, notify: bool = False, status: str | None = None) -> dict:
    history: dict[str, Any] = {"comment": text, "is_customer_notified": int(notify),
                               "is_visible_on_front": int(visible)}
    if status:
        history["status"] = status
    return {"statusHistory": history}


def _record(dsn: str, row: dict, status: str, ref: str | None, error: str | None) -> None:
    with connect(dsn) as conn:
        conn.execute("UPDATE oms.magento_outbox SET status = %s, magento_ref = %s, last_error = %s, "
                     "done_at = CASE WHEN %s = 'done' THEN now() END WHERE outbox_id = %s",
                     (status, ref, error, status, row["outbox_id"]))
        if status == "done" and row["kind"] == "creditmemo":
            _refund_issued(conn, row)


def _refund_issued(conn, row: dict) -> None:
    ret = conn.execute(
        """SELECT r.return_id, r.order_increment_id, r.currency_code, sum(l.refund_amount) AS amount
           FROM oms.customer_return r JOIN oms.customer_return_line l USING (return_id)
           WHERE 'creditmemo:return:' || r.return_id = %s GROUP BY r.return_id""", (row["dedupe_key"],)).fetchone()
    if ret is not None:
        notifications.enqueue(conn, "refund_issued", ret["order_increment_id"],
                              {"return_id": ret["return_id"], "refund_amount": f"{ret['amount']:.2f}",
                               "currency": ret["currency_code"]})


def send_pending(dsn: str, client: MagentoClient, after_post: Callable[[dict], None] | None = None) -> dict[str, int]:
    """Send every pending outbox row, oldest first; after_post is a test hook (crash after POST)."""
    with connect(dsn) as conn:
        rows = conn.execute("SELECT * FROM oms.magento_outbox WHERE status = 'pending' ORDER BY outbox_id").fetchall()
    counts = {"done": 0, "found": 0, "failed": 0, "retry": 0}
    for row in rows:
        with connect(dsn) as conn:  # one sender per row at a time
            locked = conn.execute("SELECT 1 FROM oms.magento_outbox WHERE outbox_id = %s AND status = 'pending' "
                                  "FOR UPDATE SKIP LOCKED", (row["outbox_id"],)).fetchone()
            if locked is None:
                continue
            conn.execute("UPDATE oms.magento_outbox SET attempts = attempts + 1 WHERE outbox_id = %s",
                         (row["outbox_id"],))
            try:
                if row["kind"] == "comment":
                    existing = "comment" if client.has_comment_with(row["order_entity_id"], row["marker"]) else None
                elif row["kind"] == "cancel":
                    existing = "canceled" if client.order_state(row["order_entity_id"]) == "canceled" else None
                elif row["kind"] == "ship":
                    found = client.shipment_with(row["order_entity_id"], row["marker"])
                    existing = None if found is None else str(found)
                else:
                    memo = client.creditmemo_with(row["order_entity_id"], row["marker"])
                    existing = None if memo is None else str(memo)
                if existing is not None:
                    log.info("outbox %s (%s) found in Magento as %s", row["outbox_id"], row["dedupe_key"], existing)
                    counts["found"] += 1
                    conn.commit()
                    _record(dsn, row, "done", existing, None)
                    continue
                response = client.post_order_document(row["kind"], row["order_entity_id"], row["body"])
            except httpx.HTTPError as exc:
                log.warning("outbox %s (%s): %s, retried next run", row["outbox_id"], row["dedupe_key"], exc)
                counts["retry"] += 1
                conn.execute("UPDATE oms.magento_outbox SET last_error = %s WHERE outbox_id = %s",
                             (f"{type(exc).__name__}: {exc}", row["outbox_id"]))
                continue
        log.info("outbox %s (%s) posted: HTTP %s", row["outbox_id"], row["dedupe_key"], response.status_code)
        if after_post is not None:
            after_post(row)
        if response.status_code == 200 and row["kind"] == "cancel" and response.json() is not True:
            # Magento answers false when Order::canCancel() says no (invoiced in full, complete…)
            _record(dsn, row, "failed", None, "Magento refused the cancellation (the order cannot be cancelled)")
            counts["failed"] += 1
        elif response.status_code == 200:
            ref = {"comment": "comment", "cancel": "canceled"}.get(row["kind"]) or str(response.json())
            _record(dsn, row, "done", ref, None)
            counts["done"] += 1
        elif (row["kind"] == "ship" and response.status_code == 400 and NOT_IN_SOURCE in response.text
              and row["attempts"] + 1 < SHIP_STOCK_ATTEMPTS):
            # the units reach the pickup store's source with the next stock publish
            with connect(dsn) as conn:
                conn.execute("UPDATE oms.magento_outbox SET last_error = %s WHERE outbox_id = %s",
                             (f"Magento 400: {response.text[:300]} (sent again after the next stock publish)",
                              row["outbox_id"]))
            counts["retry"] += 1
        elif 400 <= response.status_code < 500 and response.status_code not in (401, 408, 429):
            _record(dsn, row, "failed", None, f"Magento {response.status_code}: {response.text[:500]}")
            counts["failed"] += 1
        else:
            with connect(dsn) as conn:
                conn.execute("UPDATE oms.magento_outbox SET last_error = %s WHERE outbox_id = %s",
                             (f"Magento {response.status_code}: {response.text[:300]}", row["outbox_id"]))
            counts["retry"] += 1
    return counts
