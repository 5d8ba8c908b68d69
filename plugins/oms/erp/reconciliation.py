"""ERP ↔ platform stock reconciliation, run daily by the erp_reconciliation DAG (oms.tasks.erp_reconciliation).

For every (store, SKU) the ERP or the platform knows, compare the ERP's on hand now (a full read
of its locationInventory) with what the platform expects it to be:

    expected = live on hand (last snapshot + accepted ERP movements since, oms.atp_store_live)
               − units of shipment / collection postings the ERP has not settled by its own sale
               + units of restocked returns it has not settled by its own return receipt

Each difference is recorded in oms.erp_reconciliation with its likely cause:

- unacknowledged_posting: the difference is exactly the pending postings' units and some of them
  are not acknowledged: the ERP has not processed what the platform sent it;
- missing_movement: the ERP changed the row after the snapshot and no movement the platform
  accepted since explains it: the ERP changed stock without pushing the movement;
- unexplained: anything else (a count, a lost posting, …): for people.

The run also counts postings unacknowledged for longer than OMS_POSTING_ACK_STALE_HOURS (24) and,
when there are any, raises an alert (oms.alerting, kind 'condition', once per run).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from oms import alerting
from oms.warehouse import connect

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

PLATFORM_SQL = """
SELECT l.store_id, l.sku, l.on_hand_qty, l.snapshot_as_of,
       coalesce(p.pending, 0) AS pending, coalesce(p.unacked, 0) AS unacked, p.oldest_unacked_at,
       coalesce(m.moved, 0) AS moved
FROM oms.atp_store_live(%(skus)s) l
LEFT JOIN LATERAL (
    SELECT sum(CASE WHEN sp.posting_type IN ('return_restock', 'transfer_in') THEN -(sp.qty - sp.erp_settled_qty)
                    ELSE sp.qty - sp.erp_settled_qty END) AS pending,
           count(*) FILTER (WHERE sp.acked_at IS NULL) AS unacked,
           min(sp.created_at) FILTER (WHERE sp.acked_at IS NULL) AS oldest_unacked_at
    FROM oms.sales_posting sp
    WHERE sp.store_id = l.store_id AND sp.sku = l.sku AND sp.erp_settled_qty < sp.qty
) p ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS moved FROM oms.erp_movement m
    WHERE m.store_id = l.store_id AND m.sku = l.sku AND m.posted_at > coalesce(l.snapshot_as_of, '-infinity')
) m ON true
"""

STALE_SQL = """
SELECT count(*) AS n, min(created_at) AS oldest FROM oms.sales_posting
WHERE acked_at IS NULL AND created_at < %s
"""


def stale_after() -> timedelta:
    return timedelta(hours=float(os.environ.get("OMS_POSTING_ACK_STALE_HOURS", "24")))


def erp_stock(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], tuple[Decimal, datetime | None]]:
    """The ERP's on hand per (store, SKU) from locationInventory rows (variants summed)."""
    out: dict[tuple[str, str], tuple[Decimal, datetime | None]] = {}
    for row in rows:
        store, sku = str(row.get("locationCode") or "").strip(), str(row.get("itemNumber") or "").strip()
        try:
            qty = Decimal(str(row.get("inventory")))
        except ArithmeticError:
            continue  # a bad row is the ingest's quarantine business, not a stock difference
        if not store or not sku or not qty.is_finite():
            continue
        try:
            modified = datetime.fromisoformat(str(row.get("lastModifiedDateTime")).replace("Z", "+00:00"))
        except ValueError:
            modified = None
        before, seen = out.get((store, sku), (Decimal(0), None))
        out[(store, sku)] = (before + qty, max(filter(None, (seen, modified)), default=None))
    return out


def classify(diff: Decimal, pending: Decimal, unacked: int, erp_modified_at: datetime | None,
             snapshot_as_of: datetime | None, moved: int) -> str:
    if unacked and diff == pending:
        return "unacknowledged_posting"
    if erp_modified_at is not None and (snapshot_as_of is None or erp_modified_at > snapshot_as_of) and not moved:
        return "missing_movement"
    return "unexplained"


def reconcile(conn: psycopg.Connection, erp_rows: Iterable[dict[str, Any]], run_date: date,
              now: datetime) -> dict[str, Any]:
    erp = erp_stock(erp_rows)
    known_stores = {r["store_id"] for r in conn.execute("SELECT store_id FROM ref.location")}
    known_skus = {r["sku"] for r in conn.execute("SELECT sku FROM ref.sku")}
    skus = sorted({sku for (_, sku) in erp} & known_skus)
    platform = {(r["store_id"], r["sku"]): r for r in conn.execute(PLATFORM_SQL, {"skus": skus}).fetchall()}
    found = []
    pairs = {k for k in erp if k[0] in known_stores and k[1] in known_skus} | set(platform)
    for key in sorted(pairs):
        erp_qty, modified = erp.get(key, (Decimal(0), None))
        p = platform.get(key)
        on_hand = p["on_hand_qty"] if p else Decimal(0)
        pending = Decimal(p["pending"]) if p else Decimal(0)
        expected = on_hand - pending
        diff = erp_qty - expected
        if diff == 0:
            continue
        unacked = int(p["unacked"]) if p else 0
        cause = classify(diff, pending, unacked, modified, p["snapshot_as_of"] if p else None,
                         int(p["moved"]) if p else 0)
        detail = (f"ERP {erp_qty.normalize():f}, platform on hand {on_hand.normalize():f} − pending postings "
                  f"{pending.normalize():f} = {expected.normalize():f}")
        found.append({"store_id": key[0], "sku": key[1], "erp_qty": erp_qty, "expected_qty": expected,
                      "diff_qty": diff, "pending_posting_qty": pending, "unacked_postings": unacked,
                      "oldest_unacked_at": p["oldest_unacked_at"] if p else None, "erp_modified_at": modified,
                      "snapshot_as_of": p["snapshot_as_of"] if p else None, "cause": cause, "detail": detail})
    stale = conn.execute(STALE_SQL, (now - stale_after(),)).fetchone()
    by_cause = dict(Counter(f["cause"] for f in found))
    with conn.transaction():
        conn.execute("DELETE FROM oms.erp_reconciliation WHERE run_date = %s", (run_date,))
        with conn.cursor() as cur:
            cur.executemany(
                """INSERT INTO oms.erp_reconciliation (run_date, store_id, sku, erp_qty, expected_qty, diff_qty,
                       pending_posting_qty, unacked_postings, oldest_unacked_at, erp_modified_at, snapshot_as_of,
                       cause, detail)
                   VALUES (%(run_date)s, %(store_id)s, %(sku)s, %(erp_qty)s, %(expected_qty)s, %(diff_qty)s,
                       %(pending_posting_qty)s, %(unacked_postings)s, %(oldest_unacked_at)s, %(erp_modified_at)s,
                       %(snapshot_as_of)s, %(cause)s, %(detail)s)""",
                [{**f, "run_date": run_date} for f in found])
        conn.execute(
            """INSERT INTO oms.erp_reconciliation_run (run_date, pairs_compared, differences, by_cause, stale_unacked,
                   oldest_unacked_at, finished_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (run_date) DO UPDATE SET pairs_compared = excluded.pairs_compared,
                   differences = excluded.differences, by_cause = excluded.by_cause,
                   stale_unacked = excluded.stale_unacked, oldest_unacked_at = excluded.oldest_unacked_at,
                   finished_at = excluded.finished_at""",
            (run_date, len(pairs), len(found), Jsonb(by_cause), stale["n"], stale["oldest"], now))
    return {"run_date": run_date.isoformat(), "pairs_compared": len(pairs), "differences": len(found),
            "by_cause": by_cause, "stale_unacked": stale["n"],
            "oldest_unacked_at": stale["oldest"].isoformat() if stale["oldest"] else None}


def run(dsn: str, erp: Any, run_date: date, now: datetime, *, dag_id: str = "erp_reconciliation",
        run_id: str | None = None) -> dict[str, Any]:
    """Read the ERP's whole stock, reconcile, and alert on stale unacknowledged postings."""
    rows = list(erp.iter_stock_changes(EPOCH, now + timedelta(seconds=1)))
    with connect(dsn) as conn:
        result = reconcile(conn, rows, run_date, now)
    if result["stale_unacked"]:
        hours = stale_after().total_seconds() / 3600
        message = (f"{result['stale_unacked']} sales posting(s) unacknowledged by the ERP for more than {hours:g} h "
                   f"(oldest {result['oldest_unacked_at']}); {result['differences']} stock difference(s) on "
                   f"{result['run_date']}")
        result["alert"] = alerting.dispatch(
            alerting.condition_alert(dag_id, "reconcile", run_id or f"reconcile/{run_date.isoformat()}", message),
            dsn=dsn)
    return result
